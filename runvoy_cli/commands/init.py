"""``runvoy init``: from nothing to a first run. Picks a provider, looks for its cloud's credentials, picks a
region and a default size, writes the config profile (atomically), shows ``setup --dry-run``, runs ``setup``
and a first command. Every question has a default; ``--non-interactive`` takes flags instead (decision 2111).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.output import message, warn

if TYPE_CHECKING:
    from runvoy_core.cost.rules import BillingRule
    from runvoy_core.plugins.registry import ProviderSpec
    from runvoy_core.ports.optional import CredentialCheck, CredentialReport

T = TypeVar("T")

FIRST_COMMAND = "echo hello from runvoy"
MAX_SETTINGS = 64


class Wizard:
    """Asks (or, non-interactive, takes the flag or the default); a bad answer is asked again with the reason."""

    def __init__(self, interactive: bool, yes: bool = False) -> None:
        self.interactive = interactive
        self.yes = yes

    def value(self, label: str, flag: str, given: str | None, default: str, parse: Callable[[str], T]) -> T:
        from runvoy_core.errors import UsageError

        if given is not None or not self.interactive:
            raw = default if given is None else given
            try:
                return parse(raw)
            except ValueError as exc:
                raise UsageError(f"{flag}: {exc}", hint="see: runvoy init --help") from None
        while True:
            raw = click.prompt(label, default=default, show_default=True)
            try:
                return parse(raw.strip())
            except ValueError as exc:
                click.echo(f"  {exc}; try again (Enter takes [{default}])")

    def confirm(self, question: str, default: bool = True) -> bool:
        if self.yes:
            return True
        if not self.interactive:
            return default
        return click.confirm(question, default=default)


@dataclass
class Plan:
    path: Path
    profile: str
    provider: str
    top: dict[str, Any] = field(default_factory=dict)
    section: dict[str, Any] = field(default_factory=dict)


@click.command("init")
@click.option("--provider", "-p", type=forms.PROVIDER, metavar="NAME", help="Provider (default: local).")
@click.option(
    "--profile",
    type=forms.PROFILE,
    metavar="NAME",
    help="Config profile to write (default: 'default', the top level of the file).",
)
@click.option("--region", type=forms.REGION, metavar="REGION", help="Region (clouds only).")
@click.option("--cpu", type=forms.CPU, metavar="VCPU", help="Default vCPU of a run (the provider's sizes).")
@click.option(
    "--memory", type=forms.MEMORY, metavar="SIZE", help="Default memory of a run, e.g. 512MiB, 2GiB."
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    type=forms.PROVIDER_SETTING,
    metavar="KEY=VALUE",
    help="A key of the provider's config section (repeatable), e.g. --set endpoint_url=http://localhost:5000.",
)
@click.option("--non-interactive", is_flag=True, help="Ask nothing: flags, else defaults.")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Answer yes to every yes/no question; lets --non-interactive replace a profile's values.",
)
@click.option("--no-setup", is_flag=True, help="Do not run `runvoy setup`.")
@click.option("--no-first-run", is_flag=True, help=f"Do not run the first command ({FIRST_COMMAND}).")
@handle_errors
def cli(
    provider: str | None,
    profile: str | None,
    region: str | None,
    cpu: str | None,
    memory: str | None,
    assignments: tuple[str, ...],
    non_interactive: bool,
    yes: bool,
    no_setup: bool,
    no_first_run: bool,
) -> None:
    """Set runvoy up: provider, credentials, region, default size, config profile, setup and a first run.

    Every question has a default (Enter takes it); Ctrl-C at any point leaves the config file as it was.

    \b
    Examples:
      runvoy init
      runvoy init --provider aws --region eu-west-1 --non-interactive --yes
      runvoy init --profile ci --provider gcp --no-first-run
    """
    from runvoy_core import inputs
    from runvoy_core.config import default_config_path
    from runvoy_core.errors import RunvoyError, UsageError

    if len(assignments) > MAX_SETTINGS:
        raise UsageError(f"--set: at most {MAX_SETTINGS} settings", hint="see: runvoy init --help")
    wizard = Wizard(interactive=not non_interactive, yes=yes)
    path = default_config_path()
    from runvoy_cli.config_file import read_document

    document = read_document(path)  # an unreadable file is an error before any question
    root = state()
    with contextlib.suppress(RunvoyError):  # init is also how a broken config gets fixed
        root.local_only("init")

    profile_name = wizard.value(
        "Config profile to write",
        "--profile",
        profile,
        root.profile or "default",
        lambda raw: str(inputs.PROFILE.parse(raw)),
    )
    from runvoy_cli.config_file import profile_values

    existing = profile_values(document, profile_name)
    spec = _pick_provider(wizard, provider or root.provider, existing)
    name = spec.name
    existing_section = _provider_section(existing, name)
    # what the provider will see: the top level's section under the profile's (config.py deep-merges them)
    effective = {**_provider_section(profile_values(document, "default"), name), **existing_section}
    section: dict[str, Any] = {}
    for item in assignments:
        key, value = inputs.PROVIDER_SETTING.parse(item)
        section[key] = _setting_value(value)

    check = _credential_check(spec)
    report = _report_credentials(name, check, {**effective, **section}) if check is not None else None
    if report is not None:
        for key, value in report.settings.items():
            if key not in section and key not in effective:
                section[key] = wizard.value(
                    key,
                    f"--set {key}",
                    None,
                    value,
                    _setting_parser(key),
                )

    rule = _billing_rule(spec)
    if check is not None:
        regions = _priced_regions(spec)
        region_key = check.region_setting
        default_region = str(
            section.get(region_key)
            or effective.get(region_key)
            or (report.region if report else None)
            or (rule.default_region if rule else "")
            or (regions[0] if regions else "")
        )
        if regions and wizard.interactive and region is None:
            click.echo(f"Regions with prices shipped: {', '.join(regions)} (any other region works too)")
        chosen = wizard.value(
            "Region", "--region", region, default_region, lambda raw: str(inputs.REGION.parse(raw))
        )
        if regions and chosen not in regions:
            warn(f"runvoy ships no prices for {name} in {chosen}: its runs will cost an unknown amount")
        section[region_key] = chosen
    elif region is not None:
        raise UsageError(f"--region: provider {name!r} takes no region", hint="leave --region out")

    size_cpu, size_memory = _pick_size(wizard, rule, cpu, memory, existing)
    plan = Plan(
        path=path,
        profile=profile_name,
        provider=name,
        top={"provider": name, "cpu": size_cpu, "memory": size_memory},
        section=section,
    )
    if not _write(wizard, plan, document, existing, existing_section, yes):
        return

    target = ["--provider", name, "--profile", profile_name]
    missing = report is not None and not report.ok
    if missing:
        later = "runvoy" + ("" if profile_name == "default" else f" --profile {profile_name}")
        warn(f"{name} credentials are missing: setup and the first run are skipped")
        if not wizard.interactive and not (no_setup and no_first_run):
            from runvoy_core.errors import ProviderUnavailable

            raise ProviderUnavailable(
                f"no {name} credentials: {'; '.join(report.missing) if report else ''}",
                hint=f"the profile is written; once credentials are in place run: {later} setup",
            )
        _next_steps(profile_name, setup_pending=_needs_setup(spec))
        return
    if not no_setup:
        _setup(wizard, spec, target)
    if not no_first_run and wizard.confirm(f"Run a first command ({FIRST_COMMAND})?"):
        code = _runvoy(target, "run", FIRST_COMMAND)
        if code != 0:
            from runvoy_core.errors import ProviderError

            raise ProviderError(
                f"the first run failed (exit {code}); see the lines above",
                hint="fix what they say, then: runvoy"
                + _profile_flag(profile_name)
                + f' run "{FIRST_COMMAND}"',
            )
    _next_steps(profile_name, setup_pending=no_setup and _needs_setup(spec))


# -- the steps ------------------------------------------------------------------------------------------------


def _setting_parser(key: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        from runvoy_core import inputs

        value: str = inputs.PROVIDER_SETTING.parse(f"{key}={raw}")[1]
        return value

    return parse


def _provider_section(values: dict[str, Any], name: str) -> dict[str, Any]:
    providers = values.get("providers")
    found = providers.get(name) if isinstance(providers, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _pick_provider(wizard: Wizard, given: str | None, existing: dict[str, Any]) -> ProviderSpec:
    from runvoy_core import inputs
    from runvoy_core.plugins.manager import get_plugins

    loaded = get_plugins()
    registry = loaded.registry
    names = registry.names()
    if wizard.interactive and given is None:
        click.echo("Installed providers:")
        for listed in registry.specs():
            click.echo(f"  {listed.name:<8} {listed.description}")
        for failure in loaded.failures:
            click.echo(f"  ({failure.plugin} did not load: {failure.error})")
    default = existing.get("provider") if existing.get("provider") in names else "local"

    def parse(raw: str) -> str:
        value = str(inputs.PROVIDER.parse(raw))
        if value not in registry:
            raise ValueError(
                f"no provider {value!r} is installed here (installed: {', '.join(names)}; "
                f"another one installs with: pip install 'runvoy[{value}]')"
            )
        return value

    chosen = wizard.value("Provider", "--provider", given, str(default), parse)
    spec = registry.get(chosen)
    assert spec is not None
    return spec


def _credential_check(spec: ProviderSpec) -> CredentialCheck | None:
    from runvoy_core.ports.optional import CredentialCheck

    if spec.credentials is None:
        return None
    check = spec.load_credential_check()
    if not isinstance(check, CredentialCheck):
        warn(f"provider {spec.name!r} declares a credential check that is not a CredentialCheck; not checked")
        return None
    return check


def _report_credentials(name: str, check: CredentialCheck, section: dict[str, Any]) -> CredentialReport:
    from runvoy_core.ports.optional import CredentialReport

    try:
        report = check.check(dict(section))
    except Exception as exc:  # a plugin's check must not take the wizard down
        report = CredentialReport(missing=(f"the credential check failed: {type(exc).__name__}: {exc}",))
    click.echo(f"Credentials for {name}:")
    for line in report.found:
        click.echo(f"  found: {line}")
    for line in report.missing:
        click.echo(f"  missing: {line}")
    if not report.found and not report.missing:
        click.echo("  none found")
    return report


def _billing_rule(spec: ProviderSpec) -> BillingRule | None:
    from runvoy_core.cost.rules import rule_of
    from runvoy_core.cost.source import PriceSource
    from runvoy_core.plugins.registry import load_import_string

    if spec.pricing is None:
        return None
    try:
        source = load_import_string(spec.pricing, spec)
        return rule_of(source) if isinstance(source, PriceSource) else None
    except Exception:  # no sizes known: any size is offered, as `runvoy run` would accept
        return None


def _priced_regions(spec: ProviderSpec) -> list[str]:
    from runvoy_core.cost.source import PriceSource
    from runvoy_core.plugins.registry import load_import_string

    if spec.pricing is None:
        return []
    try:
        source = load_import_string(spec.pricing, spec)
        if not isinstance(source, PriceSource) or source.prices is None:
            return []
        rows = csv.DictReader(io.StringIO(source.prices.read_text(encoding="utf-8")))
        return sorted({row["region"] for row in rows if row.get("region")})
    except Exception:
        return []


def _pick_size(
    wizard: Wizard, rule: BillingRule | None, cpu: str | None, memory: str | None, existing: dict[str, Any]
) -> tuple[str, str]:
    from runvoy_core.cost.rules import format_cpu, format_mib
    from runvoy_core.units import parse_cpu, parse_memory_mib

    smallest = rule.round_up_size(Decimal("0.25"), 512) if rule is not None else None
    low_cpu, low_memory = smallest if smallest is not None else (Decimal("0.25"), 512)

    def known(raw: Any, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(raw) if raw is not None else None
        except ValueError:
            return None

    old_cpu, old_memory = (
        known(existing.get("cpu"), parse_cpu),
        known(existing.get("memory"), parse_memory_mib),
    )
    if (
        old_cpu is not None
        and old_memory is not None
        and (rule is None or not rule.size_problem(old_cpu, old_memory))
    ):
        low_cpu, low_memory = old_cpu, old_memory
    if wizard.interactive and (cpu is None or memory is None) and rule is not None and rule.sizes:
        click.echo(f"Sizes {rule.service} runs: {rule.describe_sizes()}")

    def parse_cpu_offered(raw: str) -> Decimal:
        value: Decimal = parse_cpu(raw)
        if rule is not None and rule.sizes and not any(row.cpu_ok(value) for row in rule.sizes):
            raise ValueError(
                f"{rule.provider} does not offer {format_cpu(value)} vCPU ({rule.describe_sizes()})"
            )
        return value

    chosen_cpu = wizard.value("Default vCPU of a run", "--cpu", cpu, format_cpu(low_cpu), parse_cpu_offered)
    memory_default = low_memory
    if rule is not None and rule.size_problem(chosen_cpu, memory_default):
        rounded = rule.round_up_size(chosen_cpu, memory_default)
        memory_default = rounded[1] if rounded is not None else memory_default

    def parse_memory_offered(raw: str) -> int:
        value: int = parse_memory_mib(raw)
        problem = rule.size_problem(chosen_cpu, value) if rule is not None else None
        if problem:
            raise ValueError(f"{problem} ({rule.describe_sizes() if rule else ''})")
        return value

    chosen_memory = wizard.value(
        "Default memory of a run", "--memory", memory, format_mib(memory_default), parse_memory_offered
    )
    return format_cpu(chosen_cpu), format_mib(chosen_memory)


def _setting_value(raw: str) -> Any:
    """A ``--set`` value as TOML will hold it: true/false, numbers and JSON lists/tables as such, else text
    (the provider's model checks it either way)."""
    import json

    text = raw.strip()
    if text in ("true", "false"):
        return text == "true"
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return raw
    return raw


def _write(
    wizard: Wizard,
    plan: Plan,
    document: Any,
    existing: dict[str, Any],
    existing_section: dict[str, Any],
    yes: bool,
) -> bool:
    """Show what changes, ask, check the new file as every command will read it, and replace the old one."""
    from runvoy_cli.commands.config import mask
    from runvoy_cli.config_file import render, set_profile, write_atomically
    from runvoy_core.errors import UsageError

    # what is shown is masked as `runvoy config show` masks it (a --set connection string, a token)
    shown, shown_old = mask(plan.section), mask(existing_section)
    changed = [
        f"{key} = {existing[key]!r} -> {value!r}"
        for key, value in plan.top.items()
        if key in existing and existing[key] != value
    ] + [
        f"providers.{plan.provider}.{key} = {shown_old[key]!r} -> {shown[key]!r}"
        for key, value in plan.section.items()
        if key in existing_section and existing_section[key] != value
    ]
    where = "the top level of" if plan.profile == "default" else f"[profiles.{plan.profile}] in"
    click.echo(f"\nProfile {plan.profile!r} ({where} {plan.path}):")
    for key, value in plan.top.items():
        click.echo(f"  {key} = {_show(value)}")
    for key, value in shown.items():
        click.echo(f"  providers.{plan.provider}.{key} = {_show(value)}")
    if changed:
        click.echo("This replaces: " + "; ".join(changed))
        if not wizard.interactive and not yes:
            raise UsageError(
                f"profile {plan.profile!r} already has other values ({'; '.join(changed)})",
                hint="pass --yes to replace them, or pick another --profile",
            )
    if not wizard.confirm(f"Write this to {plan.path}?"):
        message("nothing written")
        return False
    set_profile(document, plan.profile, plan.top, plan.provider, plan.section)
    write_atomically(plan.path, render(document), check=lambda staged: _check(staged, plan))
    message(f"wrote profile {plan.profile!r} to {plan.path}")
    return True


def _show(value: Any) -> str:
    import json

    return json.dumps(value) if not isinstance(value, str) else f'"{value}"'


def _check(staged: Path, plan: Plan) -> None:
    """The staged file as every command will read it: the settings, then the provider's own model."""
    from runvoy_core.config import describe_validation_error, load_settings
    from runvoy_core.errors import ConfigError
    from runvoy_core.plugins.manager import get_plugins

    settings = load_settings(staged, profile=plan.profile)
    spec = get_plugins().registry.get(plan.provider)
    model = spec.load_config_model() if spec is not None else None
    if model is None:
        return
    try:
        model.model_validate(settings.provider_section(plan.provider))
    except ValueError as exc:
        raise ConfigError(
            f"invalid settings for provider {plan.provider!r}: {describe_validation_error(exc)}",
            hint=f"fix the --set values; {plan.path} was left as it was",
        ) from None


def _needs_setup(spec: ProviderSpec) -> bool:
    from runvoy_core.ports.capabilities import Capability

    return Capability.SETUP in spec.capabilities


def _setup(wizard: Wizard, spec: ProviderSpec, target: list[str]) -> None:
    from runvoy_core.errors import ProviderError

    if not _needs_setup(spec):
        message(f"provider {spec.name!r} needs no setup")
        return
    click.echo(f"\nWhat `runvoy setup` would create or check for {spec.name}:")
    code = _runvoy(target, "setup", "--dry-run")
    if code != 0:
        raise ProviderError(
            f"`runvoy setup --dry-run` failed (exit {code}); see the lines above",
            hint="fix what they say, then run: runvoy init again (the profile is written)",
        )
    if not wizard.confirm("Run setup now?"):
        message("setup skipped; run it later with: runvoy " + " ".join(target) + " setup")
        return
    code = _runvoy(target, "setup")
    if code != 0:
        raise ProviderError(
            f"`runvoy setup` failed (exit {code}); see the lines above",
            hint="fix what they say, then run: runvoy " + " ".join(target) + " setup",
        )


def _runvoy(target: list[str], *args: str) -> int:
    """Another runvoy command in a child process, on this terminal: what the user would type next."""
    command = [sys.executable, "-m", "runvoy_cli.main", *target, *args]
    # they try the provider just set up on this machine, not a server the config may name (decision 1511)
    return subprocess.call(command, env={**os.environ, "RUNVOY_SERVER": ""})


def _profile_flag(profile: str) -> str:
    return "" if profile == "default" else f" --profile {profile}"


def _next_steps(profile: str, *, setup_pending: bool) -> None:
    flag = _profile_flag(profile)
    click.echo("\nNext:")
    if setup_pending:
        click.echo(f"  runvoy{flag} setup                       create what the provider needs")
    click.echo(f'  runvoy{flag} run "python3 -V"            run a command, stream its logs')
    click.echo(f'  runvoy{flag} run --detach "sleep 60"     start one and come back: runvoy list, logs, wait')
    click.echo(f"  runvoy{flag} cost report                 what the runs cost")
    click.echo(f"  runvoy{flag} config show                 the settings this profile gives")
    click.echo("  docs: docs/user-guide.md")
