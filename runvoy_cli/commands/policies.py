"""``runvoy policies set|list|show|remove``: what operators of a team may run (decision 1519; the model:
runvoy_core/team/policy.py, decision 1507)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_fields, print_json, print_table

if TYPE_CHECKING:
    from runvoy_core.team.policy import Policy

PATTERN_OPTIONS = (
    ("teams", "--team", "Teams it applies to"),
    ("actions", "--action", "Actions it allows: runs.start, playbooks.run"),
    ("providers", "--provider-pattern", "Providers runs may use"),
    ("locks", "--lock", "Lock names runs may take (a run without a lock is the empty name)"),
    ("playbooks", "--playbook", "Playbook names"),
    ("images", "--image", "Images"),
    ("labels", "--label", "KEY=VALUE patterns every label of a run must match"),
)


def _show(policy: Policy, as_json: bool) -> None:
    if as_json:
        print_json(policy.model_dump(mode="json"))
        return
    fields: list[tuple[str, Any]] = [("name", policy.name), ("description", policy.description or None)]
    fields += [(field, ", ".join(getattr(policy, field))) for field, _, _ in PATTERN_OPTIONS]
    fields += [("updated", policy.updated_at), ("updated by", policy.updated_by)]
    print_fields(fields)


@click.group("policies")
def cli() -> None:
    """Manage policies: what operators of a team may run, by pattern (* ? [seq]).

    A policy applies to the teams its --team patterns match; once one applies to a team, its operators may
    start only what one of the team's policies allows. No policy at all: operators may run anything. Admins
    are never narrowed.

    \b
    Examples:
      runvoy policies set data-etl --team data --provider-pattern aws --lock 'etl-*'
      runvoy policies list
      runvoy policies remove data-etl
    """


def _pattern_options(func: Any) -> Any:
    for field, flag, text in reversed(PATTERN_OPTIONS):
        func = click.option(
            flag, field, multiple=True, type=forms.POLICY_PATTERN, help=f"{text}; repeatable (default: *)."
        )(func)
    return func


@cli.command("set")
@click.argument("name", type=forms.POLICY_NAME)
@_pattern_options
@click.option("--description", type=forms.GREP, help="What it is for (at most 256 characters).")
@provider_option
@json_option
@handle_errors
def set_policy(
    name: str, description: str | None, provider: str | None, as_json: bool, **patterns: Any
) -> None:
    """Create or replace the policy NAME (a field not given matches everything)."""
    from runvoy_cli.team import team_admin

    data: dict[str, Any] = {"name": name, "description": description or ""}
    data.update({field: list(values) for field, values in patterns.items() if values})
    policy = team_admin(provider).set_policy(data)
    _show(policy, as_json)
    if not as_json:
        message(f"policy {policy.name} set")


@cli.command("list")
@provider_option
@json_option
@handle_errors
def list_policies(provider: str | None, as_json: bool) -> None:
    """List policies."""
    from runvoy_cli.team import team_admin

    policies = team_admin(provider).list_policies()
    if as_json:
        print_json([p.model_dump(mode="json") for p in policies])
        return
    if not policies:
        message(
            "no policies: operators may run anything (add one with: runvoy policies set NAME --team TEAM ...)"
        )
        return
    rows = [
        (
            p.name,
            ",".join(p.teams),
            ",".join(p.providers),
            ",".join(p.locks),
            ",".join(p.images),
            p.description,
        )
        for p in policies
    ]
    print_table(rows, ["name", "teams", "providers", "locks", "images", "description"])


@cli.command("show")
@click.argument("name", type=forms.POLICY_NAME)
@provider_option
@json_option
@handle_errors
def show(name: str, provider: str | None, as_json: bool) -> None:
    """Show one policy."""
    from runvoy_cli.team import team_admin

    _show(team_admin(provider).show_policy(name), as_json)


@cli.command("remove")
@click.argument("name", type=forms.POLICY_NAME)
@provider_option
@json_option
@handle_errors
def remove(name: str, provider: str | None, as_json: bool) -> None:
    """Remove the policy NAME."""
    from runvoy_cli.team import team_admin

    policy = team_admin(provider).remove_policy(name)
    if as_json:
        print_json(policy.model_dump(mode="json"))
    else:
        message(f"removed policy {policy.name}")
