"""CLI wall-time and log-capture benchmarks for the local provider.

    .venv/bin/python benchmarks/bench_cli.py [--runs 15] [--megabytes 100]

Measures, each as the median of --runs subprocess runs with a fresh RUNVOY_HOME:
- `runvoy --help` against `python -c pass` (target: <= 80 ms, and no cloud SDK imported);
- `runvoy run "true"` against `sh -c true` (target: <= 250 ms);
- `runvoy run` of a command printing --megabytes of 100-byte lines against the bare command, both writing
  to /dev/null (target: captured throughput >= 50 % of the bare command's). Throughput is bytes per second
  of capturing: runvoy's wall time minus its fixed cost (`runvoy run "true"`, which has its own target,
  timed in the same rounds) — decision 0008. The plain wall-time ratio is printed beside it. Bare, captured
  and fixed-cost runs alternate, each after a `sync`, so that none pays for the page-cache writeback of the
  run before it and a machine that slows down for a while slows all of them.
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
CLOUD_SDKS = ("boto3", "botocore", "google", "azure")


def timed(argv: list[str], env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        samples.append(once(argv, env))
    return statistics.median(samples)


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


def imported_cloud_sdks(env: dict[str, str]) -> list[str]:
    probe = (
        "import sys, runvoy_cli.main as m\n"
        "try:\n    m.cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        f"print(','.join(sorted({{n.split('.')[0] for n in sys.modules}} & set({CLOUD_SDKS!r}))), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return [m for m in out.stderr.strip().splitlines()[-1].split(",") if m] if out.stderr.strip() else []


def compile_bytecode() -> None:
    """Write .pyc files as `pip install` does (uv and PYTHONDONTWRITEBYTECODE=1 leave none): without them every
    run would measure Python compiling runvoy and pydantic from source."""
    import site

    for path in [*site.getsitepackages(), str(ROOT / "runvoy_core"), str(ROOT / "runvoy_cli")]:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", path], stdout=subprocess.DEVNULL, check=False
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--capture-runs", type=int, default=11)
    args = parser.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "RUNVOY_HOME": home, "RUNVOY_CONFIG": str(Path(home) / "none.toml")}
        rows = []
        help_t = timed([RUNVOY, "--help"], env, args.runs)
        py_t = timed([sys.executable, "-c", "pass"], env, args.runs)
        sdks = imported_cloud_sdks(env)
        rows.append(
            ("`runvoy --help`", help_t, py_t, "`python -c pass`", "<= 80 ms", help_t <= 0.080 and not sdks)
        )
        timed([RUNVOY, "run", "true"], env, 2)  # create the database once, as a user's first run does
        run_t = timed([RUNVOY, "run", "true"], env, args.runs)
        sh_t = timed(["sh", "-c", "true"], env, args.runs)
        rows.append(('`runvoy run "true"`', run_t, sh_t, "`sh -c true`", "<= 250 ms", run_t <= 0.250))
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
        f"wall-time ratio, fixed cost included: {bare / captured:.0%}\n"
        f"cloud SDKs imported by --help: {sdks or 'none'}"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, runs={args.runs}")


if __name__ == "__main__":
    main()
