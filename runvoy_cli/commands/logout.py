"""``runvoy logout [--server URL]``: forget the API key kept for a server (the key stays valid on the server
until an admin revokes it: ``runvoy keys revoke``)."""

from __future__ import annotations

import click

from runvoy_cli.commands.login import SERVER_URL, chosen_server
from runvoy_cli.context import handle_errors
from runvoy_cli.output import json_option, message, print_json


@click.command("logout")
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
    """Forget the API key kept for a runvoy server (runvoy login). The key itself stays valid until it is
    revoked (runvoy keys revoke); RUNVOY_TOKEN, if set, is not touched."""
    from runvoy_core.remote.tokens import remove_token, token_path

    url = chosen_server(server)
    removed = remove_token(url)
    if as_json:
        print_json({"server": url, "removed": removed, "token_file": str(token_path())})
    elif removed:
        message(f"signed out of {url}: its key was removed from {token_path()}")
    else:
        message(f"no key was kept for {url}")
