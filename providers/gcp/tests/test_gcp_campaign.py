"""The fault campaign on GCP: 200 operations through the Python API while fault proxies between the Google
clients and the Cloud Run, Cloud Logging and fake-gcs-server endpoints delay, drop, throttle, fail, lose
answers and reset connections (runvoy_core/testing/campaign.py).

``benchmarks/fault_campaign.py --provider gcp --runs 2000 --seed N`` runs a longer one through this test."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from runvoy_core.testing.campaign import CAMPAIGN_FAULTS, Campaign, campaign_settings, publish
from runvoy_core.testing.faultproxy import Chaos, FaultProxy, google_dialect
from runvoy_core.testing.simulator import CloudSimulator


def test_a_seeded_fault_campaign_leaves_nothing_running_stuck_duplicated_or_lost(
    gcp_settings: dict[str, object], simulator: CloudSimulator
) -> None:
    from runvoy_core.api import Runvoy

    settings = campaign_settings()
    print(f"fault campaign on gcp, seed {settings['seed']}")
    setup = Runvoy(provider="gcp", **gcp_settings)
    setup.provider.clients.storage.create_bucket(setup.provider.clients.bucket_name)
    setup.close()
    chaos = Chaos(settings["seed"], CAMPAIGN_FAULTS)
    with ExitStack() as stack:
        proxied: dict[str, Any] = dict(gcp_settings)
        for key in ("run_endpoint", "logging_endpoint", "storage_endpoint", "secretmanager_endpoint"):
            upstream = str(gcp_settings[key])
            proxy = FaultProxy(upstream, chaos, name=key.removesuffix("_endpoint"), dialect=google_dialect)
            proxied[key] = stack.enter_context(proxy).url
        # one attempt per call, short timeouts: every fault reaches runvoy's own handling, fast
        proxied.update(retry_attempts=1, request_timeout=5.0)

        def make_client() -> Runvoy:
            return Runvoy(provider="gcp", **proxied)

        report = Campaign(make_client, chaos, simulator, **settings).run()
    publish(report, "gcp")
    assert report.ok, report.format()


def test_a_job_created_although_its_answer_was_lost_is_used_not_failed(
    gcp_settings: dict[str, object],
) -> None:
    """Campaign finding: a retried CreateJob whose first answer was lost gets 409 from Cloud Run REST, which
    the Google client raises as Conflict (not AlreadyExists); the start failed although the job existed."""
    from runvoy_gcp.config import GcpConfig
    from runvoy_gcp.provider import create_provider

    from runvoy_core.models import ExecutionRequest
    from runvoy_core.ports import TaskSpec

    chaos = Chaos(1, {})
    chaos.once("lost_answer", method="POST", path_contains="/jobs?jobId=")
    with FaultProxy(str(gcp_settings["run_endpoint"]), chaos, name="run") as proxy:
        config = GcpConfig.model_validate({**gcp_settings, "run_endpoint": proxy.url, "retry_attempts": 2})
        provider = create_provider(config, None)
        try:
            spec = TaskSpec.from_request(
                "0a0a0a0a0a0a", ExecutionRequest(command="true"), env={}, request_id=None
            )
            ref = provider.compute.start(spec, "0a0a0a0a0a0a")
        finally:
            provider.close()
    assert chaos.faulted() and chaos.faulted()[0].fault == "lost_answer"
    assert ref.rsplit("/", 1)[-1]
