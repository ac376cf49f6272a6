"""``runvoy cost estimate|report|refresh``.

``estimate`` and ``report`` print what ``Runvoy.estimate_cost`` and ``Runvoy.cost_report`` return (decision
1512), so they work the same through a server; neither imports pydantic or a cloud SDK. ``refresh`` updates
this machine's price cache.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.output import json_option, message, print_json, print_table, warn

_ARCH_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x86": "x86_64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "arm": "arm64",
}


def money_text(amount: Decimal, currency: str = "USD") -> str:
    """Cents from a dollar up, four places from a cent, six below (a 10-second run costs fractions of a cent)."""
    symbol = "$" if currency == "USD" else f"{currency} "
    if abs(amount) >= 1 or amount == 0:
        return f"{symbol}{amount:,.2f}"
    if abs(amount) >= Decimal("0.01"):
        return f"{symbol}{amount:.4f}"
    return f"{symbol}{amount:.6f}"


def fast_home() -> Path:
    """The runvoy home as the settings would resolve it (env, then config file, then default), read with
    tomllib only so that ``cost estimate`` does not load pydantic-settings."""
    explicit = os.environ.get("RUNVOY_HOME")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    config = os.environ.get("RUNVOY_CONFIG")
    path = (
        Path(config).expanduser() if config else Path(platformdirs.user_config_dir("runvoy")) / "config.toml"
    )
    if path.exists():
        import tomllib

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        profile = state().profile or os.environ.get("RUNVOY_PROFILE")
        section = data.get("profiles", {}).get(profile, {}) if profile else {}
        home = section.get("home") or data.get("home")
        if home:
            return Path(str(home)).expanduser()
    return Path(platformdirs.user_data_dir("runvoy"))


def format_duration(seconds: float) -> str:
    from runvoy_core.units import format_duration as fmt

    return fmt(seconds)


@click.group("cost")
def cli() -> None:
    """Estimate, report and refresh run costs."""


@cli.command("estimate")
@click.option("--cpu", default="1", show_default=True, type=forms.CPU, help="vCPU (0.25, 1, 2 or 500m).")
@click.option("--memory", default="2GiB", show_default=True, type=forms.MEMORY, help="Memory (512MiB, 2GiB).")
@click.option(
    "--duration",
    default="10m",
    show_default=True,
    type=forms.ESTIMATE_DURATION,
    help="How long one run lasts (90s, 10m, 2h; 1s to 30d).",
)
@click.option(
    "--provider",
    "provider",
    type=forms.PROVIDER,
    default="all",
    show_default=True,
    help="Provider to price (any installed provider that declares prices, or local), or all to compare.",
)
@click.option(
    "--region", type=forms.REGION, help="Region to price (default: each provider's default region)."
)
@click.option(
    "--arch",
    default="x86_64",
    show_default=True,
    type=click.Choice(sorted(_ARCH_ALIASES), case_sensitive=False),
    help="x86_64 or arm64.",
)
@click.option("--spot", is_flag=True, help="Price spot capacity.")
@click.option(
    "--storage",
    "storage_gib",
    type=forms.IntRange(1, 200),
    default=20,
    show_default=True,
    help="Ephemeral storage, GiB.",
)
@click.option(
    "--runs-per-day",
    type=forms.IntRange(1, 1_000_000),
    help="Runs per day (with --days: a total; 1 to 1000000).",
)
@click.option("--days", type=forms.IntRange(1, 3660), help="Number of days (with --runs-per-day; 1 to 3660).")
@json_option
@handle_errors
def estimate_cmd(
    cpu: str,
    memory: str,
    duration: str,
    provider: str,
    region: str | None,
    arch: str,
    spot: bool,
    storage_gib: int,
    runs_per_day: int | None,
    days: int | None,
    as_json: bool,
) -> None:
    """Compare what a run would cost on each cloud, cheapest first.

    \b
    Example:
      runvoy cost estimate --cpu 1 --memory 2GiB --duration 10m --runs-per-day 5 --days 30
    """
    architecture = _ARCH_ALIASES.get(arch.lower())
    if architecture is None:
        raise click.BadParameter("must be x86_64 or arm64", param_hint="--arch")
    runs = (runs_per_day or 1) * (days or 1)
    estimate = (
        state()
        .runvoy()
        .estimate_cost(
            cpu=cpu,
            memory=memory,
            duration=duration,
            provider=provider,
            region=region,
            arch=architecture,
            spot=spot,
            storage_gib=storage_gib,
            runs=runs,
        )
    )
    for line in estimate.pop("warnings", None) or []:
        warn(line)
    if as_json:
        print_json(estimate)
        return
    results = estimate["estimates"]
    catalog = estimate["catalog"]
    headers = ["provider", "region", "size", "billed", "per run"]
    if runs > 1:
        headers += [f"total ({runs} runs)"]
    headers += ["note"]
    table = []
    for row in results:
        if "error" in row:
            cells = [row["provider"], row["region"] or "-", "-", "-", "-"]
            cells += ["-"] if runs > 1 else []
            table.append([*cells, f"cannot run: {row['error']}"])
            continue
        cells = [
            row["provider"],
            row["region"],
            row["size"],
            format_duration(float(row["billed_seconds"])),
            money_text(Decimal(row["per_run"]), row["currency"]),
        ]
        if runs > 1:
            cells.append(money_text(Decimal(row["total"]), row["currency"]))
        table.append([*cells, "; ".join(row["notes"]) or ""])
    print_table(table, headers)
    message(
        f"prices: catalog {catalog['version']} ({catalog['origin']}, retrieved {catalog['retrieved_date']}); "
        "compute only: free tiers, savings plans, network and registry costs are not included"
    )


@cli.command("report")
@click.option(
    "--since",
    default="7d",
    show_default=True,
    type=forms.SINCE,
    help="How far back (1d, 7d, 30d, 12h; 1s to 3650d).",
)
@click.option(
    "--by",
    "group_by",
    type=click.Choice(["provider", "user", "label", "lock", "day"]),
    default="provider",
    show_default=True,
)
@click.option("--provider", "provider", type=forms.PROVIDER, help="Only runs of this provider.")
@json_option
@handle_errors
def report_cmd(since: str, group_by: str, provider: str | None, as_json: bool) -> None:
    """What stored executions cost, grouped; local runs also show their cloud equivalents."""
    from runvoy_core.inputs import SINCE

    report = (
        state()
        .runvoy(provider or state().provider)
        .cost_report(since=SINCE.parse(since), by=group_by, provider=provider)
    )
    for line in report.pop("warnings", None) or []:
        warn(line)
    rows = report["rows"]
    if as_json:
        print_json(report)
        return
    # costs are kept per hour: a --since that starts mid-hour counts from the start of that hour (decision 1403)
    from datetime import datetime

    since_text = f"{datetime.fromisoformat(report['since']):%Y-%m-%d %H:%M} UTC" + (
        " (the start of the hour of --since)" if report["since_rounded_to_hour"] else ""
    )
    if not rows:
        message(f"no executions since {since_text}")
        return
    clouds = sorted({p for r in rows for p in r["equivalents"]})
    headers = [group_by, "runs", "billed", "cost", *[f"on {p}" for p in clouds]]
    table = [
        [
            r["key"],
            r["runs"],
            format_duration(float(r["billed_seconds"])),
            money_text(Decimal(r["total"]), r["currency"]),
            *[
                money_text(Decimal(r["equivalents"][p]), r["currency"]) if p in r["equivalents"] else "-"
                for p in clouds
            ],
        ]
        for r in rows
    ]
    print_table(table, headers)
    if group_by != "label":
        message(
            f"total since {since_text}: {money_text(Decimal(report['total']))} over {report['runs']} run(s)"
        )
    if clouds:
        message(
            "'on X' columns: what the same runs would have cost on that cloud (equivalents, not spending)"
        )


@cli.command("refresh")
@click.option(
    "--provider",
    "providers",
    multiple=True,
    type=forms.PROVIDER,
    help="Refresh only this provider (repeatable; one whose price source runvoy can read).",
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    type=forms.REGION,
    help="Regions to fetch (default: the catalog's regions).",
)
@click.option(
    "--from-file",
    "files",
    multiple=True,
    type=forms.PATH,
    help="A saved API response (AWS Price List, GCP Cloud Billing Catalog, Azure Retail Prices) instead of the network.",
)
@click.option("--force", is_flag=True, help="Accept price changes larger than 50 %.")
@click.option("--dry-run", is_flag=True, help="Show the changes without writing the cache.")
@click.option("--reset", is_flag=True, help="Delete the user cache and go back to the shipped snapshot.")
@json_option
@handle_errors
def refresh_cmd(
    providers: tuple[str, ...],
    regions: tuple[str, ...],
    files: tuple[str, ...],
    force: bool,
    dry_run: bool,
    reset: bool,
    as_json: bool,
) -> None:
    """Update the price catalog from the providers' price APIs into the user cache."""
    from runvoy_core.cost import refresh
    from runvoy_core.cost.catalog import load_catalog
    from runvoy_core.engine import one_of, priced_providers

    home = fast_home()
    if reset:
        removed = refresh.reset_cache(home)
        message("price cache removed; using the shipped snapshot" if removed else "no price cache to remove")
        return
    for name in providers:
        one_of("--provider", name, priced_providers(refreshable=True))
    current = load_catalog(home)
    rows = []
    if files:
        for path in files:
            try:
                payload = refresh.read_payload_file(Path(path))
            except RecursionError:
                from runvoy_core.errors import ValidationFailed

                raise ValidationFailed(f"{path} is nested too deeply to be a price response") from None
            detected = refresh.detect_provider(payload)
            if providers and detected not in providers:
                continue
            rows.extend(refresh.parse_payload(payload, provider=detected))
    else:
        for name in providers or priced_providers(refreshable=True):
            wanted = list(regions) or current.regions(name)
            for payload in refresh.fetch_payloads(name, wanted):
                rows.extend(refresh.parse_payload(payload, provider=name))
    if regions:
        rows = [r for r in rows if r.region in regions]
    plan = refresh.plan_refresh(current, rows)
    changes = [c.as_dict() for c in plan.changes]
    if not dry_run:
        catalog = refresh.apply_refresh(plan, home=home, force=force)
    if as_json:
        print_json(
            {
                "providers": plan.providers,
                "rows": len(plan.rows),
                "unchanged": plan.unchanged,
                "changes": changes,
                "written": not dry_run,
                "catalog": None if dry_run else {"version": catalog.version, "path": str(catalog.path)},
            }
        )
        return
    if changes:
        print_table(
            [
                [
                    c["provider"],
                    c["region"],
                    c["architecture"],
                    c["capacity"],
                    c["dimension"],
                    c["old"] or "new",
                    c["new"],
                    c["unit"],
                    f"{c['change_percent']} %" if c["change_percent"] is not None else "-",
                ]
                for c in changes
            ],
            ["provider", "region", "arch", "capacity", "dimension", "old", "new", "unit", "change"],
        )
    message(f"{len(plan.rows)} price(s) read, {plan.unchanged} unchanged, {len(changes)} changed or new")
    if dry_run:
        message("dry run: nothing written")
    else:
        message(f"catalog {catalog.version} written to {catalog.path}")
