"""``runvoy health``: ask a runvoy server whether it can serve (its ``/readyz``)."""

from __future__ import annotations

import json
from typing import Any

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.output import json_option
from runvoy_core import inputs

SERVER_URL = forms.FormType(inputs.SERVER_URL, metavar="URL")
TIMEOUT = forms.FormType(inputs.HEALTH_TIMEOUT, metavar="DURATION")
NOT_READY = 1
"""The exit status when the server answers that a check failed (unreachable: 125, as every failure)."""


@click.command("health")
@click.option(
    "--server",
    "server",
    type=SERVER_URL,
    default=None,
    help="The server's URL (default: the config's server / RUNVOY_SERVER, else [serve] host and port).",
)
@click.option("--timeout", type=TIMEOUT, default=None, help="How long to wait for the answer (default 10s).")
@json_option
@handle_errors
def cli(server: str | None, timeout: str | None, as_json: bool) -> None:
    """Show whether a runvoy server is ready: its store, provider and lock register, each with its latency.

    Exits 0 when every check passed, 1 when one failed, 125 when the server cannot be reached.
    """
    from runvoy_cli.output import print_json, print_table

    settings = state().settings()
    url = inputs.SERVER_URL.parse(server) if server else settings.server or _local_url(settings)
    seconds = float(inputs.HEALTH_TIMEOUT.parse(timeout)) if timeout else 10.0
    status, body = _readyz(url, seconds)
    if as_json:
        print_json({"server": url, "http_status": status, **body})
    else:
        checks = body.get("checks", {})
        print_table(
            [[name, c.get("status", "?"), c.get("ms", ""), c.get("error", "")] for name, c in checks.items()],
            ["check", "status", "ms", "error"],
        )
        click.echo(f"{url}: {body.get('status', 'unknown')} (provider {body.get('provider', '?')})", err=True)
    if status != 200:
        raise SystemExit(NOT_READY)


def _local_url(settings: Any) -> str:
    host = settings.serve.host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{settings.serve.port}" if ":" in host else f"http://{host}:{settings.serve.port}"


def _readyz(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    from runvoy_core.errors import ServerUnavailable

    request = urllib.request.Request(f"{url}/readyz", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ServerUnavailable(f"no answer from {url}: {reason}") from None
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if status not in (200, 503) or not isinstance(body, dict) or not isinstance(body.get("checks"), dict):
        raise ServerUnavailable(f"{url}/readyz did not answer as a runvoy server does (HTTP {status})")
    return status, body
