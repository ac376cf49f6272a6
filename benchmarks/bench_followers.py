"""Cloud calls per run per minute when one process follows many runs at once (issue 14, item 3).

    .venv/bin/python benchmarks/bench_followers.py [--provider aws|gcp] [--runs 20] [--seconds 30] [--json]

One process runs ``--runs`` attached runs at once (``Runvoy(provider=...).run(...)`` from one thread each,
every run printing a line, sleeping ``--seconds`` and printing another), twice: "before", each watcher
polling its own task (``Runner.shared_polling`` off, as before decision 0026), and "after", the watchers
sharing the provider's poller. Rates are per run and per minute of following.

- aws (default): moto + the in-repo cloud simulator, no account. Every AWS call is counted by operation with a
  botocore ``before-call`` hook. The provider's default cadence: ``poll_interval_min`` 1 s, backing off x1.5 to
  ``poll_interval_max`` 5 s.
- gcp: the gcp provider's test servers (the in-repo Cloud Run and Cloud Logging fakes, fake-gcs-server),
  counting the requests they received. The gcp provider declares no minimum poll interval, and Cloud
  Logging's read quota (60 a minute per project, shared by all followers) bounds the log reads.

The port calls the core made are read from ``runvoy_core.polling.CALLS`` as well. ``measure_followers(provider,
runs)`` returns the numbers as a flat dict (for the combined benchmark).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "providers" / "aws" / "tests"))

STATE_CALLS = {
    "aws": {"ecs:DescribeTasks"},
    "gcp": {
        "run.projects.locations.jobs.executions.get",
        "run.projects.locations.jobs.executions.list",
        "run.projects.locations.jobs.executions.tasks.list",
    },
}
"""The cloud calls that ask about tasks' states, per provider."""
LOG_READS = {"aws": {"cloudwatch-logs:GetLogEvents"}, "gcp": {"logging.entries.list"}}

Counting = Callable[[Any], Callable[[], collections.Counter[str]]]
"""Given a Runvoy client: start counting its cloud calls; returns what reads the counts so far."""


class _NullSink:
    def write_events(self, events: list[Any]) -> None:
        pass


def _home() -> None:
    home = tempfile.mkdtemp(prefix="runvoy-bench-followers-")
    os.environ.update(
        {
            "RUNVOY_HOME": home,
            "RUNVOY_CONFIG": os.path.join(home, "config.toml"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.path.join(home, "none"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "none"),
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
            # the emulated tasks pull nothing, and no public registry is reachable from every machine: the
            # default image is not looked up (decision 0804), as in the test suite
            "RUNVOY_IMAGES__CHECK": "false",
            "RUNVOY_WARM": "0",
        }
    )
    for name in ("werkzeug", "urllib3.connectionpool"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _count_aws(rv: Any) -> Callable[[], collections.Counter[str]]:
    calls: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def count(model: Any, **_: Any) -> None:
        with lock:
            calls[f"{model.service_model.service_id.hyphenize()}:{model.name}"] += 1

    rv.provider.clients.register("before-call", count)
    return lambda: calls


@contextlib.contextmanager
def _aws_account() -> Iterator[tuple[dict[str, object], Counting]]:
    """A moto server with the simulator installed: the aws provider's config section, and its counting."""
    _home()
    from aws_test_tools import config_dict, reset_moto
    from moto.server import ThreadedMotoServer
    from simulator_aws import AwsSimulator

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    simulator = AwsSimulator(endpoint)
    simulator.install()
    try:
        reset_moto(endpoint)
        # the provider's default cadence, not the test suite's fast one
        yield config_dict(endpoint, poll_interval_min=1.0), _count_aws
    finally:
        simulator.uninstall()
        server.stop()


@contextlib.contextmanager
def _gcp_project() -> Iterator[tuple[dict[str, object], Counting]]:
    """The gcp provider's test servers: its config section (one project), and its counting."""
    _home()
    from runvoy_core.testing.packages import load_package
    from runvoy_core.testing.simulator import CloudSimulator

    load_package(ROOT / "providers" / "gcp" / "tests" / "fakes", "runvoy_gcp_testfakes")
    from runvoy_gcp_testfakes.cloud_logging import FakeCloudLogging
    from runvoy_gcp_testfakes.cloud_run import FakeCloudRun
    from runvoy_gcp_testfakes.gcs_server import FakeGcsServer

    simulator = CloudSimulator()
    fake_logging = FakeCloudLogging().start()
    fake_run = FakeCloudRun(simulator, fake_logging.store).start()
    fake_gcs = FakeGcsServer().start()
    project = "bench-followers"
    settings: dict[str, object] = {
        "project": project,
        "region": "us-central1",
        "bucket": f"b-{project}",
        "run_endpoint": fake_run.endpoint,
        "logging_endpoint": fake_logging.endpoint,
        "storage_endpoint": fake_gcs.endpoint,
        "secretmanager_endpoint": fake_run.endpoint,
        "anonymous_credentials": True,
        "image": "python:3.12-slim",
    }

    def counting(rv: Any) -> Callable[[], collections.Counter[str]]:
        servers = (fake_run.server, fake_logging.server)
        marks = [len(server.calls) for server in servers]

        def counts() -> collections.Counter[str]:
            calls: collections.Counter[str] = collections.Counter()
            for server, mark in zip(servers, marks, strict=True):
                calls.update(call.method_id for call in server.calls[mark:])
            return calls

        return counts

    try:
        yield settings, counting
    finally:
        simulator.shutdown(timeout=30)
        fake_gcs.stop()
        fake_run.stop()
        fake_logging.stop()


ACCOUNTS = {"aws": _aws_account, "gcp": _gcp_project}


def _follow(
    provider: str, config: dict[str, object], counting: Counting, runs: int, seconds: float, *, shared: bool
) -> dict[str, float]:
    from runvoy_core.api import Runvoy
    from runvoy_core.polling import CALLS

    rv = Runvoy(provider=provider, **config)
    try:
        if provider == "gcp":
            with contextlib.suppress(Exception):  # the second measure finds it made
                rv.provider.clients.storage.create_bucket(rv.provider.clients.bucket_name)
        else:
            rv.provider.setup(dry_run=False)
        rv.runner.shared_polling = shared
        counts = counting(rv)
        CALLS.reset()
        failures: list[BaseException] = []

        def one() -> None:
            try:
                rv.run(f"echo start; sleep {seconds:g}; echo end", log_sink=_NullSink())
            except BaseException as exc:  # reported below, not lost in a thread
                failures.append(exc)

        threads = [threading.Thread(target=one, daemon=True) for _ in range(runs)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        minutes = (time.monotonic() - began) / 60
        if failures:
            raise RuntimeError(f"{len(failures)} of {runs} runs failed: {failures[0]!r}")
        ports = CALLS.of(provider)
        calls = counts()
    finally:
        rv.close()

    def rate(n: float) -> float:
        return round(n / runs / minutes, 2)

    return {
        "state_calls_per_run_minute": rate(sum(calls[op] for op in STATE_CALLS[provider])),
        "log_reads_per_run_minute": rate(sum(calls[op] for op in LOG_READS[provider])),
        "cloud_calls_per_run_minute": rate(sum(calls.values())),
        "state_port_calls_per_run_minute": rate(ports.get("status_many", 0) + ports.get("describe", 0)),
        "follow_minutes": round(minutes, 3),
    }


def measure_followers(provider: str = "aws", runs: int = 20, seconds: float = 30.0) -> dict[str, float]:
    """Calls per run per minute of ``runs`` runs followed at once, before (one poller per run) and after
    (one shared poller): flat keys ``before_<measure>`` / ``after_<measure>`` and ``state_calls_reduction``
    (before / after, of the calls that ask about tasks' states: DescribeTasks on aws)."""
    if provider not in ACCOUNTS:
        raise ValueError(f"bench_followers measures {' or '.join(ACCOUNTS)}, not {provider!r}")
    saved = dict(os.environ)  # a caller's own RUNVOY_HOME and credentials come back afterwards
    try:
        with ACCOUNTS[provider]() as (config, counting):
            # the first run in an account registers its task definition or job: not part of either measure
            _follow(provider, config, counting, 1, 1.0, shared=True)
            before = _follow(provider, config, counting, runs, seconds, shared=False)
            after = _follow(provider, config, counting, runs, seconds, shared=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    result: dict[str, float] = {"runs": float(runs), "seconds": float(seconds)}
    for name, value in before.items():
        result[f"before_{name}"] = value
    for name, value in after.items():
        result[f"after_{name}"] = value
    shared = after["state_calls_per_run_minute"]
    reduction = before["state_calls_per_run_minute"] / shared if shared else 0.0
    result["state_calls_reduction"] = round(reduction, 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=sorted(ACCOUNTS), default="aws")
    parser.add_argument("--runs", type=int, default=20, help="runs followed at once (1-100)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each run sleeps (1-600)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    args = parser.parse_args()
    if not 1 <= args.runs <= 100 or not 1 <= args.seconds <= 600:
        parser.error("--runs must be 1-100 and --seconds 1-600")
    result = measure_followers(args.provider, args.runs, args.seconds)
    if args.json:
        print(json.dumps({"provider": args.provider, **result}, indent=2, sort_keys=True))
        return 0
    measures = [k.removeprefix("before_") for k in result if k.startswith("before_")]
    print(f"{args.runs} attached runs of {args.seconds:g} s followed at once ({args.provider}, simulated)")
    print()
    print("| per run per minute | before (a poller per run) | after (one shared poller) |")
    print("|---|---:|---:|")
    for name in measures:
        print(f"| {name} | {result['before_' + name]} | {result['after_' + name]} |")
    print()
    print(f"calls about task states: {result['state_calls_reduction']}x fewer with the shared poller")
    return 0


if __name__ == "__main__":
    sys.exit(main())
