"""Compute on the fake ARM through azure-mgmt-containerinstance: containers really run (CloudSimulator)."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from runvoy_azure.names import group_name
from runvoy_azure_testfakes.helpers import read_all, spec, wait_ended, wait_for

from runvoy_core.errors import UsageError
from runvoy_core.models import ExecutionRequest, Resources
from runvoy_core.ports import TaskPhase
from runvoy_core.testing.waiting import DEADLINE, gate


def test_a_run_gives_its_exit_code_times_and_billed_period(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(spec("aaaa00000001", "echo hi; exit 3"), "aaaa00000001")
    assert ref == f"{provider.config.resource_group}/runvoy-aaaa00000001"
    state = wait_ended(provider, ref)
    assert state.phase is TaskPhase.STOPPED and state.exit_code == 3
    assert state.execution_id == "aaaa00000001"
    assert not state.stopped_by_request and not state.failed_to_start
    assert state.started_at is not None and state.stopped_at is not None
    assert state.started_at <= state.stopped_at
    # billing starts at the image pull (the Pulling event), before the container started
    assert state.billed_start is not None and state.billed_start <= state.started_at
    assert state.billed_stop == state.stopped_at
    assert read_all(provider, ref) == ["hi"]


def test_the_group_is_linux_never_restarting_tagged_and_sized(provider: Any, fake_aci: Any) -> None:
    task = spec(
        "aaaa00000002",
        "true",
        env={"GREETING": "hello"},
        request_id="req-1",
        resources=Resources.model_validate(dict(cpu="1", memory="1536MiB", spot=True)),
    )
    provider.compute.start(task, "aaaa00000002")
    group = fake_aci.group("runvoy-aaaa00000002")
    props = group.body["properties"]
    assert props["restartPolicy"] == "Never"
    assert props["osType"] == "Linux"
    assert props["priority"] == "Spot"
    container = props["containers"][0]["properties"]
    assert container["resources"]["requests"] == {"cpu": 1.0, "memoryInGB": 1.5}
    assert container["command"] == ["/bin/sh", "-c", "true"]
    assert {"name": "GREETING", "value": "hello"} in container["environmentVariables"]
    assert group.body["tags"] == {
        "runvoy": "1",
        "runvoy-execution": "aaaa00000002",
        "runvoy-request": "req-1",
        "runvoy-store": provider.compute.store_id,
    }


def test_secrets_travel_as_secure_values_and_are_never_returned(make_provider: Any, fake_aci: Any) -> None:
    provider = make_provider(secret_values={"db-password": "s3cr3t-value"})
    task = spec(
        "aaaa00000003", '[ "$DB_PASSWORD" = "s3cr3t-value" ] && echo matched', secrets=["db-password"]
    )
    ref = provider.compute.start(task, "aaaa00000003")
    assert wait_ended(provider, ref).exit_code == 0
    assert read_all(provider, ref) == ["matched"]
    sent = fake_aci.group("runvoy-aaaa00000003").body["properties"]["containers"][0]["properties"]
    assert {"name": "DB_PASSWORD", "secureValue": "s3cr3t-value"} in sent["environmentVariables"]
    # a GET (what describe and every later reader sees) never carries the value
    got = provider.clients.aci.container_groups.get(provider.config.resource_group, "runvoy-aaaa00000003")
    variables = {v.name: (v.value, v.secure_value) for v in got.containers[0].environment_variables}
    assert variables["DB_PASSWORD"] == (None, None)


def test_start_is_idempotent_by_execution_id(provider: Any, fake_aci: Any) -> None:
    task = spec("aaaa00000004", "sleep 0.2")
    first = provider.compute.start(task, "aaaa00000004")
    second = provider.compute.start(task, "aaaa00000004")
    wait_ended(provider, first)
    third = provider.compute.start(task, "aaaa00000004")  # after it ended: still the same group, not a rerun
    assert first == second == third
    assert fake_aci.launches["runvoy-aaaa00000004"] == 1
    assert fake_aci.count("PUT", "runvoy-aaaa00000004") == 1
    assert provider.compute.find("aaaa00000004") == first
    assert provider.compute.find("ffff00000000") is None


def test_state_is_pending_before_placement_then_running(provider: Any, fake_aci: Any, tmp_path: Path) -> None:
    placed, done = threading.Event(), tmp_path / "done"
    fake_aci.start_gate = placed
    ref = provider.compute.start(spec("aaaa00000005", gate(done)), "aaaa00000005")
    first = provider.compute.describe(ref)
    assert first.phase in (TaskPhase.PENDING, TaskPhase.STARTING)
    placed.set()
    running = wait_for(provider, ref, lambda s: s.phase is TaskPhase.RUNNING)
    assert running.started_at is not None
    assert [s.ref for s in provider.compute.list_active()] == [ref]
    done.touch()
    wait_ended(provider, ref)
    assert provider.compute.list_active() == []


def test_instance_view_none_reads_as_pending(provider: Any, fake_aci: Any) -> None:
    fake_aci.hold_pending = True
    ref = provider.compute.start(spec("aaaa00000006", "true"), "aaaa00000006")
    raw = provider.clients.aci.container_groups.get(provider.config.resource_group, "runvoy-aaaa00000006")
    assert raw.instance_view is None and raw.containers[0].instance_view is None
    assert provider.compute.describe(ref).phase is TaskPhase.PENDING


def test_stop_ends_the_group_and_cleanup_deletes_it_after_archiving(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(spec("aaaa00000007", "echo before; sleep 30"), "aaaa00000007")
    wait_for(
        provider, ref, lambda s: s.phase is TaskPhase.RUNNING and fake_aci.group("runvoy-aaaa00000007").log
    )
    provider.compute.stop(ref, 1.0)
    state = wait_ended(provider, ref)
    assert state.stopped_by_request and state.phase is TaskPhase.STOPPED
    # ACI dropped the stopped group's log; the snapshot taken before the stop still has it
    assert read_all(provider, ref) == ["before"]
    provider.compute.stop(ref, 1.0)  # idempotent
    provider.compute.cleanup(ref)
    assert fake_aci.group("runvoy-aaaa00000007") is None
    assert read_all(provider, ref) == ["before"]
    after = provider.compute.describe(ref)  # answered from the saved final state
    assert after.phase is TaskPhase.STOPPED and after.stopped_by_request
    provider.compute.stop(ref, 1.0)  # a stop after deletion is a no-op
    provider.compute.cleanup(ref)


def test_cleanup_never_deletes_a_running_group(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(spec("aaaa00000008", "sleep 300"), "aaaa00000008")
    wait_for(provider, ref, lambda s: s.phase is TaskPhase.RUNNING)
    provider.compute.cleanup(ref)
    assert fake_aci.group("runvoy-aaaa00000008") is not None
    provider.compute.stop(ref, 0, force=True)
    wait_ended(provider, ref)


def test_a_deleted_group_without_saved_state_is_unknown(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(spec("aaaa00000009", "true"), "aaaa00000009")
    wait_ended(provider, ref)
    provider.clients.aci.container_groups.begin_delete(
        provider.config.resource_group, "runvoy-aaaa00000009"
    ).result()
    state = provider.compute.describe(ref)
    assert state.phase is TaskPhase.UNKNOWN and "no longer exists" in (state.reason or "")


@pytest.mark.parametrize(
    ("resources", "fragment"),
    [
        ({"cpu": "8"}, "0.1 to 4 vCPU"),
        ({"cpu": "0.05"}, "0.1 to 4 vCPU"),
        ({"memory": "32GiB"}, "0.1 to 16 GB"),
        ({"architecture": "arm64"}, "x86_64 only"),
    ],
)
def test_validate_refuses_what_aci_cannot_run(
    provider: Any, resources: dict[str, Any], fragment: str
) -> None:
    request = ExecutionRequest(command="true", resources=Resources.model_validate(dict(**resources)))
    with pytest.raises(UsageError) as caught:
        provider.compute.validate(request)
    assert fragment in caught.value.message


def test_the_fake_rejects_a_body_aci_would_reject(provider: Any, fake_aci: Any) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.containerinstance import models as m

    bad = m.ContainerGroup(
        location="eastus",
        os_type="Linux",
        containers=[
            m.Container(
                name="main",
                image="busybox",
                resources=m.ResourceRequirements(requests=m.ResourceRequests(cpu=6, memory_in_gb=1)),
            )
        ],
    )
    with pytest.raises(HttpResponseError) as caught:
        provider.clients.aci.container_groups.begin_create_or_update(
            provider.config.resource_group, "runvoy-bad", bad, polling=False
        )
    assert caught.value.status_code == 400
    assert caught.value.error.code == "ContainerGroupQuotaReached"
    no_location = {"properties": {"osType": "Linux", "containers": []}}
    answer = provider.clients.aci._send_request(
        _put(provider, "runvoy-bad2", no_location),
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "LocationRequired"


def _put(provider: Any, name: str, body: dict[str, Any]) -> Any:
    from azure.core.rest import HttpRequest

    config = provider.config
    return HttpRequest(
        "PUT",
        f"{config.arm_base_url}/subscriptions/{config.subscription_id}/resourceGroups/{config.resource_group}"
        f"/providers/Microsoft.ContainerInstance/containerGroups/{name}?api-version=2023-05-01",
        json=body,
    )


def test_group_names_are_valid_for_any_execution_id() -> None:
    from runvoy_azure.names import is_valid_group_name

    assert group_name("0123456789ab") == "runvoy-0123456789ab"
    for odd in ("ABC_def", "x" * 100, "--weird--id--", "a.b/c"):
        name = group_name(odd)
        assert is_valid_group_name(name), name
    assert group_name("ABC_def") != group_name("abc-def")


def test_memory_is_rounded_up_to_tenths_of_a_gb() -> None:
    from runvoy_azure.sizes import memory_gb, validate_size

    assert memory_gb(512) == 0.5
    assert memory_gb(1000) == 1.0
    assert memory_gb(1025) == 1.1
    assert validate_size(Resources(), max_cpu=4, max_memory_gb=16) == (0.25, 0.5)
    assert Decimal("0.25") == Resources().cpu


def test_the_fakes_long_running_operation_completes_through_the_sdk_poller(
    provider: Any, fake_aci: Any
) -> None:
    """The create LRO (Azure-AsyncOperation) as the SDK polls it when asked to wait for placement."""
    from azure.mgmt.containerinstance import models as m

    body = m.ContainerGroup(
        location="eastus",
        os_type="Linux",
        restart_policy="Never",
        containers=[
            m.Container(
                name="main",
                image="busybox",
                command=["/bin/sh", "-c", "sleep 0.3"],
                resources=m.ResourceRequirements(requests=m.ResourceRequests(cpu=0.5, memory_in_gb=0.5)),
            )
        ],
    )
    poller = provider.clients.aci.container_groups.begin_create_or_update(
        provider.config.resource_group, "runvoy-lro", body
    )
    group = poller.result(timeout=DEADLINE)
    assert group.provisioning_state == "Succeeded"
    assert fake_aci.count("GET", "/operations/") >= 1


def test_the_global_region_is_the_default_location(monkeypatch: pytest.MonkeyPatch) -> None:
    from runvoy_azure.provider import create_provider

    from runvoy_core.config import load_settings

    monkeypatch.setenv("RUNVOY_REGION", "westeurope")
    settings = load_settings()
    assert create_provider({}, settings).region == "westeurope"
    assert create_provider({"location": "northeurope"}, settings).region == "northeurope"
    assert create_provider({}, None).region == "eastus"
