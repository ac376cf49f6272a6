"""``runvoy totp enroll|remove``: the second factor of a runvoy server's admins (decision 1510)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_fields, print_json

if TYPE_CHECKING:
    from runvoy_core.team.admin import LocalTeamAdmin


def _local_admin(provider: str | None) -> LocalTeamAdmin:
    """``LocalTeamAdmin`` on the provider's own store, even when a server is configured: a second factor is
    set up by whoever holds the store's credentials, as the bootstrap key is (decision 1510)."""
    from runvoy_core.api import Runvoy
    from runvoy_core.errors import CapabilityMissing
    from runvoy_core.ports.optional import DocumentStore
    from runvoy_core.team.admin import LocalTeamAdmin

    client = Runvoy.local(provider or state().provider, settings=state().settings())
    store = client.store
    if not isinstance(store, DocumentStore):
        raise CapabilityMissing(
            f"provider {client.provider_name!r} has no document store, where a runvoy server keeps its accounts",
            hint="use the provider the server runs on (--provider)",
        )
    return LocalTeamAdmin(store)


@click.group("totp")
def cli() -> None:
    """Set up one-time passwords (TOTP, RFC 6238): the second factor a runvoy server asks its admins for.

    With `require_totp_for_admin = true` in the server's [serve] section, admin-only requests need the
    current code of the admin's authenticator app in the X-Runvoy-TOTP header. Run these commands where the
    provider's store is reachable with its own credentials (the server's machine), like the first start.

    \b
    Examples:
      runvoy totp enroll alice               # the secret and an otpauth:// URI, shown once
      runvoy totp enroll alice --replace     # a new secret; the old authenticator entry stops working
      runvoy totp remove alice
    """


@cli.command("enroll")
@click.argument("user", type=forms.USER_NAME)
@click.option("--replace", is_flag=True, help="Replace an existing secret (the old one stops working).")
@provider_option
@json_option
@handle_errors
def enroll_cmd(user: str, replace: bool, provider: str | None, as_json: bool) -> None:
    """Give USER a new TOTP secret; add it to an authenticator app (it is shown this once)."""
    admin = _local_admin(provider)
    enrolment = admin.enroll_totp(user, replace=replace)
    if as_json:
        print_json(
            {
                "user": enrolment.user,
                "secret": enrolment.secret,
                "uri": enrolment.uri,
                "created_at": enrolment.created_at,
            }
        )
        return
    print_fields([("user", enrolment.user), ("secret", enrolment.secret), ("uri", enrolment.uri)])
    message(
        "shown once: add the secret (or the URI, as a QR code) to an authenticator app; then send its current "
        "code in the X-Runvoy-TOTP header"
    )


@cli.command("remove")
@click.argument("user", type=forms.USER_NAME)
@provider_option
@handle_errors
def remove_cmd(user: str, provider: str | None) -> None:
    """Remove USER's TOTP secret (admin-only requests are then refused when a second factor is required)."""
    admin = _local_admin(provider)
    admin.remove_totp(user)
    message(f"one-time password of {user} removed")
