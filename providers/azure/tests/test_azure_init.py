"""`runvoy init`'s look at DefaultAzureCredential's chain (runvoy_azure.credentials), with real files in a
fresh HOME: what it finds, the subscription it offers, and what it says is missing (decision 2111)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from runvoy_azure.credentials import CHECK

RUNVOY = str(Path(sys.executable).parent / "runvoy")
VARIABLES = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
    "AZURE_CONFIG_DIR",
    "AZURE_SUBSCRIPTION_ID",
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_nothing_anywhere_says_what_to_run(home: Path) -> None:
    report = CHECK.check({})
    assert not report.ok and report.found == ()
    assert f"no Azure CLI login in {home / '.azure'}" in report.missing[0] and "az login" in report.missing[0]


def test_the_cli_login_gives_credentials_and_the_default_subscription(home: Path) -> None:
    azure = home / ".azure"
    azure.mkdir()
    profile = {
        "subscriptions": [
            {"id": "1111", "isDefault": False},
            {"id": "2222-default", "isDefault": True},
        ]
    }
    # the CLI writes its profile with a byte order mark
    (azure / "azureProfile.json").write_text(json.dumps(profile), encoding="utf-8-sig")
    report = CHECK.check({})
    assert report.ok, report
    assert report.found == (f"the Azure CLI's login ({azure / 'azureProfile.json'})",)
    assert report.settings == {"subscription_id": "2222-default"}
    assert CHECK.region_setting == "location"


def test_a_service_principal_needs_its_tenant_and_client(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cr3t")
    half = CHECK.check({})
    assert not half.ok and "AZURE_TENANT_ID" in half.missing[0]
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    no_subscription = CHECK.check({})
    assert no_subscription.found[0].startswith("environment variables AZURE_TENANT_ID")
    assert not no_subscription.ok and "AZURE_SUBSCRIPTION_ID" in no_subscription.missing[0]
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "3333")
    whole = CHECK.check({})
    assert whole.ok and whole.settings == {"subscription_id": "3333"}
    assert "s3cr3t" not in repr(whole)


def test_init_non_interactive_writes_location_and_subscription(home: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in (("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c"), ("AZURE_CLIENT_SECRET", "s")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "3333")
    done = subprocess.run(
        [
            RUNVOY,
            "init",
            "--non-interactive",
            "--provider",
            "azure",
            "--region",
            "westeurope",
            "--no-setup",
            "--no-first-run",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    written = tomllib.loads(Path(os.environ["RUNVOY_CONFIG"]).read_text(encoding="utf-8"))
    assert written["providers"]["azure"] == {"subscription_id": "3333", "location": "westeurope"}
    assert "no prices for azure in westeurope" in done.stderr


def test_init_against_the_fakes_sets_up_and_runs_hello(home: Path, new_section) -> None:  # type: ignore[no-untyped-def]
    section = new_section()
    keys = (
        "subscription_id",
        "resource_group",
        "arm_endpoint",
        "credential",
        "storage_connection_string",
        "executions_table",
        "locks_table",
        "logs_container",
    )
    sets = [arg for key in keys for arg in ("--set", f"{key}={section[key]}")]
    done = subprocess.run(
        [RUNVOY, "init", "--non-interactive", "--provider", "azure", *sets],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "found: credential = fake" in done.stdout
    assert 'providers.azure.storage_connection_string = "********"' in done.stdout
    secret = str(section["storage_connection_string"]).partition("AccountKey=")[2].partition(";")[0]
    assert secret and secret not in done.stdout + done.stderr
    assert "would create" in done.stdout and "hello from runvoy" in done.stdout, done.stdout
    written = tomllib.loads(Path(os.environ["RUNVOY_CONFIG"]).read_text(encoding="utf-8"))
    assert written["providers"]["azure"]["location"] == "eastus"
