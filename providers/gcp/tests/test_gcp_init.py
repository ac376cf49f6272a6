"""`runvoy init`'s look at Google's credential chain (runvoy_gcp.credentials), with real files in a fresh HOME:
what it finds, the project and region it offers, and what it says is missing (decision 2111)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from runvoy_gcp.credentials import CHECK

RUNVOY = str(Path(sys.executable).parent / "runvoy")
VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "CLOUDSDK_RUN_REGION",
    "K_SERVICE",
    "CLOUD_RUN_JOB",
    "GAE_APPLICATION",
    "FUNCTION_TARGET",
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
    assert "no Application Default Credentials" in report.missing[0]
    assert str(home / ".config/gcloud/application_default_credentials.json") in report.missing[0]
    assert "gcloud auth application-default login" in report.missing[0]


def test_the_adc_file_and_gcloud_configuration_give_credentials_project_and_region(home: Path) -> None:
    gcloud = home / ".config" / "gcloud"
    (gcloud / "configurations").mkdir(parents=True)
    adc = gcloud / "application_default_credentials.json"
    adc.write_text(json.dumps({"type": "authorized_user", "refresh_token": "r3fr3sh", "client_secret": "x"}))
    (gcloud / "active_config").write_text("work\n")
    (gcloud / "configurations" / "config_work").write_text(
        "[core]\nproject = acme-42\n[run]\nregion = europe-west1\n"
    )
    report = CHECK.check({})
    assert report.ok, report
    assert report.found == (f"Application Default Credentials {adc} (authorized_user)",)
    assert report.settings == {"project": "acme-42"} and report.region == "europe-west1"
    assert "r3fr3sh" not in repr(report)


def test_a_key_file_that_does_not_exist_is_named(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(home / "gone.json"))
    report = CHECK.check({})
    assert not report.ok and f"names {home / 'gone.json'}, which does not exist" in report.missing[0]


def test_a_service_account_key_gives_its_project_and_none_is_missing(home: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    key = home / "sa.json"
    key.write_text(json.dumps({"type": "service_account", "project_id": "from-key", "private_key": "-----"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    report = CHECK.check({})
    assert report.ok and report.settings == {"project": "from-key"}
    # a project already in the section is not offered again
    assert CHECK.check({"project": "mine"}).settings == {}


def test_credentials_without_a_project_say_how_to_set_one(home: Path) -> None:
    gcloud = home / ".config" / "gcloud"
    gcloud.mkdir(parents=True)
    (gcloud / "application_default_credentials.json").write_text(json.dumps({"type": "authorized_user"}))
    report = CHECK.check({})
    assert not report.ok and "gcloud config set project" in report.missing[0]


def test_init_non_interactive_writes_the_project_and_region_the_chain_names(home: Path) -> None:
    gcloud = home / ".config" / "gcloud"
    (gcloud / "configurations").mkdir(parents=True)
    (gcloud / "application_default_credentials.json").write_text(json.dumps({"type": "authorized_user"}))
    (gcloud / "configurations" / "config_default").write_text(
        "[core]\nproject = acme-42\n[compute]\nregion = us-east1\n"
    )
    done = subprocess.run(
        [RUNVOY, "init", "--non-interactive", "--provider", "gcp", "--no-setup", "--no-first-run"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    assert "found: Application Default Credentials" in done.stdout
    written = tomllib.loads(Path(os.environ["RUNVOY_CONFIG"]).read_text(encoding="utf-8"))
    assert written["provider"] == "gcp"
    assert written["providers"]["gcp"] == {"project": "acme-42", "region": "us-east1"}
    assert (written["cpu"], written["memory"]) != (None, None)


def test_init_against_the_fakes_sets_up_and_runs_hello(home: Path, gcp_settings: dict[str, object]) -> None:
    keys = (
        "project",
        "bucket",
        "run_endpoint",
        "logging_endpoint",
        "storage_endpoint",
        "secretmanager_endpoint",
    )
    sets = [arg for key in keys for arg in ("--set", f"{key}={gcp_settings[key]}")]
    done = subprocess.run(
        [
            RUNVOY,
            "init",
            "--non-interactive",
            "--provider",
            "gcp",
            "--set",
            "anonymous_credentials=true",
            *sets,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "found: anonymous_credentials = true" in done.stdout
    assert "would create" in done.stdout and "hello from runvoy" in done.stdout, done.stdout
    written = tomllib.loads(Path(os.environ["RUNVOY_CONFIG"]).read_text(encoding="utf-8"))
    assert written["providers"]["gcp"]["anonymous_credentials"] is True
    assert written["providers"]["gcp"]["region"] == "us-central1"
