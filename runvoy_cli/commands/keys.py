"""``runvoy keys create|list|revoke|rotate``: the API keys of a runvoy server (decision 1519)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_json, print_table

if TYPE_CHECKING:
    from runvoy_core.team.keys import KeyInfo, NewKey


def _seconds(form_name: str, text: str | None) -> float | None:
    from runvoy_core import inputs

    if text is None:
        return None
    form = inputs.KEY_EXPIRY if form_name == "expiry" else inputs.KEY_OVERLAP
    return float(form.parse(text))


def _new_key(made: NewKey, as_json: bool, what: str) -> None:
    """The token on stdout (alone, so `TOKEN=$(runvoy keys create alice)` works), the rest on stderr."""
    if as_json:
        print_json(made.model_dump(mode="json"))
        return
    click.echo(made.token)
    key = made.key
    message(
        f"{what} key {key.id} ({key.name}) for {key.user}, valid until "
        f"{key.expires_at.astimezone().strftime('%Y-%m-%d %H:%M')}: the token above is shown this once "
        "(runvoy login, or RUNVOY_TOKEN)"
    )


def _state(key: KeyInfo) -> str:
    from runvoy_core.models import utcnow

    state = key.state(utcnow())
    return "rotated" if state == "active" and key.replaced_by else state


@click.group("keys")
def cli() -> None:
    """Manage the API keys of a runvoy server's users and service accounts.

    A key is shown once, when it is made (create, rotate); the server keeps only its hash. A revoked key is
    refused from the next request on, on every replica; a rotated one keeps working for the overlap.

    \b
    Examples:
      runvoy keys create alice --name laptop --expires 30d
      runvoy keys list --user alice
      runvoy keys rotate 3f2a9c0d1e4b5a67 --overlap 1h
      runvoy keys revoke 3f2a9c0d1e4b5a67
    """


@cli.command("create")
@click.argument("user", type=forms.USER_NAME)
@click.option(
    "--name",
    "key_name",
    type=forms.KEY_NAME,
    default="default",
    show_default=True,
    help="A name telling the user's keys apart (laptop, ci...).",
)
@click.option("--expires", type=forms.KEY_EXPIRY, help="How long it is valid: 1h to 730d (default 90d).")
@provider_option
@json_option
@handle_errors
def create(user: str, key_name: str, expires: str | None, provider: str | None, as_json: bool) -> None:
    """Create an API key for USER (a user or a service account) and print it, once."""
    from runvoy_cli.team import team_admin

    made = team_admin(provider).create_key(user, name=key_name, expires_in=_seconds("expiry", expires))
    _new_key(made, as_json, "created")


@cli.command("list")
@click.option("--user", type=forms.USER_NAME, help="Only this account's keys.")
@provider_option
@json_option
@handle_errors
def list_keys(user: str | None, provider: str | None, as_json: bool) -> None:
    """List keys (never their secrets): id, user, name, state, expiry, last use."""
    from runvoy_cli.team import team_admin

    keys = team_admin(provider).list_keys(user=user)
    if as_json:
        print_json([{**k.model_dump(mode="json"), "state": _state(k)} for k in keys])
        return
    if not keys:
        message("no keys (create one with: runvoy keys create USER)")
        return
    rows = [(k.id, k.user, k.name, _state(k), k.expires_at, k.last_used_at) for k in keys]
    print_table(rows, ["id", "user", "name", "state", "expires", "last used"])


@cli.command("revoke")
@click.argument("key_id", type=forms.KEY_ID)
@provider_option
@json_option
@handle_errors
def revoke(key_id: str, provider: str | None, as_json: bool) -> None:
    """Revoke a key: refused from the next request on, on every replica."""
    from runvoy_cli.team import team_admin

    key = team_admin(provider).revoke_key(key_id)
    if as_json:
        print_json({**key.model_dump(mode="json"), "state": _state(key)})
    else:
        message(f"revoked key {key.id} ({key.name}) of {key.user}")


@cli.command("rotate")
@click.argument("key_id", type=forms.KEY_ID)
@click.option(
    "--overlap", type=forms.KEY_OVERLAP, help="How long the old key keeps working: 1m to 7d (default 1d)."
)
@click.option(
    "--expires", type=forms.KEY_EXPIRY, help="How long the new key is valid: 1h to 730d (default 90d)."
)
@provider_option
@json_option
@handle_errors
def rotate(
    key_id: str, overlap: str | None, expires: str | None, provider: str | None, as_json: bool
) -> None:
    """Replace a key by a new one for the same account; print the new one, once."""
    from runvoy_cli.team import team_admin

    made = team_admin(provider).rotate_key(
        key_id, overlap=_seconds("overlap", overlap), expires_in=_seconds("expiry", expires)
    )
    _new_key(made, as_json, f"rotated {key_id} into")
