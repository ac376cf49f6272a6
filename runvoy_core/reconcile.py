"""``reconcile``: converge the records nobody watches, and deal with the tasks that have no record.

Two rules keep it safe on a cloud shared by several configs (decisions 0015-0017):

- a dry run changes nothing anywhere: records are judged from what the provider says (reads only) and each
  one gets the action a real run would take ("would finalize", "would mark LOST", "would stop orphan task");
- only tasks tagged with this config's store id are touched (stopped, cleaned up). A task of another store,
  or one without a store tag (started before tasks carried it), is reported and left alone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from runvoy_core import lifecycle
from runvoy_core.errors import ProviderError, TransientProviderError
from runvoy_core.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Execution, Status, utcnow
from runvoy_core.ports.compute import LeftoverSweeping, StoreScoped, TaskPhase, TaskState
from runvoy_core.ports.optional import CostRollups, MissingCostCount
from runvoy_core.ports.store import ExecutionQuery

if TYPE_CHECKING:
    from runvoy_core.runner import Runner

RECOUNT_WINDOW = timedelta(days=62)
"""How far back reconcile re-offers ended runs to the cost rollups: two monthly budget periods."""
OTHER_STORE = "belongs to another store, left alone"
UNTAGGED = "left alone: it carries no store tag (started before runvoy tagged tasks with their store)"


def reconcile(runner: Runner, *, dry_run: bool = False) -> list[dict[str, Any]]:
    """Finalize stuck records, mark orphans, stop (or clean up) this store's tasks that have no record;
    with ``dry_run`` only say what would be done."""
    actions: list[dict[str, Any]] = []
    for record in _active_records(runner):
        entry = _judge(runner, record) if dry_run else _repair(runner, record)
        if entry is not None:
            actions.append(entry)
    compute = runner.provider.compute
    own = compute.store_id if isinstance(compute, StoreScoped) else None
    try:
        active = compute.list_active()
    except (ProviderError, NotImplementedError) as exc:
        # a third-party provider may offer no task listing: records are still repaired above
        actions.append({"action": "skipped task scan", "reason": str(exc) or type(exc).__name__})
        active = []
    for state in active:
        entry = _orphan(runner, state, own, dry_run)
        if entry is not None:
            actions.append(entry)
    if not dry_run:
        actions.extend(_recount_costs(runner))
    if isinstance(compute, LeftoverSweeping):
        try:
            leftovers = compute.leftovers()
        except ProviderError as exc:
            actions.append({"action": "skipped leftover scan", "reason": str(exc)})
            leftovers = []
        for state in leftovers:
            entry = _leftover(runner, state, own, dry_run)
            if entry is not None:
                actions.append(entry)
    return actions


def _recount_costs(runner: Runner) -> list[dict[str, Any]]:
    """Count into the cost rollups the ended runs of the last RECOUNT_WINDOW that a runner ended without
    counting (it crashed between the final record and the count): counting is idempotent per id, so
    offering every ended run is safe; only the ones that were missing are reported."""
    store = runner.store
    if isinstance(store, MissingCostCount):
        # a store that finds the missing ones itself need not parse its (maybe 100,000) records
        return [{"execution": i, "action": "counted into cost rollups"} for i in store.count_missing_costs()]
    if not isinstance(store, CostRollups):
        return []
    actions: list[dict[str, Any]] = []
    query = ExecutionQuery(statuses=TERMINAL_STATUSES, since=utcnow() - RECOUNT_WINDOW, limit=500)
    while True:
        page = store.list(query)
        for record in page.executions:
            try:
                added = store.add_to_rollups(record)
            except Exception as exc:  # one bad record must not stop the repair of the others
                actions.append({"execution": record.id, "action": "cost not counted", "reason": str(exc)})
                continue
            if added:
                actions.append({"execution": record.id, "action": "counted into cost rollups"})
        if not page.cursor:
            return actions
        query = query.model_copy(update={"cursor": page.cursor})


def _active_records(runner: Runner) -> list[Execution]:
    records: list[Execution] = []
    cursor = None
    while True:
        page = runner.store.list(
            ExecutionQuery(statuses=frozenset(ACTIVE_STATUSES), limit=200, cursor=cursor)
        )
        records.extend(page.executions)
        cursor = page.cursor
        if not cursor:
            return records


def _repair(runner: Runner, record: Execution) -> dict[str, Any] | None:
    before_status, before_ref = record.status, record.task_ref
    after = runner.refresh(record.model_copy(deep=True))
    if after.status == before_status and after.task_ref == before_ref:
        return None
    return {
        "execution": record.id,
        "action": "repaired",
        "from": before_status.value,
        "to": after.status.value,
        "reason": after.reason,
    }


def _judge(runner: Runner, record: Execution) -> dict[str, Any] | None:
    """What ``refresh`` would do to this record, from reads alone."""
    compute = runner.provider.compute
    base: dict[str, Any] = {"execution": record.id, "from": record.status.value}
    ref = record.task_ref
    adopted = False
    try:
        if ref is None:
            ref = compute.find(record.id)
            if ref is None:
                if utcnow() - record.created_at < _orphan_after():
                    return None  # its submitter may still be starting it
                return {
                    **base,
                    "action": "would mark LOST",
                    "to": Status.LOST.value,
                    "reason": "never started: the submitter stopped first",
                }
            adopted = True
        state = compute.describe(ref)
    except TransientProviderError as exc:
        return {**base, "action": "would check again later", "reason": str(exc)}
    if state.ended:
        status, reason = lifecycle.final_status(record, state)
        action = "would mark LOST" if status is Status.LOST else "would finalize"
        return {**base, "action": action, "to": status.value, "reason": reason, "task_ref": ref}
    why = runner._overdue(record)
    if why is not None and record.stop_requested is None:
        return {
            **base,
            "action": f"would stop its task ({why})",
            "to": Status.STOPPING.value,
            "task_ref": ref,
        }
    if adopted:
        to = lifecycle.active_status(state)
        return {**base, "action": "would adopt its task", "to": to.value, "task_ref": ref}
    to = lifecycle.active_status(state)
    if lifecycle.moves_forward(record.status, to):
        return {**base, "action": "would update", "to": to.value, "task_ref": ref}
    return None


def _orphan_after() -> timedelta:
    from runvoy_core.runner import ORPHAN_AFTER  # runner imports this module

    return ORPHAN_AFTER


def _foreign(state: TaskState, own: str | None) -> dict[str, Any] | None:
    """The report for a task that is not this store's to touch, or None when it is."""
    if state.store_id is not None and state.store_id == own:
        return None
    return {
        "execution": state.execution_id,
        "task_ref": state.ref,
        "store": state.store_id,
        "action": OTHER_STORE if state.store_id is not None else UNTAGGED,
        "reason": OTHER_STORE if state.store_id is not None else UNTAGGED,
    }


def _orphan(runner: Runner, state: TaskState, own: str | None, dry_run: bool) -> dict[str, Any] | None:
    if not state.execution_id:
        return None
    foreign = _foreign(state, own)
    if foreign is not None:
        # an untagged task with a record here is one of ours from before the tag: nothing to say
        if state.store_id is None and runner.store.get(state.execution_id) is not None:
            return None
        return foreign
    if runner.store.get(state.execution_id) is not None:
        return None
    entry: dict[str, Any] = {
        "execution": state.execution_id,
        "task_ref": state.ref,
        "store": state.store_id,
        "action": "would stop orphan task" if dry_run else "stopped orphan task",
        "reason": "a task of this store has no record",
    }
    if not dry_run and state.phase not in (TaskPhase.STOPPED, TaskPhase.UNKNOWN):
        try:
            runner.provider.compute.stop(state.ref, 10.0, force=False)
        except ProviderError as exc:
            entry["action"] = f"failed to stop orphan task: {exc}"
    return entry


def _leftover(runner: Runner, state: TaskState, own: str | None, dry_run: bool) -> dict[str, Any] | None:
    foreign = _foreign(state, own)
    if foreign is not None:
        return None  # an ended task of someone else's: not ours to report or remove
    record = runner.store.get(state.execution_id) if state.execution_id else None
    if record is not None and not record.status.is_terminal:
        return None  # its record is finalized first (above, or by its watcher), which cleans it up
    entry: dict[str, Any] = {
        "execution": state.execution_id,
        "task_ref": state.ref,
        "store": state.store_id,
        "action": "would clean up ended task" if dry_run else "cleaned up ended task",
        "reason": "an ended task of this store that its watcher did not clean up",
    }
    if not dry_run:
        try:
            runner.provider.compute.cleanup(state.ref)
        except ProviderError as exc:
            entry["action"] = f"failed to clean up ended task: {exc}"
    return entry
