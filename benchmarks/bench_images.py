"""Benchmark: what checking an image adds to a start, with a warm cache and with one registry round trip.

A real registry (Debian's docker-registry) runs on 127.0.0.1 with a two-platform image pushed into it. Each
sample is a fresh Python process (as each ``runvoy run`` is) that has already imported what a run imports
before the check (runvoy_core.config and runvoy_core.models, with pydantic) and times, with ``perf_counter``, the import of ``runvoy_core.images`` plus one
``resolve``:

- warm: the on-disk cache under RUNVOY_HOME holds the resolution (a second CLI invocation within the TTL);
- cold: the cache is empty, so the manifest is fetched (one round trip; no auth on this registry).

Wall time and the process's CPU time are both shown: on a loaded machine the wall time mostly measures the
wait for a core, the CPU time what the check itself costs.

Target: warm <= 100 ms. Run: ``.venv/bin/python benchmarks/bench_images.py [--runs 21]``; prints a markdown
table and exits 1 when the target is missed. Needs /usr/bin/docker-registry (scripts/test.sh installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from runvoy_core.testing.registry import RegistryServer, registry_available

TARGET_WARM_MS = 100.0

SAMPLE = """
import json, sys, time
from pathlib import Path
import runvoy_core.config, runvoy_core.models  # a run has imported these (and pydantic) before any image check
start, cpu = time.perf_counter(), time.process_time()
from runvoy_core.images.config import ImagesConfig
from runvoy_core.images.policy import check_policy
from runvoy_core.images.registry import ImageResolver, Platform
config = ImagesConfig.model_validate_json(sys.argv[1])
reference = check_policy(sys.argv[2], config)
resolved = ImageResolver(config, cache_dir=Path(sys.argv[3])).resolve(reference, Platform.for_architecture("x86_64"))
elapsed, cpu = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
print(json.dumps({"ms": elapsed, "cpu_ms": cpu, "from_cache": resolved.from_cache}))
"""


def compile_bytecode() -> None:
    """Write .pyc files as `pip install` does (uv and PYTHONDONTWRITEBYTECODE=1 leave none): without them every
    sample would measure Python compiling pydantic and runvoy from source (as bench_cli.py does)."""
    import site

    root = Path(__file__).resolve().parents[1]
    for path in [*site.getsitepackages(), str(root / "runvoy_core")]:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", path], stdout=subprocess.DEVNULL, check=False
        )


def sample(config: str, reference: str, cache_dir: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", SAMPLE, config, reference, str(cache_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    reason = registry_available()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp, RegistryServer(Path(tmp) / "registry") as server:
        server.push_image("bench/app", "1", ["linux/amd64", "linux/arm64"])
        config = json.dumps(
            {"registries": {server.host: {"plain_http": True}}, "allow": [f"{server.host}/*"]}
        )
        reference = f"{server.host}/bench/app:1"
        warm_dir, cold_root = Path(tmp) / "warm", Path(tmp) / "cold"
        sample(config, reference, warm_dir)  # fills the warm cache, and writes .pyc files
        warm: list[dict[str, float]] = []
        cold: list[dict[str, float]] = []
        for i in range(args.runs):
            hit = sample(config, reference, warm_dir)
            assert hit["from_cache"], "the warm cache missed"
            warm.append(hit)
            miss = sample(config, reference, cold_root / str(i))
            assert not miss["from_cache"]
            cold.append(miss)
    rows = []
    for name, samples in (("warm cache (no request)", warm), ("cold: one round trip (manifest GET)", cold)):
        cells = []
        for key in ("ms", "cpu_ms"):
            values = sorted(s[key] for s in samples)
            p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
            cells.append(f"{statistics.median(values):.1f} ms (min {values[0]:.1f}, p90 {p90:.1f})")
        rows.append(f"| {name} | {' | '.join(cells)} |")
    warm_median = statistics.median(s["ms"] for s in warm)
    met = warm_median <= TARGET_WARM_MS
    print(
        f"image check added to a start, {args.runs} fresh processes each, Python {sys.version.split()[0]}\n"
    )
    print("| measurement | wall time | CPU time of the process |\n|---|---:|---:|")
    print("\n".join(rows))
    print(
        f"\ntarget: warm median wall time <= {TARGET_WARM_MS:.0f} ms: {'met' if met else 'NOT met'}"
        f" ({warm_median:.1f} ms; load average {os.getloadavg()[0]:.1f})"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
