"""``runvoy setup``: create (or check, with --dry-run) what a provider needs in the account."""

from __future__ import annotations

import click

from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_json, print_table


@click.command("setup")
@provider_option
@click.option("--dry-run", is_flag=True, help="Only say what would be created or changed.")
@json_option
@handle_errors
def cli(provider: str | None, dry_run: bool, as_json: bool) -> None:
    """Create or check the resources the provider needs (cluster, roles, log group, tables, buckets...).

    Safe to run again: what exists is left as it is.
    """
    from runvoy_core.ports.optional import SettingUpProvider

    state().local_only("setup")
    rv = state().runvoy(provider, local=True)
    instance = rv.provider
    if not isinstance(instance, SettingUpProvider):
        if as_json:
            print_json([])
        else:
            message(f"provider {instance.name!r} needs no setup")
        return
    results = list(instance.setup(dry_run=dry_run))
    if as_json:
        print_json(results)
        return
    if not results:
        message(f"provider {instance.name!r}: nothing to set up")
        return
    print_table(
        [[r.get("resource"), r.get("action"), r.get("detail")] for r in results],
        ["resource", "action", "detail"],
    )
    if dry_run:
        message("dry run: nothing was changed; run again without --dry-run to apply")
