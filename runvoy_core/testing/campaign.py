"""A seeded fault campaign: many runs through the public Python API while fault proxies (faultproxy.py)
break the provider's traffic, then a check that nothing escaped, leaked or lied.

Any provider whose tests run its tasks through the cloud simulator (runvoy_core.testing.simulator) can use it:

    chaos = Chaos(seed, CAMPAIGN_FAULTS)             # shared by the proxies in front of each server
    campaign = Campaign(make_client, chaos, simulator, seed=seed, operations=200)
    report = campaign.run()
    print(report.format()); assert report.ok, report.format()

``make_client`` returns a new ``Runvoy`` whose SDK clients go through the proxies (with the SDK's own
retries off or low, so the faults reach runvoy). The operations, drawn from the seed: an attached ``run``, a
detached run followed by ``status`` until it ends, a ``kill`` of a running detached run, and two runs on one
lock (the second waits). Then the faults are switched off, every simulated task is let to end, ``reconcile``
runs until it has nothing left to do, and the campaign counts (the bad counts must all be 0):

- duplicate tasks: more than one cloud task for one execution id (ground truth: the simulator);
- tasks running without a live record: a task still running whose record is final or missing;
- records stuck: records in a non-final state after reconcile;
- lost log lines: lines a finished run printed that ``logs`` does not return;
- internal errors: exceptions that are not RunvoyErrors (RunvoyErrors are "clean errors": the faults are
  allowed to make an operation fail, cleanly).
"""

from __future__ import annotations

import functools
import json
import os
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runvoy_core.errors import RunvoyError, TransientProviderError
from runvoy_core.models import Execution, Status
from runvoy_core.ports.store import ExecutionQuery
from runvoy_core.testing.faultproxy import Chaos
from runvoy_core.testing.simulator import CloudSimulator
from runvoy_core.testing.sinks import RecordingSink

if TYPE_CHECKING:
    from runvoy_core.api import Runvoy

CAMPAIGN_FAULTS: dict[str, float] = {
    "delay": 0.05,
    "drop": 0.015,
    "429": 0.015,
    "500": 0.01,
    "503": 0.01,
    "lost_answer": 0.015,
    "reset": 0.01,
}
"""About one request in thirteen goes wrong: enough that most operations meet a fault somewhere, few enough
that most runs still get through and their logs can be checked."""

OPERATIONS = ("run", "detach", "kill", "lock")
WEIGHTS = (4, 3, 2, 1)
LINES = 5
OUTLIVE_TOLERANCE = 1.0
"""Seconds a task may be seen to end after its record says it did: the cloud's clock and granularity."""
BAD_COUNTS = (
    "duplicate_tasks",
    "tasks_running_without_live_record",
    "records_stuck_after_reconcile",
    "lost_log_lines",
    "internal_errors",
    "ran_but_recorded_as_not_started",
)


def _messages(client: Runvoy, execution_id: str) -> list[str]:
    return [event.message for event in client.logs(execution_id)]


def _says_not_started(record: Execution) -> bool:
    reason = record.reason or ""
    return record.task_ref is None or reason.startswith(("failed to start", "never started"))


def lines_command(n: int = LINES) -> str:
    return "; ".join(f"echo 'line {i}'" for i in range(1, n + 1))


def expected_lines(n: int = LINES) -> list[str]:
    return [f"line {i}" for i in range(1, n + 1)]


# a run for ``kill`` to stop; bounded (about 10 s) so a run whose kill failed still ends by itself
KILL_COMMAND = "echo started; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; echo done"


@dataclass
class CampaignReport:
    seed: int
    operations: int
    executions: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    clean_errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: dict[str, int] = field(default_factory=dict)
    reconcile_rounds: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(self.counts.get(name, 0) == 0 for name in BAD_COUNTS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "operations": self.operations,
            "executions": self.executions,
            **{name: self.counts.get(name, 0) for name in BAD_COUNTS},
            "clean_errors": sum(self.clean_errors.values()),
            "clean_errors_by_type": dict(self.clean_errors),
            "statuses": dict(self.statuses),
            "faults_injected": self.faults,
            "failed_or_lost": dict(self.outcomes),
            "reconcile_rounds": self.reconcile_rounds,
            "seconds": round(self.seconds, 1),
            "ok": self.ok,
            "problems": self.problems,
        }

    def format(self) -> str:
        rows = [
            f"fault campaign seed={self.seed}: {self.operations} operations, {self.executions} executions, "
            f"{self.seconds:.1f}s, reconcile rounds={self.reconcile_rounds}",
            *(f"  {name}: {self.counts.get(name, 0)}" for name in BAD_COUNTS),
            f"  clean_errors: {sum(self.clean_errors.values())} {dict(self.clean_errors)}",
            f"  statuses: {dict(self.statuses)}",
            f"  faults injected: {self.faults}",
            *(f"  {n} x {text}" for text, n in self.outcomes.most_common(15)),
        ]
        rows += [f"  problem: {p}" for p in self.problems[:40]]
        return "\n".join(rows)


class Campaign:
    def __init__(
        self,
        make_client: Callable[[], Runvoy],
        chaos: Chaos,
        simulator: CloudSimulator,
        *,
        seed: int,
        operations: int = 200,
        workers: int = 4,
        op_deadline: float = 60.0,
    ) -> None:
        self.make_client = make_client
        self.chaos = chaos
        self.simulator = simulator
        self.seed = seed
        self.operations = operations
        self.workers = workers
        self.op_deadline = op_deadline
        self.report = CampaignReport(seed=seed, operations=operations)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[Runvoy] = []

    # -- bookkeeping ------------------------------------------------------------------------------------------
    def _client(self, slot: int = 0) -> Runvoy:
        clients: dict[int, Runvoy] = self._local.__dict__.setdefault("clients", {})
        if slot not in clients:
            client = self.make_client()
            clients[slot] = client
            with self._lock:
                self._clients.append(client)
        return clients[slot]

    def _problem(self, text: str) -> None:
        with self._lock:
            self.report.problems.append(text)

    def _guard(self, what: str, call: Callable[[], Any]) -> tuple[bool, Any]:
        """Run one API call; a RunvoyError is a clean error, anything else an internal error (kept with
        its traceback)."""
        try:
            return True, call()
        except RunvoyError as exc:
            with self._lock:
                self.report.clean_errors[type(exc).__name__] += 1
            return False, exc
        except Exception as exc:
            with self._lock:
                self.report.counts["internal_errors"] = self.report.counts.get("internal_errors", 0) + 1
            self._problem(f"internal error in {what}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            return False, exc

    # -- operations ---------------------------------------------------------------------------------------------
    def _run(self, n: int) -> None:
        sink = RecordingSink()
        labels = {"campaign": "run", "op": str(n)}
        client = self._client()
        self._guard("run", lambda: client.run(lines_command(), log_sink=sink, stop_grace="1s", labels=labels))

    def _until_final(self, client: Runvoy, execution_id: str, what: str) -> Execution | None:
        deadline = time.monotonic() + self.op_deadline
        while time.monotonic() < deadline:
            ok, record = self._guard(what, lambda: client.status(execution_id))
            if ok and record.status.is_terminal:
                return record  # type: ignore[no-any-return]
            time.sleep(0.1)
        return None

    def _detach(self, n: int) -> None:
        client = self._client()
        labels = {"campaign": "detach", "op": str(n)}
        ok, execution = self._guard(
            "submit", lambda: client.submit(lines_command(), stop_grace="1s", labels=labels)
        )
        if ok:
            self._until_final(client, execution.id, "status")

    def _kill(self, n: int) -> None:
        client = self._client()
        labels = {"campaign": "kill", "op": str(n)}
        ok, execution = self._guard(
            "submit", lambda: client.submit(KILL_COMMAND, stop_grace="1s", labels=labels)
        )
        if not ok:
            return
        deadline = time.monotonic() + self.op_deadline
        while time.monotonic() < deadline:
            ok, record = self._guard("status", lambda: client.status(execution.id))
            if ok and (record.status is Status.RUNNING or record.status.is_terminal):
                break
            time.sleep(0.05)
        for _ in range(5):  # a user whose kill failed tries again
            ok, _record = self._guard("kill", lambda: client.kill(execution.id))
            if ok:
                break
        self._until_final(client, execution.id, "status")

    def _lock_pair(self, n: int) -> None:
        lock = f"campaign-{self.seed}-{n}"
        labels = {"campaign": "lock", "op": str(n)}

        def one(client: Runvoy) -> None:
            self._guard(
                "run --lock",
                lambda: client.run(
                    lines_command(),
                    labels=labels,
                    lock=lock,
                    on_conflict="wait",
                    lock_timeout="60s",
                    stop_grace="1s",
                ),
            )

        # the second run is another user: its own thread and client (this worker's second one)
        second = self._client(1)
        other = threading.Thread(target=one, args=(second,), name=f"campaign-lock-{n}")
        other.start()
        one(self._client(0))
        other.join()

    def _operation(self, n: int, kind: str) -> None:
        {"run": self._run, "detach": self._detach, "kill": self._kill, "lock": self._lock_pair}[kind](n)

    # -- the campaign ---------------------------------------------------------------------------------------------
    def run(self) -> CampaignReport:
        began = time.monotonic()
        before = {task.key for task in self.simulator.tasks()}
        plan = random.Random(self.seed).choices(OPERATIONS, weights=WEIGHTS, k=self.operations)
        self.chaos.enabled = True
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="campaign") as pool:
                for future in [pool.submit(self._operation, n, kind) for n, kind in enumerate(plan)]:
                    future.result()
        finally:
            self.chaos.enabled = False
        self.report.faults = self.chaos.counts()
        self._check(before)
        self.report.seconds = time.monotonic() - began
        for client in self._clients:
            client.close()
        return self.report

    def _check(self, before: set[str]) -> None:
        checker = self.make_client()
        self._clients.append(checker)
        tasks = [t for t in self.simulator.tasks() if t.key not in before]
        # every command ends by itself: let them, so what is left running afterwards is runvoy's doing
        deadline = time.monotonic() + 60
        for task in tasks:
            task.wait(max(0.0, deadline - time.monotonic()))
        self.report.reconcile_rounds = self._reconcile(checker)
        records = self._all_records(checker)
        by_id = {r.id: r for r in records}
        self.report.executions = len(records)
        self.report.statuses = Counter(r.status.value for r in records)
        counts = self.report.counts
        per_execution = Counter(t.env.get("RUNVOY_EXECUTION_ID", "?") for t in tasks)
        duplicates = {eid: n for eid, n in per_execution.items() if n > 1}
        counts["duplicate_tasks"] = sum(n - 1 for n in duplicates.values())
        for eid, n in duplicates.items():
            self._problem(f"duplicate tasks: {n} tasks for execution {eid}")
        running = 0
        for task in tasks:
            if task.done:
                continue
            record = by_id.get(task.env.get("RUNVOY_EXECUTION_ID", ""))
            if record is None or record.status.is_terminal:
                running += 1
                self._problem(f"task {task.key} still runs; its record: {record and record.status}")
        for task in tasks:
            record = by_id.get(task.env.get("RUNVOY_EXECUTION_ID", ""))
            ended = task.exit_info.finished_at if task.exit_info and task.started_at else None
            if record is None or record.finished_at is None or ended is None:
                continue
            # a record made final while its task still ran: nobody watched the rest of that run
            outlived = ended - record.finished_at.timestamp()
            if outlived > OUTLIVE_TOLERANCE:
                running += 1
                self._problem(
                    f"task of {record.id} ran {outlived:.1f}s after its record became {record.status.value} "
                    f"({record.reason})"
                )
        try:
            active = checker.provider.compute.list_active()
        except RunvoyError as exc:
            self._problem(f"list_active failed with faults off: {exc}")
            active = []
        for state in active:
            record = by_id.get(state.execution_id or "")
            if state.execution_id and (record is None or record.status.is_terminal):
                running += 1
                self._problem(
                    f"the cloud lists {state.ref} as {state.phase}; its record: {record and record.status}"
                )
        counts["tasks_running_without_live_record"] = running
        stuck = [r for r in records if not r.status.is_terminal]
        counts["records_stuck_after_reconcile"] = len(stuck)
        for record in stuck:
            self._problem(
                f"record {record.id} stuck {record.status} ({record.reason}), task {record.task_ref}"
            )
        counts["lost_log_lines"] = self._lost_lines(checker, records)
        for record in records:
            if record.status in (Status.FAILED, Status.LOST):
                self.report.outcomes[
                    f"{record.request.labels.get('campaign')} {record.status.value}: {record.reason}"
                ] += 1
        # a task that ran to its own end (nobody stopped it) for a run recorded as never started
        ran = {
            t.env.get("RUNVOY_EXECUTION_ID")
            for t in tasks
            if t.started_at is not None and t.exit_info is not None and not t.exit_info.stopped
        }
        liars = [r for r in records if r.id in ran and _says_not_started(r)]
        counts["ran_but_recorded_as_not_started"] = len(liars)
        for record in liars:
            self._problem(f"{record.id} ran, but its record says {record.status.value} ({record.reason})")

    def _reconcile(self, client: Runvoy, rounds: int = 10) -> int:
        import runvoy_core.runner as runner_module

        # every submitter has returned: a record without a task is no longer one "its submitter may still
        # be starting", so the grace the runner gives a live submitter (a minute) is not waited out here
        saved = runner_module.ORPHAN_AFTER
        runner_module.ORPHAN_AFTER = timedelta(0)
        try:
            return self._reconcile_rounds(client, rounds)
        finally:
            runner_module.ORPHAN_AFTER = saved

    def _reconcile_rounds(self, client: Runvoy, rounds: int) -> int:
        actions: Any = None
        for round_ in range(1, rounds + 1):
            ok, actions = self._guard("reconcile", client.reconcile)
            # another store's (or an untagged) task is reported at every round: not work left to do. A record
            # whose refresh met an error says nothing either, so converged also means no active record left
            quiet = ok and not [a for a in actions if "left alone" not in str(a.get("action"))]
            if quiet and not [r for r in self._all_records(client) if not r.status.is_terminal]:
                return round_
            time.sleep(0.2)
        self._problem(f"reconcile did not converge in {rounds} rounds: {actions}")
        return rounds

    def _all_records(self, client: Runvoy) -> list[Execution]:
        records: list[Execution] = []
        cursor = None
        while True:
            page = client.store.list(ExecutionQuery(limit=200, cursor=cursor))
            records.extend(page.executions)
            cursor = page.cursor
            if not cursor:
                return records

    def _lost_lines(self, client: Runvoy, records: list[Execution]) -> int:
        lost = 0
        want = expected_lines()
        for record in records:
            if record.status is not Status.SUCCEEDED or record.request.labels.get("campaign") == "kill":
                continue
            # a transient error says nothing about lost lines (callers retry it): a line is lost only when a
            # read that succeeds lacks it. A pooled connection the proxy broke can still fail the first read.
            for attempt in range(5):
                ok, events = self._guard("logs", functools.partial(_messages, client, record.id))
                if ok or not isinstance(events, TransientProviderError):
                    break
                time.sleep(0.2 * (attempt + 1))
            got = events if ok else []
            missing = [line for line in want if line not in got]
            if missing:
                lost += len(missing)
                said = got if ok else f"an error: {events!r}"
                self._problem(
                    f"{record.id} ({record.request.labels}, task {record.task_ref}) lost {missing}; logs gave {said}"
                )
        return lost


DEFAULT_SEED = 20261203


def campaign_settings() -> dict[str, int]:
    """The seed, number of operations and workers of a campaign test (``Campaign(..., **settings)``): fixed
    in the suite, set by benchmarks/fault_campaign.py (RUNVOY_CAMPAIGN_SEED, _RUNS, _WORKERS) for a longer
    one."""
    return {
        "seed": int(os.environ.get("RUNVOY_CAMPAIGN_SEED") or DEFAULT_SEED),
        "operations": int(os.environ.get("RUNVOY_CAMPAIGN_RUNS") or 200),
        "workers": int(os.environ.get("RUNVOY_CAMPAIGN_WORKERS") or 4),
    }


def publish(report: CampaignReport, provider: str) -> None:
    """Print the counts (pytest shows them with -s, and on failure) and, for the benchmark, write them as
    JSON to RUNVOY_CAMPAIGN_JSON."""
    print(f"[{provider}] {report.format()}")
    target = os.environ.get("RUNVOY_CAMPAIGN_JSON")
    if target:
        Path(target).write_text(json.dumps({"provider": provider, **report.to_dict()}, indent=2))
