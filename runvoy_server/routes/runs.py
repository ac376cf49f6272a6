"""``/v1/runs``, ``/v1/executions``, ``/v1/reconcile``, ``/v1/info``: running, reading and stopping runs.

Each route is one call of the Backend Protocol on the request's TeamBackend (permissions, audit and the
caller's team are its business, never a route's), translated from HTTP and back (decision 1516).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from runvoy_core import inputs
from runvoy_core.errors import ValidationFailed
from runvoy_core.models import Execution, LogPage, Status, StatusChange
from runvoy_core.remote import sse
from runvoy_server.deps import server_state
from runvoy_server.routes.bodies import KillBody, ReconcileBody, RunBody, StreamedRunBody, WaitBody
from runvoy_server.routes.deps import CallerBackend
from runvoy_server.routes.schemas import (
    array_response,
    json_answer,
    list_answer,
    record_answer,
    record_response,
    records_response,
    ref,
)
from runvoy_server.routes.streams import (
    ChannelSink,
    EventChannel,
    EventStreamResponse,
    event_stream,
    lock_wait_sender,
    message_sender,
    stream_schema,
)

router = APIRouter(prefix="/v1", tags=["runs"])

ExecutionId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$", description=inputs.EXECUTION_ID.text),
]
MAX_LIST = 10_000
WAIT_SHARE = 0.6
"""The share of ``[serve] request_timeout`` one wait request may last."""


@router.get(
    "/info",
    summary="What this server runs on",
    responses=json_answer(
        "the server's provider and version",
        {
            "type": "object",
            "properties": {"provider": {"type": "string"}, "version": {"type": "string"}},
            "required": ["provider", "version"],
        },
    ),
)
def info(backend: CallerBackend) -> dict[str, str]:
    from runvoy_core import __version__

    return {"provider": backend.provider_name, "version": __version__}


@router.post(
    "/runs",
    summary="Run and stream it (Server-Sent Events)",
    response_class=EventStreamResponse,
    responses=stream_schema(
        "events: started (the execution), message (text), lock_wait ({lock, waited}), log (a log event), "
        "end (the final execution; with detach, the started one), error (a JSON error body)"
    ),
)
def run(body: StreamedRunBody, backend: CallerBackend) -> Any:
    target, options = body.target(), body.options()

    def work(channel: EventChannel) -> None:
        messages, lock_waits = message_sender(channel), lock_wait_sender(channel)
        if body.detach:
            execution = backend.submit(
                target, on_message=messages, on_lock_wait=lock_waits, image_check=body.image_check, **options
            )
            channel.send(sse.STARTED, execution.model_dump_json())
        else:
            execution = backend.run(
                target,
                log_sink=ChannelSink(channel),
                on_message=messages,
                on_lock_wait=lock_waits,
                on_start=lambda handle: channel.send(sse.STARTED, handle.execution.model_dump_json()),
                image_check=body.image_check,
                **options,
            )
        channel.send(sse.END, execution.model_dump_json())

    return event_stream(work)


@router.post(
    "/executions",
    status_code=201,
    summary="Submit a run (detached) and answer its record",
    responses=record_answer(Execution, "the started execution", 201),
)
def submit(body: RunBody, backend: CallerBackend) -> Any:
    execution = backend.submit(body.target(), image_check=body.image_check, **body.options())
    return record_response(execution, 201)


@router.get(
    "/executions",
    summary="List executions, newest first",
    responses=list_answer("executions", Execution, "the executions"),
)
def list_executions(
    backend: CallerBackend,
    status: Annotated[
        list[Status] | None, Query(max_length=len(Status), description="only these statuses")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50,
    since: Annotated[
        datetime | None, Query(description="only executions created at or after this time")
    ] = None,
    label: Annotated[
        list[Annotated[str, Query(max_length=400)]] | None,
        Query(max_length=inputs.MAX_ITEMS, description="KEY=VALUE: only executions with this label"),
    ] = None,
    refresh: Annotated[bool, Query(description="converge unfinished runs with their provider first")] = True,
) -> Any:
    labels: dict[str, str] = {}
    for pair in label or ():
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationFailed(f"label: {pair!r} is not KEY=VALUE", hint="e.g. label=team=data")
        labels[key] = value
    records = backend.list(
        statuses=set(status) if status else None,
        limit=limit,
        since=since,
        labels=labels or None,
        refresh=refresh,
    )
    return records_response("executions", records)


@router.get(
    "/executions/{execution_id}",
    summary="An execution's stored record (ID may be a unique prefix)",
    responses=record_answer(Execution, "the execution"),
)
def get_execution(execution_id: ExecutionId, backend: CallerBackend) -> Any:
    return record_response(backend.get(execution_id))


@router.get(
    "/executions/{execution_id}/status",
    summary="An execution's record, converged with its provider",
    responses=record_answer(Execution, "the execution"),
)
def status_of(execution_id: ExecutionId, backend: CallerBackend) -> Any:
    return record_response(backend.status(execution_id))


@router.get(
    "/executions/{execution_id}/events",
    summary="An execution's status history",
    responses=json_answer(
        "the history, oldest first", {"type": "array", "items": ref(StatusChange.__name__)}
    ),
)
def events(execution_id: ExecutionId, backend: CallerBackend) -> Any:
    return array_response(backend.events(execution_id))


@router.post(
    "/executions/{execution_id}/wait",
    summary="Wait for an execution to end (at most 60 s, and 60% of the server's request timeout, per request)",
    responses=record_answer(Execution, "the execution: ended, or as it is when the wait's timeout passed"),
)
def wait(
    execution_id: ExecutionId, backend: CallerBackend, request: Request, body: WaitBody | None = None
) -> Any:
    # the answer must start before the server's request timeout (504): the wait ends well before it, and
    # the client asks again
    limit = server_state(request).settings.serve.request_timeout * WAIT_SHARE
    timeout = min((body or WaitBody()).timeout, limit)
    return record_response(backend.wait(execution_id, timeout=timeout))


@router.get(
    "/executions/{execution_id}/logs",
    summary="One page of an execution's stored logs",
    responses=record_answer(LogPage, "the page; pass its cursor back for the next"),
)
def log_page(
    execution_id: ExecutionId,
    backend: CallerBackend,
    cursor: Annotated[str | None, Query(max_length=1024, description="where the previous page ended")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Any:
    return record_response(backend.log_page(execution_id, cursor=cursor, limit=limit))


@router.get(
    "/executions/{execution_id}/logs/stream",
    summary="An execution's logs as Server-Sent Events (follow: until it ends)",
    response_class=EventStreamResponse,
    responses=stream_schema(
        "events: log (a log event) each, then end ({}) or error (a JSON error body)",
        (sse.LOG, sse.END, sse.ERROR),
    ),
)
def log_stream(
    execution_id: ExecutionId,
    backend: CallerBackend,
    follow: bool = False,
    tail: Annotated[int | None, Query(ge=0, le=1_000_000, description="only the last N lines")] = None,
    grep: Annotated[
        str | None, Query(min_length=1, max_length=1000, description="only lines containing this text")
    ] = None,
) -> Any:
    backend.get(execution_id)  # an unknown id or a refused read is the answer's status, not a stream's error

    def work(channel: EventChannel) -> None:
        for event in backend.logs(execution_id, follow=follow, tail=tail, pattern=grep):
            if channel.closed.is_set():
                return
            channel.send(sse.LOG, event.model_dump_json())
        channel.send(sse.END, "{}")

    return event_stream(work)


@router.post(
    "/executions/{execution_id}/kill",
    summary="Stop an execution: graceful stop, then kill after its grace (force: kill at once)",
    responses=record_answer(Execution, "the execution, its stop requested"),
)
def kill(execution_id: ExecutionId, backend: CallerBackend, body: KillBody | None = None) -> Any:
    return record_response(backend.kill(execution_id, force=(body or KillBody()).force))


@router.post(
    "/reconcile",
    summary="Repair records and tasks that disagree",
    responses=json_answer(
        "what was (or, with dry_run, would be) repaired",
        {
            "type": "object",
            "properties": {"actions": {"type": "array", "items": {"type": "object"}}},
            "required": ["actions"],
        },
    ),
)
def reconcile(backend: CallerBackend, body: ReconcileBody | None = None) -> Any:
    from fastapi import Response

    actions = backend.reconcile(dry_run=(body or ReconcileBody()).dry_run)
    return Response(json.dumps({"actions": actions}, default=str), media_type="application/json")
