"""benchmarks/bench.py runs end to end and reports every row (structure only: no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# each install measured warm (decision 1414) and cold
MODES = {"dont_write_bytecode", "write_bytecode", "dont_write_bytecode_cold", "write_bytecode_cold"}
COMMAND_ROWS = [
    "help",
    "run_true",
    "status",
    "list",
    "logs",
    "locks_list",
    "cost_estimate",
    "config_show",
    "providers",
]
FLOORS = ["floor_python", "floor_sh"]
SIZE_ROWS = ["size_status", "size_list", "size_locks_list", "size_cost_report"]
STATUSES = {"measured", "not measured", "failed"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_json_run_reports_every_row(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNVOY_")}
    # the smallest run that still takes every code path but the peer's install and the followers' 60 s
    argv = ["--quick", "--json", "--runs", "1", "--skip-install", str(venv), "--no-peer", "--concurrent", "2"]
    argv += ["--no-followers"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)

    assert {"cores", "python", "load_average", "date"} <= set(report["machine"])
    assert set(report["installs"]) == MODES
    assert "not measured" in report["peer"]

    rows = {row["key"]: row for row in report["commands"]}
    assert list(rows) == [*COMMAND_ROWS, *FLOORS, "peer_aws"]
    for key in [*COMMAND_ROWS, *FLOORS]:
        assert set(rows[key]["modes"]) == MODES
        for mode, cell in rows[key]["modes"].items():
            # every local command works in both modes; only its speed is left to the reader
            assert cell["status"] == "measured", (key, mode, cell)
            assert cell["median_ms"] > 0 and cell["ratio_to_python"] > 0
    for key in COMMAND_ROWS:
        assert rows[key]["target_ms"] == (50.0 if key == "help" else 100.0)
        assert isinstance(rows[key]["met"], bool)
    assert all(c["status"] == "not measured" for c in rows["peer_aws"]["modes"].values())

    sizes = report["sizes"]
    assert sizes["sizes"] == [100, 1_000]
    assert [row["key"] for row in sizes["rows"]] == SIZE_ROWS
    for row in sizes["rows"]:
        assert set(row["modes"]) == MODES
        for cell in row["modes"].values():
            assert cell["status"] in STATUSES
            if cell["status"] == "measured":
                assert set(cell["by_size"]) == {"100", "1000"}

    assert set(report["concurrency"]["modes"]) == MODES
    assert all(c["status"] in STATUSES for c in report["concurrency"]["modes"].values())
    assert set(report["followers"]["providers"]) == {"aws", "gcp", "azure"}
    assert all(c["status"] in STATUSES for c in report["followers"]["providers"].values())
