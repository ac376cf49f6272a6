"""``runvoy users create|list|show|disable|enable``: the accounts of a runvoy server (decision 1519)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_fields, print_json, print_table

if TYPE_CHECKING:
    from runvoy_core.team.users import User

ROLES = ("viewer", "operator", "admin")


def _fields(user: User) -> list[tuple[str, object]]:
    return [
        ("name", user.name),
        ("kind", "service account" if user.kind == "service" else "user"),
        ("role", user.role),
        ("team", user.team),
        ("state", "disabled" if user.disabled else "enabled"),
        ("created", user.created_at),
        ("created by", user.created_by),
        ("updated", user.updated_at),
    ]


def _show(user: User, as_json: bool, text: str | None = None) -> None:
    if as_json:
        print_json(user.model_dump(mode="json"))
        return
    print_fields(_fields(user))
    if text:
        message(text)


@click.group("users")
def cli() -> None:
    """Manage the users and service accounts of a runvoy server.

    Through the server you are signed in to (runvoy login) as its admin; without a server, straight on the
    provider's store (whoever holds its credentials). An account is never deleted: disable it, and its keys
    are refused from the next request on, on every replica.

    \b
    Examples:
      runvoy users create alice --role operator --team data
      runvoy users create ci-deploy --service --role operator --team data
      runvoy keys create alice                 # the key to hand to alice, shown once
      runvoy users disable alice
    """


@cli.command("create")
@click.argument("name", type=forms.USER_NAME)
@click.option("--role", required=True, type=click.Choice(ROLES), help="viewer (read), operator (run), admin.")
@click.option("--team", required=True, type=forms.TEAM, help="Its team: it sees (and runs as) that team.")
@click.option("--service", is_flag=True, help="A service account (for CI or a program), not a person.")
@provider_option
@json_option
@handle_errors
def create(name: str, role: str, team: str, service: bool, provider: str | None, as_json: bool) -> None:
    """Create a user (or with --service a service account) NAME; then give it a key: runvoy keys create NAME."""
    from runvoy_cli.team import team_admin

    kind = "service" if service else "user"
    user = team_admin(provider).create_user(name, role=role, team=team, kind=kind)
    _show(user, as_json, f"created {kind} {user.name}; give it a key with: runvoy keys create {user.name}")


@cli.command("list")
@click.option("--team", type=forms.TEAM, help="Only this team's accounts.")
@click.option("--kind", type=click.Choice(["user", "service"]), help="Only users, or only service accounts.")
@provider_option
@json_option
@handle_errors
def list_users(team: str | None, kind: str | None, provider: str | None, as_json: bool) -> None:
    """List accounts: name, kind, role, team, state (a non-admin sees its own team's)."""
    from runvoy_cli.team import team_admin

    users = [u for u in team_admin(provider).list_users(team=team) if kind is None or u.kind == kind]
    if as_json:
        print_json([u.model_dump(mode="json") for u in users])
        return
    if not users:
        message("no accounts (create one with: runvoy users create NAME --role ROLE --team TEAM)")
        return
    rows = [
        (u.name, u.kind, u.role, u.team, "disabled" if u.disabled else "enabled", u.created_at) for u in users
    ]
    print_table(rows, ["name", "kind", "role", "team", "state", "created"])


@cli.command("show")
@click.argument("name", type=forms.USER_NAME)
@provider_option
@json_option
@handle_errors
def show(name: str, provider: str | None, as_json: bool) -> None:
    """Show one account."""
    from runvoy_cli.team import team_admin

    _show(team_admin(provider).show_user(name), as_json)


@cli.command("disable")
@click.argument("name", type=forms.USER_NAME)
@provider_option
@json_option
@handle_errors
def disable(name: str, provider: str | None, as_json: bool) -> None:
    """Disable an account: its keys are refused from the next request on (kept for enable)."""
    from runvoy_cli.team import team_admin

    user = team_admin(provider).disable_user(name)
    _show(user, as_json, f"disabled {user.name}: its keys are refused from now on")


@cli.command("enable")
@click.argument("name", type=forms.USER_NAME)
@provider_option
@json_option
@handle_errors
def enable(name: str, provider: str | None, as_json: bool) -> None:
    """Enable a disabled account: its keys that have not expired or been revoked work again."""
    from runvoy_cli.team import team_admin

    user = team_admin(provider).enable_user(name)
    _show(user, as_json, f"enabled {user.name}")
