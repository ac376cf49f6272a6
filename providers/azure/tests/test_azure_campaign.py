"""The fault campaign on Azure: 200 operations through the Python API while fault proxies between the Azure
clients and the fake ARM (ACI) and Azurite (Table, Blob) delay, drop, throttle, fail, lose answers and reset
connections (runvoy_core/testing/campaign.py).

``benchmarks/fault_campaign.py --provider azure --runs 2000 --seed N`` runs a longer one through this test."""

from __future__ import annotations

from typing import Any

from runvoy_core.testing.campaign import CAMPAIGN_FAULTS, Campaign, campaign_settings, publish
from runvoy_core.testing.faultproxy import Chaos, FaultProxy, azure_arm_dialect, azure_storage_dialect
from runvoy_core.testing.simulator import CloudSimulator


def test_a_seeded_fault_campaign_leaves_nothing_running_stuck_duplicated_or_lost(
    azurite: Any, fake_aci: Any, new_section: Any, simulator: CloudSimulator
) -> None:
    from runvoy_core.api import Runvoy

    settings = campaign_settings()
    print(f"fault campaign on azure, seed {settings['seed']}")
    section = new_section()
    setup = Runvoy(provider="azure", **section)
    setup.provider.setup(dry_run=False)
    setup.close()
    chaos = Chaos(settings["seed"], CAMPAIGN_FAULTS)
    arm = FaultProxy(fake_aci.url, chaos, name="arm", dialect=azure_arm_dialect)
    blob = FaultProxy(
        f"http://127.0.0.1:{azurite.blob_port}", chaos, name="blob", dialect=azure_storage_dialect
    )
    table = FaultProxy(
        f"http://127.0.0.1:{azurite.table_port}", chaos, name="table", dialect=azure_storage_dialect
    )
    with arm, blob, table:
        proxied = {
            **section,
            "arm_endpoint": arm.url,
            "storage_connection_string": azurite.connection_string_via(blob.url, table.url),
            # no SDK retries, short timeouts: every fault reaches runvoy's own handling, fast
            "retry_total": 0,
            "request_timeout": 5,
            "create_timeout": 5,
        }

        def make_client() -> Runvoy:
            return Runvoy(provider="azure", **proxied)

        report = Campaign(make_client, chaos, simulator, **settings).run()
    publish(report, "azure")
    assert report.ok, report.format()
