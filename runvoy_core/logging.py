"""structlog, configured once: console lines for people or JSON lines, both on stderr. A request id is
bound in contextvars and appears on every line, in records and in the task's environment."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_configured: tuple[str, str] | None = None


def configure_logging(fmt: str = "console", level: str = "warning") -> None:
    global _configured
    if _configured == (fmt, level):
        return
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.WARNING)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = (fmt, level)


_SECRET_KEYS = ("secret", "password", "token", "credential", "key")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Secret values never reach a log line: any field whose name looks secret is masked."""
    for name in list(event):
        if any(s in name.lower() for s in _SECRET_KEYS) and name not in ("event", "request_id"):
            event[name] = "***"
    return event


def bind_request_id(request_id: str) -> None:
    structlog.contextvars.bind_contextvars(request_id=request_id)


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


def get_logger(name: str = "runvoy") -> Any:
    return structlog.get_logger(name)
