"""Faults: throttling with Retry-After, a create that timed out on the client but succeeded, a log read
failing mid-run. (A group that never leaves Pending: test_azure_runner.py.)"""

from __future__ import annotations

import time
from typing import Any

import pytest
from runvoy_azure_testfakes.helpers import read_all, spec, wait_ended

from runvoy_core.errors import TransientProviderError
from runvoy_core.models import Status
from runvoy_core.testing.sinks import RecordingSink as Sink

GROUP_GET = r"/containerGroups/runvoy-[0-9a-f]+$"


def test_a_429_with_retry_after_is_retried_after_the_wait(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(spec("cccc00000001", "echo ok"), "cccc00000001")
    fault = fake_aci.inject("GET", GROUP_GET, status=429, headers={"Retry-After": "1"}, times=1)
    started = time.monotonic()
    state = provider.compute.describe(ref)
    assert fault.hits == 1
    assert time.monotonic() - started >= 0.95  # the core retry helper honoured Retry-After
    assert state.ref == ref
    assert wait_ended(provider, ref).exit_code == 0


def test_throttling_beyond_the_retries_is_transient_and_never_crashes_a_watch(rv: Any, fake_aci: Any) -> None:
    # more 429s than a read retries (retry_total=3): some describes fail as TransientProviderError
    fault = fake_aci.inject("GET", GROUP_GET, status=429, headers={"Retry-After": "0"}, times=9)
    with pytest.raises(TransientProviderError):
        rv.provider.compute.describe(f"{rv.provider.config.resource_group}/runvoy-000000000000")
    sink = Sink()
    execution = rv.run("echo through; sleep 0.3", log_sink=sink)
    assert fault.hits == 9
    assert execution.status is Status.SUCCEEDED and sink.lines() == ["through"]


def test_a_429_on_create_is_waited_out_and_sent_again(provider: Any, fake_aci: Any) -> None:
    fault = fake_aci.inject("PUT", GROUP_GET, status=429, headers={"Retry-After": "1"}, times=1)
    ref = provider.compute.start(spec("cccc00000002", "echo once"), "cccc00000002")
    assert fault.hits == 1
    assert fake_aci.launches["runvoy-cccc00000002"] == 1
    assert wait_ended(provider, ref).exit_code == 0
    assert read_all(provider, ref) == ["once"]


def test_a_create_that_timed_out_but_succeeded_is_not_created_twice(
    make_provider: Any, fake_aci: Any
) -> None:
    provider = make_provider(create_timeout=0.5)
    fault = fake_aci.inject("PUT", GROUP_GET, delay_after=1.5, times=1)
    ref = provider.compute.start(spec("cccc00000003", "echo once"), "cccc00000003")
    assert fault.hits == 1
    assert ref.endswith("/runvoy-cccc00000003")
    assert fake_aci.count("PUT", "runvoy-cccc00000003") == 1  # no second PUT: the GET found it
    assert fake_aci.launches["runvoy-cccc00000003"] == 1
    assert wait_ended(provider, ref).exit_code == 0
    assert read_all(provider, ref) == ["once"]


def test_a_create_that_timed_out_through_the_runner_is_one_run(make_client: Any, fake_aci: Any) -> None:
    rv = make_client(create_timeout=0.5)
    fake_aci.inject("PUT", GROUP_GET, delay_after=1.5, times=1)
    sink = Sink()
    execution = rv.run("echo single", log_sink=sink)
    assert execution.status is Status.SUCCEEDED and sink.lines() == ["single"]
    assert fake_aci.launches[f"runvoy-{execution.id}"] == 1


def _run_with_failing_log_reads(rv: Any, fake_aci: Any, failures: int, command: str) -> tuple[Any, Sink, Any]:
    sink = Sink()
    holder: dict[str, Any] = {}

    def on_start(handle: Any) -> None:
        # reads fail with 503 beyond their retries (retry_total=3: 4 calls per read)
        holder["fault"] = fake_aci.inject("GET", r"/containers/main/logs$", status=503, times=failures)

    execution = rv.run(command, log_sink=sink, on_start=on_start)
    return execution, sink, holder["fault"]


def test_log_reads_failing_mid_run_lose_no_line(rv: Any, fake_aci: Any) -> None:
    command = "for i in $(seq 1 40); do echo line $i; sleep 0.02; done"
    execution, sink, fault = _run_with_failing_log_reads(rv, fake_aci, 8, command)
    expected = [f"line {i}" for i in range(1, 41)]
    assert fault.hits == 8 and execution.status is Status.SUCCEEDED
    assert sink.lines() == expected  # later reads caught up from the cursor
    archived = rv.provider.logs.archived_text(execution.task_ref)
    assert archived is not None and [line.split(" ", 1)[1] for line in archived.splitlines()] == expected
    assert [e.message for e in rv.logs(execution.id)] == expected


def test_even_when_the_last_live_reads_fail_the_archive_has_every_line(rv: Any, fake_aci: Any) -> None:
    command = "for i in $(seq 1 30); do echo line $i; sleep 0.01; done"
    execution, sink, fault = _run_with_failing_log_reads(rv, fake_aci, 12, command)
    expected = [f"line {i}" for i in range(1, 31)]
    assert fault.hits == 12 and execution.status is Status.SUCCEEDED
    assert sink.lines() == expected[: len(sink.lines())]  # what was shown is in order, nothing twice
    assert [e.message for e in rv.logs(execution.id)] == expected  # the archive read them all


def test_an_archive_that_cannot_read_the_log_keeps_the_group(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(spec("cccc00000004", "echo kept"), "cccc00000004")
    wait_ended(provider, ref)
    fake_aci.inject("GET", r"/containers/main/logs$", status=503, times=100)
    with pytest.raises(TransientProviderError):
        provider.compute.cleanup(ref)
    assert fake_aci.group("runvoy-cccc00000004") is not None  # not deleted with its log unarchived
    fake_aci.faults.clear()
    provider.compute.cleanup(ref)
    assert fake_aci.group("runvoy-cccc00000004") is None
    assert read_all(provider, ref) == ["kept"]


def test_authorization_failed_names_the_action_and_the_role(provider: Any, fake_aci: Any) -> None:
    from runvoy_core.errors import PermissionDenied

    fake_aci.inject(
        "PUT",
        GROUP_GET,
        status=403,
        code="AuthorizationFailed",
        message="The client 'ci@example.com' with object id '00000000-0000-0000-0000-000000000001' does not "
        "have authorization to perform action 'Microsoft.ContainerInstance/containerGroups/write' over "
        "scope '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/x' "
        "or the scope is invalid. If access was recently granted, please refresh your credentials.",
    )
    with pytest.raises(PermissionDenied) as caught:
        provider.compute.start(spec("cccc00000403", "echo never"), "cccc00000403")
    hint = caught.value.hint
    assert "assign the role 'Contributor' on the resource group" in hint
    assert "Microsoft.ContainerInstance/containerGroups/write" in hint
    assert caught.value.to_dict()["permission"] == "Microsoft.ContainerInstance/containerGroups/write"
    assert caught.value.docs == "docs/errors.md#permissiondenied"


@pytest.mark.parametrize(
    ("what", "role"),
    [
        ("read execution record", "'Storage Table Data Contributor' on the storage account"),
        ("write runvoy/x.log to blob storage", "'Storage Blob Data Contributor' on the storage account"),
        ("read secret 'db' from Key Vault", "'Key Vault Secrets User' on the key vault"),
        ("create container group runvoy-1", "'Contributor' on the resource group"),
    ],
)
def test_a_refusal_without_a_named_action_names_the_role_of_the_service(what: str, role: str) -> None:
    from runvoy_azure.clients import role_for

    assert role_for(
        "This request is not authorized to perform this operation using this permission.", what
    ) == (
        None,
        role,
    )


def test_a_refused_table_call_on_azurite_names_the_storage_role(make_provider: Any, azurite: Any) -> None:
    import base64
    import re

    from runvoy_core.errors import PermissionDenied

    wrong_key = base64.b64encode(b"not the account key, 64 bytes long for a proper looking key...").decode()
    refused = re.sub(r"AccountKey=[^;]+", f"AccountKey={wrong_key}", azurite.connection_string)
    # Azurite answers 403 AuthorizationFailure (Azure says so for a missing data role too)
    with pytest.raises(PermissionDenied) as caught:
        make_provider(storage_connection_string=refused)
    hint = caught.value.hint
    assert "assign the role 'Storage Table Data Contributor' on the storage account" in hint
    assert "check its account key" in hint


@pytest.mark.parametrize(
    ("status", "code"), [(401, "InvalidAuthenticationToken"), (403, "InvalidAuthenticationToken")]
)
def test_credentials_azure_does_not_accept_say_to_sign_in(
    provider: Any, fake_aci: Any, status: int, code: str
) -> None:
    from runvoy_core.errors import NotAuthenticated

    fake_aci.inject("PUT", GROUP_GET, status=status, code=code, message="The access token has expired.")
    with pytest.raises(NotAuthenticated) as caught:
        provider.compute.start(spec("cccc00000401", "echo never"), "cccc00000401")
    assert "az login" in caught.value.hint
