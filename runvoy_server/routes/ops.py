"""``/v1/playbooks``, ``/v1/locks``, ``/v1/cost``, ``/v1/budgets``, ``/v1/providers``: the rest of the Backend
Protocol, one route per method (decision 1516). The answers are the JSON the Protocol's methods document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from runvoy_core import inputs
from runvoy_core.remote import sse
from runvoy_server.routes.bodies import BudgetBody, EstimateBody, PlaybookBody, ReleaseBody
from runvoy_server.routes.deps import CallerBackend
from runvoy_server.routes.schemas import json_answer
from runvoy_server.routes.streams import (
    ChannelSink,
    EventChannel,
    EventStreamResponse,
    event_stream,
    lock_wait_sender,
    message_sender,
    stream_schema,
)

router = APIRouter(prefix="/v1")

OBJECT: dict[str, Any] = {"type": "object"}
LockName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=132,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}(#[0-9]{1,3})?$",
        description=inputs.LOCK_REF.text,
    ),
]
BudgetName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
        description=inputs.BUDGET_NAME.text,
    ),
]


def _json(data: Any, status: int = 200) -> Response:
    import json

    return Response(
        json.dumps(data, default=str, ensure_ascii=False), status_code=status, media_type="application/json"
    )


# -- playbooks ---------------------------------------------------------------------------------------------------
@router.post(
    "/playbooks/runs",
    tags=["runs"],
    summary="Run a playbook given as YAML text, and stream it (Server-Sent Events)",
    response_class=EventStreamResponse,
    responses=stream_schema("the events of POST /v1/runs"),
)
def run_playbook(body: PlaybookBody, backend: CallerBackend) -> Any:
    options = body.options()

    def work(channel: EventChannel) -> None:
        messages, lock_waits = message_sender(channel), lock_wait_sender(channel)
        if body.detach:
            execution = backend.submit_playbook(
                body.text,
                name=body.name,
                source=body.source,
                on_message=messages,
                on_lock_wait=lock_waits,
                **options,
            )
            channel.send(sse.STARTED, execution.model_dump_json())
        else:
            execution = backend.run_playbook(
                body.text,
                name=body.name,
                source=body.source,
                log_sink=ChannelSink(channel),
                on_message=messages,
                on_lock_wait=lock_waits,
                on_start=lambda handle: channel.send(sse.STARTED, handle.execution.model_dump_json()),
                **options,
            )
        channel.send(sse.END, execution.model_dump_json())

    return event_stream(work)


# -- locks -------------------------------------------------------------------------------------------------------
@router.get(
    "/locks",
    tags=["locks"],
    summary="Every lock of the server's lock register",
    responses=json_answer(
        "the locks, by name",
        {
            "type": "object",
            "properties": {"locks": {"type": "array", "items": OBJECT}},
            "required": ["locks"],
        },
    ),
)
def list_locks(backend: CallerBackend) -> Any:
    return _json({"locks": backend.list_locks()})


@router.post(
    "/locks/{name:path}/release",
    tags=["locks"],
    summary="Release a lock (force: whoever holds it)",
    responses=json_answer("name, released, fence, message", OBJECT),
)
def release_lock(name: LockName, backend: CallerBackend, body: ReleaseBody | None = None) -> Any:
    given = body or ReleaseBody()
    return _json(backend.release_lock(name, force=given.force, version=given.version))


@router.get(
    "/locks/{name:path}",
    tags=["locks"],
    summary="One lock, its holder's status and its queue",
    responses=json_answer("the lock", OBJECT),
)
def lock_status(name: LockName, backend: CallerBackend) -> Any:
    return _json(backend.lock_status(name))


# -- cost --------------------------------------------------------------------------------------------------------
@router.post(
    "/cost/estimate",
    tags=["cost"],
    summary="What runs of a size would cost",
    responses=json_answer("request, catalog, estimates, warnings", OBJECT),
)
def estimate_cost(backend: CallerBackend, body: EstimateBody | None = None) -> Any:
    return _json(backend.estimate_cost(**(body or EstimateBody()).model_dump()))


@router.get(
    "/cost/report",
    tags=["cost"],
    summary="What stored runs cost, grouped",
    responses=json_answer("the report", OBJECT),
)
def cost_report(
    backend: CallerBackend,
    since: Annotated[float, Query(ge=86400, le=3650 * 86400, description="seconds back (1 to 3650 days)")] = 7
    * 86400,
    by: Annotated[str, Query(pattern="^(provider|user|label|lock|day)$")] = "provider",
    provider: Annotated[str | None, Query(max_length=32, description=inputs.PROVIDER.text)] = None,
) -> Any:
    return _json(backend.cost_report(since=since, by=by, provider=provider))


# -- budgets -----------------------------------------------------------------------------------------------------
@router.get(
    "/budgets",
    tags=["budgets"],
    summary="Every budget and what it has spent this period",
    responses=json_answer(
        "the budgets",
        {
            "type": "object",
            "properties": {"budgets": {"type": "array", "items": OBJECT}},
            "required": ["budgets"],
        },
    ),
)
def list_budgets(backend: CallerBackend) -> Any:
    return _json({"budgets": backend.list_budgets()})


@router.get(
    "/budgets/{name}", tags=["budgets"], summary="One budget", responses=json_answer("the budget", OBJECT)
)
def show_budget(name: BudgetName, backend: CallerBackend) -> Any:
    return _json(backend.show_budget(name))


@router.put(
    "/budgets/{name}",
    tags=["budgets"],
    summary="Create or replace a budget",
    responses=json_answer("budget, created", OBJECT),
)
def set_budget(name: BudgetName, body: BudgetBody, backend: CallerBackend) -> Any:
    return _json(backend.set_budget(name, **body.model_dump()))


@router.delete("/budgets/{name}", tags=["budgets"], status_code=204, summary="Delete a budget")
def remove_budget(name: BudgetName, backend: CallerBackend) -> Response:
    backend.remove_budget(name)
    return Response(status_code=204)


# -- providers ---------------------------------------------------------------------------------------------------
@router.get(
    "/providers",
    tags=["providers"],
    summary="The providers installed on the server",
    responses=json_answer("providers, failures, skipped, notices, prices, warnings", OBJECT),
)
def list_providers(backend: CallerBackend) -> Any:
    return _json(backend.list_providers())
