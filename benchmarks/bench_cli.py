"""Log-capture benchmark for the local provider.

    .venv/bin/python benchmarks/bench_cli.py [--megabytes 100] [--capture-runs 11]

Start-up times (`runvoy --help`, `runvoy run "true"` and the other commands) are measured by
benchmarks/bench.py, on a fresh install made the README's way, in both bytecode modes. This script keeps
the one measurement that bench.py does not make, with the virtual environment it runs in, as it is (it
compiles nothing: decision 1407):
- `runvoy run` of a command printing --megabytes of 100-byte lines against the bare command, both writing
  to /dev/null (target: captured throughput >= 50 % of the bare command's). Throughput is bytes per second
  of capturing: runvoy's wall time minus its fixed cost (`runvoy run "true"`, timed in the same rounds) —
  decision 0008. The plain wall-time ratio is printed beside it. Bare, captured and fixed-cost runs
  alternate, each after a `sync`, so that none pays for the page-cache writeback of the run before it and
  a machine that slows down for a while slows all of them.
Prints a markdown table; paste it into docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUNVOY = str(BIN / "runvoy")


def once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def alternating(variants: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    """Median wall time of each variant, run in turn, each after a sync of the previous one's writes."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, argv in variants.items():
            subprocess.run(["sync"], check=False)
            samples[name].append(once(argv, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--capture-runs", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "RUNVOY_HOME": home, "RUNVOY_CONFIG": str(Path(home) / "none.toml")}
        rows = []
        once([RUNVOY, "run", "true"], env)  # create the databases once, as a user's first run does
        producer = f"head -c {args.megabytes * 1000 * 1000} /dev/zero | tr '\\0' 'a' | fold -w 99"
        times = alternating(
            {
                "bare": ["sh", "-c", producer],
                "to_file": ["sh", "-c", f"{producer} > {home}/bare-output.log"],
                "captured": [RUNVOY, "run", producer],
                "fixed": [RUNVOY, "run", "true"],
            },
            env,
            args.capture_runs,
        )
        bare, to_file, captured, fixed = times["bare"], times["to_file"], times["captured"], times["fixed"]
        capturing = max(captured - fixed, 1e-9)
        ratio = bare / capturing
        rows.append(
            (
                f"`runvoy run` printing {args.megabytes} MB",
                captured,
                bare,
                "bare command to /dev/null",
                ">= 50 % throughput",
                ratio >= 0.5,
            )
        )
    print("| measurement | runvoy | baseline | baseline command | target | met |")
    print("|---|---|---|---|---|---|")
    for name, value, base, base_name, target, met in rows:
        print(
            f"| {name} | {value * 1000:.0f} ms | {base * 1000:.0f} ms | {base_name} | {target} | {'yes' if met else 'NO'} |"
        )
    print(
        f"\ncapture throughput: {ratio:.0%} of the bare command's ({args.megabytes} MB in "
        f"{capturing * 1000:.0f} ms of capturing = {captured * 1000:.0f} ms - the {fixed * 1000:.0f} ms fixed "
        f"cost, against {bare * 1000:.0f} ms bare to /dev/null; {to_file * 1000:.0f} ms bare to a file)\n"
        f"wall-time ratio, fixed cost included: {bare / captured:.0%}"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, capture runs={args.capture_runs}")


if __name__ == "__main__":
    main()
