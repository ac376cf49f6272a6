"""benchmarks/bench_api.py runs end to end against a real server and reports every row (structure only: no
timing is asserted, decision 1520)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_reports_every_operation_without_errors() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNVOY_")}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_api.py"),
            "--clients",
            "3",
            "--requests",
            "2",
            "--submits",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    operations = ["submit", "floor: GET /healthz", "status", "list", "logs page"]
    assert [row["operation"] for row in rows] == operations * 2, "each operation saturated, then paced"
    assert {row["load"].split(":")[0] for row in rows} == {"saturated", "paced"}
    for row in rows:
        name = row["operation"]
        assert row["errors"] == 0, (row, done.stderr)
        assert row["requests"] == (3 if name == "submit" else 6)
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert (row["target_p95_ms"] is None) == name.startswith("floor")
