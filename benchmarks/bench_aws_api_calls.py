"""How many AWS API calls one short run costs on the aws provider (against moto + the cloud simulator).

    .venv/bin/python benchmarks/bench_aws_api_calls.py [--json]

Runs ``echo hi; exit 3`` three times through the Python API (start, watch with logs, final log read,
archive, finalize) and counts every call per operation with a botocore ``before-call`` hook:
1. cold: a fresh account (the task definition is registered);
2. warm process: same content again in the same process (cache hit: neither DescribeTaskDefinition nor
   RegisterTaskDefinition);
3. warm account, new process (a fresh provider: one DescribeTaskDefinition, no RegisterTaskDefinition).
Watch-loop calls (DescribeTasks, GetLogEvents) depend on how long the command runs and on the poll
interval; the script uses the test poll interval (0.05 s, backing off x1.5). Exits 1 if a cache-hit run
registered a task definition. Prints a markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "providers" / "aws" / "tests"))


def count_run(rv: Any) -> collections.Counter[str]:
    calls: collections.Counter[str] = collections.Counter()

    def handler(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_id.hyphenize()}:{model.name}"] += 1

    rv.provider.clients.register("before-call", handler)

    class Sink:
        def write_events(self, events: list[Any]) -> None:
            pass

    execution = rv.run("echo hi; exit 3", log_sink=Sink())
    assert execution.exit_code == 3, execution
    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="runvoy-bench-aws-")
    os.environ.update(
        {
            "RUNVOY_HOME": home,
            "RUNVOY_CONFIG": os.path.join(home, "config.toml"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.path.join(home, "none"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "none"),
        }
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from aws_test_tools import config_dict, reset_moto
    from moto.server import ThreadedMotoServer
    from simulator_aws import AwsSimulator

    from runvoy_core.api import Runvoy

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    simulator = AwsSimulator(endpoint)
    simulator.install()
    results: dict[str, dict[str, int]] = {}
    try:
        reset_moto(endpoint)
        config = config_dict(endpoint)
        first = Runvoy(provider="aws", **config)
        first.provider.setup(dry_run=False)
        results["cold"] = dict(count_run(first))
        results["warm process (cache hit)"] = dict(count_run(first))
        second = Runvoy(provider="aws", **config)
        results["warm account, new process"] = dict(count_run(second))
        first.close()
        second.close()
    finally:
        simulator.uninstall()
        server.stop()

    ok = all(
        counts.get("ecs:RegisterTaskDefinition", 0) == 0 for name, counts in results.items() if name != "cold"
    )
    if args.json:
        print(json.dumps({"runs": results, "cache_hit_registers_nothing": ok}, indent=2, sort_keys=True))
    else:
        operations = sorted({op for counts in results.values() for op in counts})
        names = list(results)
        print("| operation | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for op in operations:
            print(f"| {op} | " + " | ".join(str(results[n].get(op, 0)) for n in names) + " |")
        print("| **total** | " + " | ".join(str(sum(results[n].values())) for n in names) + " |")
        print()
        print("cache-hit path registers no task definition:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
