"""structlog, configured once: console lines for people or JSON lines, both on stderr.

The request id lives in a ContextVar of ours and is added to every line, stored on records and passed to
the task's environment. structlog itself is imported on the first log call, not at start-up: a successful
`runvoy run` usually logs nothing, and importing structlog costs a tenth of its time budget.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
"""The stdlib logging levels (not imported for them: most commands log nothing)."""
_request_id: ContextVar[str | None] = ContextVar("runvoy_request_id", default=None)
_wanted: tuple[str, str] = ("console", "warning")
_applied: tuple[str, str] | None = None
_SECRET_KEYS = ("secret", "password", "token", "credential", "apikey", "api_key", "access_key")


def configure_logging(fmt: str = "console", level: str = "warning") -> None:
    """Record the wanted format and level; applied when the first line is logged."""
    global _wanted
    _wanted = (fmt, level)
    if _applied is not None:
        _apply()


class _CurrentStderr:
    """``sys.stderr`` as it is when a line is written, not as it was when logging was configured: a process
    that replaces its stderr later (a server's supervisor, a test's capture) still gets every line, and a
    replaced stream that was closed is never written to."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = _CurrentStderr()


def apply_now() -> None:
    """Configure structlog now rather than on runvoy's first line: a long-running process (the server) whose
    libraries log through structlog directly must not print with structlog's defaults first."""
    if _applied != _wanted:
        _apply()


def _apply() -> None:
    global _applied
    import structlog

    fmt, level = _wanted
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            _add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 30)),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    _applied = _wanted


def _add_request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = _request_id.get()
    if request_id and "request_id" not in event:
        event["request_id"] = request_id
    return event


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Secret values never reach a log line: any field whose name looks secret is masked."""
    for name in list(event):
        if any(s in name.lower() for s in _SECRET_KEYS):
            event[name] = "***"
    return event


def new_request_id() -> str:
    return "req-" + os.urandom(8).hex()


def bind_request_id(request_id: str) -> None:
    """Bind for the rest of this context (the CLI binds one per invocation)."""
    _request_id.set(request_id)


@contextmanager
def request_scope() -> Iterator[str]:
    """The request id of one API call: the bound one if the caller has one, else a fresh one for the
    duration of the call, so two calls from one program are told apart in records and log lines."""
    current = _request_id.get()
    if current is not None:
        yield current
        return
    token = _request_id.set(new_request_id())
    try:
        yield _request_id.get() or ""
    finally:
        _request_id.reset(token)


@contextmanager
def bound_request_id(request_id: str) -> Iterator[str]:
    """This request id for the length of the block (the server binds each HTTP request's), then the one
    before it again."""
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)


def current_request_id() -> str | None:
    return _request_id.get()


class _LazyLogger:
    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        wanted = _LEVELS.get(method)
        if wanted is not None and self._logger is None and wanted < _LEVELS.get(_wanted[1], 30):
            return _ignore  # a line below the level: structlog need not even be imported
        if self._logger is None:
            if _applied != _wanted:
                _apply()
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, method)


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


def get_logger(name: str = "runvoy") -> Any:
    return _LazyLogger(name)
