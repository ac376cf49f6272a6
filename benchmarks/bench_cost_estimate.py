"""Benchmark: wall time of ``runvoy cost estimate --cpu 1 --memory 2GiB --duration 10m`` in a fresh process.

Target: median <= 150 ms, and no cloud SDK imported (checked with ``-X importtime``).
Run: ``.venv/bin/python benchmarks/bench_cost_estimate.py [--runs 21]``; prints a markdown table and exits 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMAND = ["cost", "estimate", "--cpu", "1", "--memory", "2GiB", "--duration", "10m"]
TARGET_MS = 150.0
CLOUD_SDK_PREFIXES = ("boto3", "botocore", "aiobotocore", "google", "azure", "s3transfer", "grpc")


def run_once(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "runvoy_cli.main", *COMMAND], env=env, check=True, capture_output=True
    )
    return (time.perf_counter() - start) * 1000


def imported_modules(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "runvoy_cli.main", *COMMAND],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    names = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.append(line.rsplit("|", 1)[1].strip())
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "RUNVOY_HOME": home, "RUNVOY_CONFIG": os.path.join(home, "config.toml")}
        run_once(env)  # warm the OS page cache and .pyc files
        samples = sorted(run_once(env) for _ in range(args.runs))
        modules = imported_modules(env)
    sdk = sorted({m for m in modules if m.split(".")[0] in CLOUD_SDK_PREFIXES})
    heavy = sorted(
        {
            m.split(".")[0]
            for m in modules
            if m.split(".")[0] in ("pydantic", "pydantic_settings", "structlog")
        }
    )
    median = statistics.median(samples)
    p90 = samples[int(len(samples) * 0.9) - 1]
    print(
        f"`runvoy {' '.join(COMMAND)}`, {args.runs} runs, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n"
    )
    print("| metric | value | target |")
    print("|---|---|---|")
    print(f"| median wall time | {median:.1f} ms | <= {TARGET_MS:.0f} ms |")
    print(f"| min / p90 / max | {samples[0]:.1f} / {p90:.1f} / {samples[-1]:.1f} ms | |")
    print(f"| modules imported | {len(modules)} | |")
    print(f"| cloud SDK modules imported | {', '.join(sdk) or 'none'} | none |")
    print(f"| pydantic / structlog imported | {', '.join(heavy) or 'no'} | no |")
    ok = median <= TARGET_MS and not sdk
    print(f"\nresult: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
