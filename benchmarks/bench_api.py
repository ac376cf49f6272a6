"""Issue 15's API load targets: one ``runvoy server`` process on the local provider, many concurrent clients.

    .venv/bin/python benchmarks/bench_api.py [--clients 50] [--requests 20] [--submits 4] [--interval 0.2]
                                             [--submit-interval 1] [--json]

What it does (docs/performance.md, "Issue 15" explains how to read the result):
1. Starts ``runvoy server --host 127.0.0.1 --port 0`` from this checkout's .venv on a fresh RUNVOY_HOME, with
   ``[serve] rate`` and ``burst`` raised so the per-key limiter never refuses (what is measured is serving, not
   refusing), and makes one operator of team ``data`` per client, each with its own key (a team, not one key).
2. Each phase runs --clients asyncio clients (httpx, one connection each) at once; each sends its requests one
   after the other and times each one from send to the last byte:
   - ``submit``: ``POST /v1/executions`` (a detached ``echo``, a real process started by the server) --submits
     times per client; these runs are what the later phases read;
   - ``status``: ``GET /v1/executions/ID/status`` of one of those runs (ended), --requests times per client;
   - ``list``: ``GET /v1/executions?limit=50``;
   - ``logs page``: ``GET /v1/executions/ID/logs?limit=100`` of a run that printed 1,000 lines;
   - floor: ``GET /healthz`` (no key, no store), measured in the same run: the HTTP stack, the event loop and
     the client, which every other row pays too.
   Every phase runs twice: saturated (each client sends its next request as soon as the last one is answered:
   the server's throughput, latency is then mostly queueing), then paced (each client sends one read every
   --interval seconds and one submit every --submit-interval seconds, starts staggered: a steady load the
   server can keep up with, the latency a user of a busy team server sees).
3. Prints P50/P95/P99 (ms), the ratio of each P50 to the floor's, requests per second of the phase (all
   requests / the phase's wall time), errors, and the targets (P95 <= 50 ms; submit <= 150 ms).
The clients run on the same machine as the server: on a 2-core machine they take CPU from it. No number here is
asserted by any test (decision 1520).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

RUNVOY = str(Path(sys.executable).parent / "runvoy")
"""The runvoy of the Python that runs this script (the development .venv)."""
READY = re.compile(r"^runvoy server listening on (http://\S+)$")
TARGET_MS = {"status": 50.0, "list": 50.0, "logs page": 50.0, "submit": 150.0}
START_TIMEOUT = 120.0


def progress(text: str) -> None:
    print(f"[bench_api] {text}", file=sys.stderr, flush=True)


@dataclass
class Phase:
    name: str
    load: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0

    def percentile(self, p: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        return statistics.quantiles(data, n=100, method="inclusive")[int(p) - 1] if len(data) > 1 else data[0]

    @property
    def rps(self) -> float:
        return (len(self.latencies_ms) + self.errors) / self.wall_s if self.wall_s else 0.0


def start_server(home: Path) -> tuple[subprocess.Popen[str], str, str]:
    config = home / "bench.toml"
    config.write_text("[serve]\nrate = 100000\nburst = 1000000\n")
    token = "rvk_" + os.urandom(8).hex() + "_" + "B" * 43
    env = {
        **os.environ,
        "RUNVOY_HOME": str(home),
        "RUNVOY_CONFIG": str(config),
        "RUNVOY_BOOTSTRAP_TOKEN": token,
    }
    env.pop("RUNVOY_SERVER", None)
    env.pop("RUNVOY_TOKEN", None)
    process = subprocess.Popen(
        [RUNVOY, "server", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if line is None:
            raise SystemExit(f"runvoy server exited with {process.wait()} before it was ready")
        if found := READY.match(line):
            return process, found.group(1), token


async def run_phase(
    name: str,
    load: str,
    clients: list[httpx.AsyncClient],
    count: int,
    request: Callable[[httpx.AsyncClient, int], Awaitable[Any]],
    interval: float | None,
) -> Phase:
    """Each client sends ``count`` requests: back to back (``interval`` None: the server saturated), or one
    every ``interval`` seconds from a start staggered across the clients (a steady offered load; a request
    still running when the next is due delays it)."""
    phase = Phase(name, load)
    began = time.perf_counter()

    async def client(http: httpx.AsyncClient, index: int) -> None:
        offset = 0.0 if interval is None else interval * index / len(clients)
        for n in range(count):
            if interval is not None:
                due = began + offset + n * interval
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent = time.perf_counter()
            try:
                response = await request(http, index * count + n)
                await response.aread()
                ok = response.status_code < 300
            except httpx.HTTPError:
                ok = False
            elapsed = (time.perf_counter() - sent) * 1000
            if ok:
                phase.latencies_ms.append(elapsed)
            else:
                phase.errors += 1

    await asyncio.gather(*(client(http, i) for i, http in enumerate(clients)))
    phase.wall_s = time.perf_counter() - began
    progress(f"{name} ({load}): {len(phase.latencies_ms)} ok, {phase.errors} errors in {phase.wall_s:.1f}s")
    return phase


async def measure(
    url: str, admin: str, n_clients: int, requests: int, submits: int, interval: float, submit_interval: float
) -> list[Phase]:
    headers = {"Authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as setup:
        tokens = []
        for i in range(n_clients):
            name = f"bench-{i}"
            (
                await setup.post("/v1/users", json={"name": name, "role": "operator", "team": "data"})
            ).raise_for_status()
            made = await setup.post("/v1/keys", json={"user": name})
            made.raise_for_status()
            tokens.append(made.json()["token"])
        # by a member of team data, like every run the clients read (an admin's run is not theirs to see)
        logs_run = await setup.post(
            "/v1/executions", json={"command": "seq 1 1000"}, headers={"Authorization": f"Bearer {tokens[0]}"}
        )
        logs_run.raise_for_status()
        logs_id = logs_run.json()["id"]
        (await setup.post(f"/v1/executions/{logs_id}/wait", json={"timeout": 60})).raise_for_status()

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {t}"}, timeout=120, limits=limits)
        for t in tokens
    ]
    submitted: list[str] = []
    try:
        # connections opened before any timing (a first request pays the TCP handshake)
        await asyncio.gather(*(c.get("/healthz") for c in clients))

        async def submit(http: httpx.AsyncClient, n: int) -> httpx.Response:
            response = await http.post("/v1/executions", json={"command": f"echo run {n}"})
            if response.status_code == 201:
                submitted.append(response.json()["id"])
            return response

        phases: list[Phase] = []
        loads = [("saturated", None, None), ("paced", interval, submit_interval)]
        for load, read_every, submit_every in loads:
            label = load if submit_every is None else f"paced: 1 per {submit_every:g}s per client"
            start = len(submitted)
            phases.append(await run_phase("submit", label, clients, submits, submit, submit_every))
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as admin_client:
                for execution_id in submitted[start:]:  # every run ended before the reads
                    await admin_client.post(f"/v1/executions/{execution_id}/wait", json={"timeout": 60})
            ids = submitted or [logs_id]
            reads: list[tuple[str, Callable[[httpx.AsyncClient, int], Awaitable[Any]]]] = [
                ("floor: GET /healthz", lambda h, n: h.get("/healthz")),
                ("status", lambda h, n, ids=ids: h.get(f"/v1/executions/{ids[n % len(ids)]}/status")),
                ("list", lambda h, n: h.get("/v1/executions", params={"limit": 50})),
                ("logs page", lambda h, n: h.get(f"/v1/executions/{logs_id}/logs", params={"limit": 100})),
            ]
            if read_every is not None:
                label = f"paced: 1 per {read_every:g}s per client"
            for name, call in reads:
                phases.append(await run_phase(name, label, clients, requests, call, read_every))
        return phases
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def report(phases: list[Phase], args: argparse.Namespace, as_json: bool) -> None:
    floors = {p.load.split(":")[0]: p for p in phases if p.name.startswith("floor")}
    rows = []
    for p in phases:
        floor = floors[p.load.split(":")[0]]
        target = TARGET_MS.get(p.name)
        p95 = p.percentile(95)
        rows.append(
            {
                "operation": p.name,
                "load": p.load,
                "requests": len(p.latencies_ms),
                "errors": p.errors,
                "p50_ms": round(p.percentile(50), 1),
                "p95_ms": round(p95, 1),
                "p99_ms": round(p.percentile(99), 1),
                "p50_vs_floor": round(p.percentile(50) / floor.percentile(50), 1),
                "requests_per_s": round(p.rps, 1),
                "target_p95_ms": target,
                "met": None if target is None else p95 <= target,
            }
        )
    meta = {
        "clients": args.clients,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    if as_json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(
        f"{args.clients} concurrent clients, one server process (local provider), Python {meta['python']}, "
        f"{meta['cpus']} CPUs\n"
    )
    print(
        "| load | operation | requests | P50 ms | P95 ms | P99 ms | P50 / floor | req/s | target P95 | met |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        target = "-" if r["target_p95_ms"] is None else f"<= {r['target_p95_ms']:g} ms"
        met = "-" if r["met"] is None else ("yes" if r["met"] else "**no**")
        errors = f" ({r['errors']} errors)" if r["errors"] else ""
        print(
            f"| {r['load']} | {r['operation']} | {r['requests']}{errors} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
            f"{r['p50_vs_floor']}x | {r['requests_per_s']} | {target} | {met} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client in each read phase")
    parser.add_argument("--submits", type=int, default=4, help="runs each client submits")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between a client's reads, paced")
    parser.add_argument(
        "--submit-interval", type=float, default=1.0, help="seconds between a client's submits, paced"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rvbapi") as home:
        process, url, token = start_server(Path(home))
        try:
            progress(f"server at {url}")
            phases = asyncio.run(
                measure(
                    url, token, args.clients, args.requests, args.submits, args.interval, args.submit_interval
                )
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    report(phases, args, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
