"""A long fault campaign against one provider's wire-protocol servers (the suite runs 200 operations).

    .venv/bin/python benchmarks/fault_campaign.py --provider aws --runs 2000 --seed 7 [--json] [--workers 4]

Runs the provider's campaign test (providers/<provider>/tests/test_<provider>_campaign.py) with the given
number of operations and seed, so the servers, simulator and proxies are set up exactly as in the suite
(runvoy_core/testing/campaign.py). Prints the counts (duplicate tasks, tasks running without a live record,
records stuck after reconcile, lost log lines, internal errors, clean errors, faults injected) and the
duration; ``--json`` prints them as one JSON object instead. Exits 1 when a bad count is not 0. A failing
seed replays the same plan of operations and the same sequence of fault draws (the order in which concurrent
requests arrive still varies: use ``--workers 1`` to narrow a failure down).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("aws", "gcp", "azure")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=PROVIDERS, required=True)
    parser.add_argument("--runs", type=int, default=2000, help="operations (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4, help="operations running at once (default 4)")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args()
    if args.runs < 1 or args.workers < 1:
        parser.error("--runs and --workers must be at least 1")
    test = ROOT / "providers" / args.provider / "tests" / f"test_{args.provider}_campaign.py"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        env = {
            **os.environ,
            "RUNVOY_CAMPAIGN_RUNS": str(args.runs),
            "RUNVOY_CAMPAIGN_SEED": str(args.seed),
            "RUNVOY_CAMPAIGN_WORKERS": str(args.workers),
            "RUNVOY_CAMPAIGN_JSON": str(out),
        }
        began = time.monotonic()
        command = [
            sys.executable,
            "-m",
            "pytest",
            f"{test}::test_a_seeded_fault_campaign_leaves_nothing_running_stuck_duplicated_or_lost",
            "-q",
            "-p",
            "no:cacheprovider",
            "--runxfail",  # the suite may mark a campaign xfail for an open finding; here we want the counts
            "-o",
            "timeout=0",
        ]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - began
        if not out.exists():
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
            sys.stderr.write(f"the campaign did not report (pytest exit {result.returncode})\n")
            return 2
        report = json.loads(out.read_text())
    report["wall_seconds"] = round(wall, 1)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            if key != "problems":
                print(f"{key}: {value}")
        for problem in report["problems"][:40]:
            print(f"problem: {problem}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
