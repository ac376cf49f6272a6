"""``runvoy cost estimate|refresh`` and ``runvoy budget`` through click's CliRunner, and the import check."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from decimal import Decimal as D
from pathlib import Path

from click.testing import CliRunner

from runvoy_cli.main import cli

FIXTURES = Path(__file__).parent / "fixtures"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_estimate_table_cheapest_first() -> None:
    code, out, err = invoke("cost", "estimate", "--cpu", "1", "--memory", "2GiB", "--duration", "10m")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:5] == ["PROVIDER", "REGION", "SIZE", "BILLED", "PER"]
    order = [line.split()[0] for line in lines[1:]]
    assert order == ["aws", "azure", "gcp"]
    assert "$0.008228" in out
    assert "catalog 2026.11.1" in err and "free tiers" in err


def test_estimate_json_with_runs_per_day_is_the_fargate_example() -> None:
    code, out, _ = invoke(
        "cost",
        "estimate",
        "--cpu",
        "1",
        "--memory",
        "2GiB",
        "--duration",
        "10m",
        "--storage",
        "30",
        "--runs-per-day",
        "5",
        "--days",
        "30",
        "--provider",
        "aws",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    (aws,) = data["estimates"]
    assert aws["runs"] == 150
    assert Decimal(aws["total"]).quantize(Decimal("0.01")) == Decimal("1.26")
    assert Decimal(aws["vcpu"]).quantize(Decimal("0.01")) == Decimal("1.01")
    assert data["catalog"]["version"] == "2026.11.1"


def test_estimate_json_sorted_and_invalid_rows_last() -> None:
    code, out, _ = invoke(
        "cost", "estimate", "--cpu", "0.25", "--memory", "512MiB", "--duration", "30s", "--json"
    )
    assert code == 0
    rows = json.loads(out)["estimates"]
    priced = [r for r in rows if "error" not in r]
    assert rows[: len(priced)] == priced, "rows that cannot run come last"
    assert [D(r["total"]) for r in priced] == sorted(D(r["total"]) for r in priced)
    assert next(r for r in priced if r["provider"] == "aws")["billed_seconds"] == "60"
    errors = {r["provider"]: r["error"] for r in rows if "error" in r}
    assert set(errors) == {"gcp"}, "azure runs 0.25 vCPU, as `runvoy run --provider azure` does"
    assert "valid sizes: 1 vCPU: 512MiB-4GiB" in errors["gcp"]


def test_estimate_all_shows_reason_in_the_row() -> None:
    code, out, _ = invoke("cost", "estimate", "--cpu", "1", "--memory", "1GiB", "--duration", "1m")
    assert code == 0
    aws_line = next(line for line in out.splitlines() if line.startswith("aws"))
    assert "cannot run: aws cannot pair 1 vCPU with 1GiB; valid sizes:" in aws_line
    assert out.splitlines()[-1].startswith("aws"), "rows that cannot run come last"


def test_estimate_single_provider_rejects_invalid_size() -> None:
    code, out, err = invoke("cost", "estimate", "--cpu", "1", "--memory", "1GiB", "--provider", "aws")
    assert code == 125
    assert out == ""
    assert "error: aws cannot pair 1 vCPU with 1GiB; valid sizes: 0.25 vCPU: 512MiB/1GiB/2GiB" in err
    assert "hint:" in err
    assert "Traceback" not in err


def test_estimate_bad_values_are_usage_errors() -> None:
    # a value runvoy checks is 125, as everywhere (decision 0912); a fixed choice is click's usage error, 2
    code, _, err = invoke("cost", "estimate", "--memory", "lots")
    assert code == 125 and "--memory" in err
    code, _, err = invoke("cost", "estimate", "--arch", "sparc")
    assert code == 2 and "--arch" in err


def test_estimate_region_applies_to_its_cloud_only() -> None:
    code, out, _ = invoke("cost", "estimate", "--region", "eu-central-1", "--json")
    rows = {r["provider"]: r for r in json.loads(out)["estimates"]}
    assert rows["aws"]["region"] == "eu-central-1"
    assert rows["gcp"]["region"] == "us-central1"
    code, out, err = invoke("cost", "estimate", "--region", "eu-central-1", "--provider", "gcp")
    assert code == 125 and "regions with prices" in err


def test_estimate_spot_and_arch() -> None:
    _code, out, _ = invoke("cost", "estimate", "--spot", "--arch", "arm64", "--json")
    rows = {r["provider"]: r for r in json.loads(out)["estimates"]}
    assert rows["aws"]["capacity"] == "spot" and rows["aws"]["architecture"] == "arm64"
    assert "runs only x86_64" in rows["gcp"]["error"]


def test_estimate_warns_about_old_prices(runvoy_home: Path) -> None:
    from runvoy_core.cost.catalog import shipped_catalog, write_rows

    write_rows(runvoy_home / "cost" / "prices.csv", shipped_catalog().rows)
    (runvoy_home / "cost" / "catalog.json").write_text(
        json.dumps({"version": "old", "retrieved_date": "2025-01-01"})
    )
    code, _, err = invoke("cost", "estimate")
    assert code == 0
    assert "warning: prices were retrieved" in err and "runvoy cost refresh" in err


def test_estimate_imports_no_cloud_sdk_nor_pydantic(tmp_path: Path) -> None:
    code = (
        "import sys; from runvoy_cli.main import main\n"
        "try:\n    main(['cost', 'estimate', '--cpu', '1', '--memory', '2GiB', '--duration', '10m'])\n"
        "except SystemExit:\n    pass\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'google', 'azure', 'pydantic'))\n"
        "print('IMPORTED', bad, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"RUNVOY_HOME": str(tmp_path), "PATH": ""},
    )
    assert "IMPORTED []" in done.stderr, done.stderr
    assert "aws" in done.stdout


# -- refresh ----------------------------------------------------------------------------------------------------


def test_refresh_from_files_and_reset() -> None:
    code, out, err = invoke(
        "cost",
        "refresh",
        "--from-file",
        str(FIXTURES / "azure_retail_westeurope.json"),
        "--from-file",
        str(FIXTURES / "gcp_cloud_run_skus.json"),
    )
    assert code == 0, err
    assert "westeurope" in out and "europe-west2" in out
    assert "written to" in err
    code, out, _ = invoke("cost", "estimate", "--provider", "azure", "--region", "westeurope", "--json")
    assert code == 0 and json.loads(out)["catalog"]["origin"] == "cache"
    code, _, err = invoke("cost", "refresh", "--reset")
    assert code == 0 and "shipped snapshot" in err


def test_refresh_refuses_implausible_prices_unless_forced() -> None:
    path = str(FIXTURES / "azure_retail_eastus_implausible.json")
    code, _, err = invoke("cost", "refresh", "--from-file", path)
    assert code == 125
    assert "changed by more than 50 %" in err and "--force" in err
    code, out, _ = invoke("cost", "refresh", "--from-file", path, "--dry-run", "--json")
    assert code == 0 and json.loads(out)["changes"][0]["implausible"] is True
    code, out, _ = invoke("cost", "refresh", "--from-file", path, "--force", "--json")
    assert code == 0 and json.loads(out)["written"] is True


def test_refresh_rejects_unknown_file(tmp_path: Path) -> None:
    bogus = tmp_path / "x.json"
    bogus.write_text('{"hello": 1}')
    code, _, err = invoke("cost", "refresh", "--from-file", str(bogus))
    assert code == 125 and "not a response of a known price API" in err
