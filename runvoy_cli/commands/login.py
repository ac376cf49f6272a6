"""``runvoy login [--server URL]``: check an API key with the server and keep it for the next commands.

The key is read from standard input (a prompt that does not echo on a terminal; one line from a pipe:
``runvoy login < key.txt``), never from an option or an argument (they are visible in ``ps`` and shell
history); it is checked with the server's ``/v1/whoami`` and stored in the token file (0600; decision 1517).
"""

from __future__ import annotations

import sys

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.output import json_option, message, print_json
from runvoy_core import inputs

SERVER_URL = forms.FormType(inputs.SERVER_URL, metavar="URL")
MAX_KEY_LINE = 4096


def chosen_server(server: str | None) -> str:
    """``--server``, else the config's ``server`` (RUNVOY_SERVER), normalized as the token file keys it."""
    from runvoy_core.errors import UsageError
    from runvoy_core.remote.client import normalize_server

    url = server or state().settings().server
    if not url:
        raise UsageError(
            "no runvoy server to sign in to",
            hint="give --server URL, or set the config key server (or RUNVOY_SERVER)",
        )
    return normalize_server(url)


def _read_key(url: str) -> str:
    from runvoy_core.errors import ValidationFailed

    if sys.stdin is not None and sys.stdin.isatty():
        given = click.prompt(f"API key for {url}", hide_input=True, prompt_suffix=": ", err=True)
    else:
        line = sys.stdin.readline(MAX_KEY_LINE) if sys.stdin is not None else ""
        given = line.strip()
    try:
        return str(inputs.API_KEY.parse(given))
    except ValueError as exc:
        raise ValidationFailed(f"API key: {exc}", hint=f"expected {inputs.API_KEY.text}") from None


@click.command("login")
@click.option(
    "--server",
    "server",
    type=SERVER_URL,
    default=None,
    help="The server's URL (default: the config's server / RUNVOY_SERVER).",
)
@json_option
@handle_errors
def cli(server: str | None, as_json: bool) -> None:
    """Sign in to a runvoy server: read an API key (prompted, or one line on standard input), check it with
    the server, and keep it in the token file (readable by you only) for the next commands.

    \b
      runvoy login --server https://runvoy.example.com
      runvoy login --server http://127.0.0.1:8421 < key.txt

    RUNVOY_TOKEN, when set, wins over the stored key.
    """
    from runvoy_core.remote.client import Client
    from runvoy_core.remote.tokens import save_token

    url = chosen_server(server)
    key = _read_key(url)
    client = Client(url, key)
    try:
        identity = client.request("GET", "/v1/whoami")
    finally:
        client.close()
    path = save_token(url, key)
    who = {k: identity.get(k) for k in ("name", "kind", "role", "team", "key_id")}
    if as_json:
        print_json({"server": url, "token_file": str(path), **who})
    else:
        message(
            f"signed in to {url} as {who['name']} ({who['role']}, team {who['team']}); key kept in {path}"
        )
