"""``runvoy server``: serve the HTTP API (extra ``runvoy[server]``) on this machine's provider config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.forms import IntRange
from runvoy_core import inputs

if TYPE_CHECKING:
    from runvoy_core.config import Settings

HOST = forms.FormType(inputs.HOST, metavar="HOST")


@click.command("server")
@click.option(
    "--host", type=HOST, default=None, help="Address to listen on (default: [serve] host, 127.0.0.1)."
)
@click.option(
    "--port",
    type=IntRange(0, 65535),
    default=None,
    help="Port (default: [serve] port, 8421; 0: any free port).",
)
@click.option(
    "--provider", "-p", type=forms.PROVIDER, metavar="NAME", default=None, help="Provider to run runs on."
)
@click.option(
    "--check",
    is_flag=True,
    help="Check the configuration and the provider's readiness, then exit (no serving).",
)
@handle_errors
def cli(host: str | None, port: int | None, provider: str | None, check: bool) -> None:
    """Serve runvoy's HTTP API (/v1/...): the CLI and Python API of a whole team work through it.

    Prints `runvoy server listening on http://HOST:PORT` on stderr once it serves; on the first start on an
    empty store, the bootstrap admin key before it (once; or set RUNVOY_BOOTSTRAP_TOKEN). Stops on
    SIGTERM or Ctrl-C after the requests in flight. Settings: the [serve] section (docs/server.md).
    """
    from runvoy_core.errors import RunvoyError

    cli_state = state()
    settings = cli_state.settings()
    name = provider or cli_state.provider
    if name is not None and name != settings.provider:
        settings = settings.model_copy(update={"provider": name})
    try:
        from runvoy_server import serve
    except ImportError as exc:
        raise RunvoyError(
            f"the runvoy server is not installed ({exc.name} is missing)",
            hint="install it with: pip install 'runvoy[server]'",
        ) from None
    if check:
        _check(settings)
        return
    serve.serve(
        settings, host=host or settings.serve.host, port=settings.serve.port if port is None else port
    )


def _check(settings: Settings) -> None:
    import anyio

    from runvoy_cli.output import print_table
    from runvoy_server import health
    from runvoy_server.state import ServerState

    server_state = ServerState.build(settings)
    try:
        results = anyio.run(health.run_checks, server_state)
    finally:
        server_state.engine.close()
    print_table(
        [[name, r["status"], r["ms"], r.get("error", "")] for name, r in results.items()],
        ["check", "status", "ms", "error"],
    )
    if any(r["status"] != "ok" for r in results.values()):
        raise SystemExit(1)
