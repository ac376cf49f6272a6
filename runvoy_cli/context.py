"""What every command receives: the global options, and lazily built settings and API object."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from runvoy_core.api import Runvoy
    from runvoy_core.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    provider: str | None = None
    profile: str | None = None
    log_format: str | None = None
    log_level: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _runvoy: dict[tuple[str | None, bool], Runvoy] = field(default_factory=dict, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from runvoy_core.config import load_settings
            from runvoy_core.logging import bind_request_id, configure_logging, new_request_id

            bind_request_id(new_request_id())  # one request id per CLI invocation

            self._settings = load_settings(
                profile=self.profile, log_format=self.log_format, log_level=self.log_level
            )
            configure_logging(self._settings.log_format, self._settings.log_level)
        return self._settings

    def runvoy(self, provider: str | None = None, *, local: bool = False) -> Runvoy:
        """The API object for ``provider`` (the command's --provider, else the global one, else the config's):
        through the configured server if there is one, unless ``local`` (decision 1511)."""
        name = provider or self.provider
        if (name, local) not in self._runvoy:
            from runvoy_core.api import Runvoy

            settings = self.settings()
            made = Runvoy.local(name, settings=settings) if local else Runvoy(name, settings=settings)
            self._runvoy[name, local] = made
        return self._runvoy[name, local]

    def local_only(self, command: str) -> None:
        """Say that ``command`` acts on this machine when a server is configured (it cannot go through one)."""
        server = self.settings().server
        if server:
            from runvoy_cli.output import message

            message(
                f"runvoy {command}: acts on this machine, not through the server at {server} "
                "(set by the config key server or RUNVOY_SERVER; RUNVOY_SERVER= turns it off)"
            )


def state() -> CliState:
    ctx = click.get_current_context()
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def handle_errors(func: F) -> F:
    """Turn RunvoyError (and anything unexpected) into a one-line message, a hint and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from runvoy_core.errors import RunvoyError

        try:
            return func(*args, **kwargs)
        except (
            click.exceptions.Exit,
            click.exceptions.Abort,
            click.ClickException,
            SystemExit,
            BrokenPipeError,
            KeyboardInterrupt,
        ):
            raise
        except (RunvoyError, Exception) as exc:
            from runvoy_cli.output import render_error

            raise SystemExit(render_error(exc)) from None

    return wrapper  # type: ignore[return-value]
