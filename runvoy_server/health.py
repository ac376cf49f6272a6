"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: the store, the provider and the lock
register each answer a read in time), both without a key so a load balancer can probe them (decision 1515).
``/readyz`` names only the class of a failure; the message, which may name the cloud's endpoints, is logged."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from runvoy_core.logging import get_logger
from runvoy_server.state import ServerState

log = get_logger("runvoy.server")

CHECK_TIMEOUT = 5.0
"""A check that takes longer fails as ``Timeout``: a probe must answer well within a balancer's own timeout."""
PROBE_ID = "000000000000"
"""An execution id no run has (runvoy's ids are random): ``find`` answers None after one real read."""
PROBE_LOCK = "runvoy:readyz"
PROBE_KEY = "readyz"

router = APIRouter(tags=["health"])


def checks(state: ServerState) -> dict[str, Callable[[], Any]]:
    engine = state.engine
    return {
        "store": lambda: state.documents.get_document("server", PROBE_KEY),
        "provider": lambda: engine.provider.compute.find(PROBE_ID),
        "locks": lambda: engine.register.read(PROBE_LOCK),
    }


async def timed_check(name: str, check: Callable[[], Any], results: dict[str, dict[str, Any]]) -> None:
    started = time.monotonic()
    outcome: dict[str, Any] = {"status": "ok"}
    try:
        with anyio.fail_after(CHECK_TIMEOUT):
            await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
    except TimeoutError:
        outcome = {"status": "failed", "error": "Timeout"}
        log.warning("server.not_ready", check=name, error="Timeout")
    except Exception as exc:
        outcome = {"status": "failed", "error": type(exc).__name__}
        log.warning("server.not_ready", check=name, error=type(exc).__name__, message=str(exc)[:500])
    outcome["ms"] = round((time.monotonic() - started) * 1000, 1)
    results[name] = outcome


@router.get("/healthz", summary="The process answers")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    summary="The store, the provider and the lock register answer",
    responses={503: {"description": "at least one check failed"}},
)
async def readyz(request: Request) -> JSONResponse:
    state: ServerState = request.app.state.runvoy
    results = await run_checks(state)
    ready = all(r["status"] == "ok" for r in results.values())
    body = {
        "status": "ready" if ready else "unready",
        "provider": state.engine.provider_name,
        "checks": results,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


async def run_checks(state: ServerState) -> dict[str, dict[str, Any]]:
    """Each check's outcome (status, ms, and the error's class when it failed), run side by side."""
    results: dict[str, dict[str, Any]] = {}
    todo = checks(state)
    async with anyio.create_task_group() as group:
        for name, check in todo.items():
            group.start_soon(timed_check, name, check, results)
    return {name: results[name] for name in todo}
