"""``create_app(settings)``: the runvoy server as an ASGI application (FastAPI), for ``runvoy server`` or any
ASGI host (decision 1513).

Middleware, outermost first — each sees what the ones inside it do, so the order is the design:

1. proxy headers (only when ``[serve] trusted_proxies`` is set): the client's address and scheme from
   ``X-Forwarded-For`` / ``X-Forwarded-Proto``, believed from those peers only;
2. request id: accepted or made, echoed, bound for every log line, record and audit entry of the request;
3. errors: any exception left becomes JSON (a RunvoyError its own status and code; anything else a 500
   ``internal`` with the request id only, the traceback logged), and one access line is logged;
4. body limit (413) before anything reads the body;
5. timeout (504) until the response starts, covering authentication too;
6. authentication (401, audited), second factor, rate limit per key (429 + Retry-After);
7. FastAPI: validation errors and RunvoyErrors of the routes become the same JSON errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from runvoy_core.errors import RunvoyError
from runvoy_server import health
from runvoy_server.errors import body_of, error_body, headers_of, status_of
from runvoy_server.middleware.auth import AuthMiddleware
from runvoy_server.middleware.body_limit import BodyLimitMiddleware
from runvoy_server.middleware.errors import ErrorMiddleware
from runvoy_server.middleware.request_id import RequestIdMiddleware
from runvoy_server.middleware.timeout import TimeoutMiddleware
from runvoy_server.state import ServerState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runvoy_core.config import Settings
    from runvoy_core.engine import LocalBackend

API_PREFIX = "/v1"


def _request_id(request: Request) -> str | None:
    found = request.scope.get("state", {}).get("request_id")
    return found if isinstance(found, str) else None


async def _runvoy_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RunvoyError)
    return JSONResponse(body_of(exc, _request_id(request)), status_of(exc), headers=headers_of(exc))


def _field(loc: Any) -> str:
    return ".".join(str(part) for part in loc) if isinstance(loc, list | tuple) else str(loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # the fields and what is wrong with them, never the values given (one may be a secret)
    problems = [f"{_field(err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in exc.errors()[:10]]
    body = error_body(
        "validationfailed",
        "invalid request: " + "; ".join(problems),
        "fix the fields named above; the API is described at /v1/openapi.json",
        _request_id(request),
    )
    return JSONResponse(body, 422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        code, message, hint = "notfound", "no such endpoint", "the API is described at /v1/openapi.json"
    elif exc.status_code == 405:
        code, message, hint = "usageerror", "this endpoint does not take this method", "see /v1/openapi.json"
    else:
        code, message, hint = "runvoyerror", str(exc.detail), "see /v1/openapi.json"
    headers = dict(exc.headers or {})
    return JSONResponse(
        error_body(code, message, hint, _request_id(request)), exc.status_code, headers=headers
    )


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "stable: the error's section of docs/errors.md"},
                "message": {"type": "string"},
                "hint": {"type": ["string", "null"]},
                "request_id": {"type": ["string", "null"]},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
"""Every error answer's body (decision 1513)."""


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with every error answer described as what the server sends: its 422 (FastAPI would
    describe its own HTTPValidationError, which this server never sends) and a default for the others."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Error"] = ERROR_SCHEMA
    error = {"$ref": "#/components/schemas/Error"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "invalid input",
                    "content": {"application/json": {"schema": error}},
                }
            responses.setdefault(
                "default",
                {
                    "description": "an error (docs/errors.md)",
                    "content": {"application/json": {"schema": error}},
                },
            )
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None, *, engine: LocalBackend | None = None) -> FastAPI:
    """The app on ``settings``' provider (one engine for the process; ``engine`` to share one already made).
    Raises CapabilityMissing when the provider has no document store to keep the team state in."""
    from contextlib import asynccontextmanager

    from runvoy_core import __version__
    from runvoy_core.config import load_settings
    from runvoy_server import routes

    settings = settings or load_settings()
    state = ServerState.build(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.engine.close()

    app = FastAPI(
        title="runvoy",
        version=__version__,
        description="runvoy's team service: runs, logs, locks, costs and the team's users, keys and audit.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.runvoy = state
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.include_router(health.router)
    for router in routes.ROUTERS:
        app.include_router(router)
    app.add_exception_handler(RunvoyError, _runvoy_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    serve = settings.serve
    # add_middleware puts each one outside those added before it: innermost first
    app.add_middleware(AuthMiddleware, state=state)
    app.add_middleware(TimeoutMiddleware, seconds=serve.request_timeout)
    app.add_middleware(BodyLimitMiddleware, limit=serve.body_limit)
    app.add_middleware(ErrorMiddleware)
    app.add_middleware(RequestIdMiddleware)
    if serve.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(serve.trusted_proxies))
    return app
