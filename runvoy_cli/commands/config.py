"""``runvoy config show|validate``: the effective settings (secrets masked) and a full check of them."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from runvoy_cli.context import handle_errors, state
from runvoy_cli.output import json_option, message, print_json, warn

MASK = "********"
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|token|credential|connection_string|sas|private|apikey|api_key|account_key|_key$|^key$)",
    re.IGNORECASE,
)
_URL_KEY = re.compile(r"url$", re.IGNORECASE)


def mask(data: Any, key: str = "", *, inherited: bool = False) -> Any:
    """A copy of ``data`` with secret-looking values replaced (everything under a secret-looking key, e.g.
    ``secret_values = {db = "..."}``); URLs keep only scheme and host (webhook URLs carry a token in the path)."""
    secret = inherited or bool(_SECRET_KEY.search(key))
    if isinstance(data, dict):
        return {k: mask(v, str(k), inherited=secret) for k, v in data.items()}
    if isinstance(data, list):
        return [mask(v, key, inherited=secret) for v in data]
    if data is None or data == "" or isinstance(data, bool | int | float):
        return data
    if secret:
        return MASK
    if _URL_KEY.search(key) and isinstance(data, str):
        match = re.match(r"^([a-z][a-z0-9+.-]*://)(?:[^@/]*@)?([^/?#]*)(.*)$", data, re.IGNORECASE)
        if match:
            return match.group(1) + match.group(2) + ("/" + MASK if match.group(3).strip("/") else "")
    return data


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += _flatten(value, name + ".")
        else:
            rows.append((name, value))
    return rows


@click.group("config")
def cli() -> None:
    """Show or validate the configuration (file, profile, RUNVOY_* environment)."""


@cli.command("show")
@json_option
@handle_errors
def show(as_json: bool) -> None:
    """Print the effective settings, with secrets masked, and where the config file is."""
    from runvoy_core.config import default_config_path

    path = default_config_path()
    settings = state().settings()
    state().local_only("config show")
    data = mask(settings.model_dump(mode="json"))
    if as_json:
        print_json({"config_file": str(path), "config_file_exists": path.exists(), "settings": data})
        return
    where = "" if path.exists() else "  (not found: defaults and RUNVOY_* environment only)"
    click.echo(f"# config file: {path}{where}")
    click.echo(f"# profile: {settings.profile}")
    for name, value in _flatten(data):
        click.echo(f"{name} = {json.dumps(value) if value is not None else '(unset)'}")


@cli.command("validate")
@json_option
@handle_errors
def validate(as_json: bool) -> None:
    """Check the whole configuration, each provider section with its provider's own config model.

    Exit status 0 when valid; otherwise one line naming the field, and 125.
    """
    from runvoy_core.config import default_config_path, describe_validation_error
    from runvoy_core.errors import ConfigError
    from runvoy_core.plugins.manager import get_plugins

    path = default_config_path()
    settings = state().settings()  # the file's syntax and the top-level keys
    state().local_only("config validate")
    registry = get_plugins().registry
    warnings: list[str] = []
    if settings.provider not in registry:
        raise ConfigError(
            f"provider = {settings.provider!r} is not an installed provider ({', '.join(registry.names())})",
            hint=f"install it (pip install 'runvoy[{settings.provider}]') or change provider in {path}",
        )
    names = sorted({*settings.providers, settings.provider})
    checked = []
    for name in names:
        spec = registry.get(name)
        if spec is None:
            warnings.append(f"[providers.{name}] is for a provider that is not installed here; not checked")
            continue
        model = spec.load_config_model()
        if model is None:
            checked.append(name)
            continue
        try:
            model.model_validate(settings.provider_section(name))
        except ValueError as exc:
            raise ConfigError(
                f"invalid configuration for provider {name!r}: "
                + "; ".join(
                    f"providers.{name}.{part}" for part in describe_validation_error(exc).split("; ")
                ),
                hint=f"fix the [providers.{name}] section of {path} (or RUNVOY_PROVIDERS__{name.upper()}__*)",
            ) from None
        checked.append(name)
    if settings.images:
        from runvoy_core.images.check import images_config

        images_config(settings.images)  # the same check as a run with an image makes
    if as_json:
        print_json(
            {
                "valid": True,
                "config_file": str(path),
                "config_file_exists": path.exists(),
                "profile": settings.profile,
                "providers_checked": checked,
                "warnings": warnings,
            }
        )
        return
    for text in warnings:
        warn(text)
    source = str(path) if path.exists() else f"no config file ({path}); defaults and environment"
    message(f"configuration is valid: {source}; profile {settings.profile}; checked {', '.join(checked)}")
