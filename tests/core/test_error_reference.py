"""Every RunvoyError class, the providers' included, tells its cause, what to do, and where its section of
docs/errors.md is (decision 2122)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import unicodedata
from pathlib import Path

import pytest
import runvoy_aws
import runvoy_azure
import runvoy_gcp

import runvoy_cli
import runvoy_core
from runvoy_core.errors import (
    DOCS_PAGE,
    DOCUMENTED_PACKAGES,
    NotFound,
    PermissionDenied,
    ProviderError,
    RunvoyError,
)

ROOT = Path(__file__).resolve().parents[2]


def heading_anchors(markdown: str) -> set[str]:
    """The ids of the headings, as Python-Markdown's toc gives them with the site's GitHub-style slugify
    (mkdocs.yml): lower case, punctuation dropped, spaces to hyphens; fenced code is not a heading."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    anchors = set()
    for match in re.finditer(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", text, re.MULTILINE):
        title = re.sub(r"`([^`]*)`", r"\1", match.group(1))
        title = unicodedata.normalize("NFKD", title)
        slug = re.sub(r"[^\w\- ]", "", title).strip().lower()
        anchors.add(re.sub(r" ", "-", slug))
    return anchors


def every_error_class() -> list[type[RunvoyError]]:
    for package in (runvoy_core, runvoy_cli, runvoy_aws, runvoy_gcp, runvoy_azure):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    found: list[type[RunvoyError]] = []
    pending: list[type[RunvoyError]] = [RunvoyError]
    while pending:
        cls = pending.pop()
        if cls.__module__.split(".")[0] in DOCUMENTED_PACKAGES:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


ERRORS = every_error_class()


def test_the_walk_reaches_the_whole_tree() -> None:
    names = {cls.__name__ for cls in ERRORS}
    assert {
        "RunvoyError",
        "PermissionDenied",
        "NotAuthenticated",
        "RateLimited",
        "ImplausiblePrices",
    } <= names


def test_heading_anchors_follow_the_site_slugify() -> None:
    assert heading_anchors(
        "# Error reference\n## LockHeld\n```\n# not a heading\n```\n## A `code`, b!\n"
    ) == {
        "error-reference",
        "lockheld",
        "a-code-b",
    }


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_has_a_cause_a_hint_and_a_docs_section(cls: type[RunvoyError]) -> None:
    cause = (cls.__doc__ or "").strip().splitlines()
    assert cause and cause[0].strip(), f"{cls.__name__} has no one-line cause (its docstring)"
    assert "default_hint" in cls.__dict__, f"{cls.__name__} inherits its hint instead of saying what to do"
    assert cls.default_hint.strip()
    if cls is not RunvoyError:
        assert cls.default_hint != RunvoyError.default_hint
    anchors = heading_anchors((ROOT / DOCS_PAGE).read_text(encoding="utf-8"))
    assert cls.docs_anchor in anchors, f"{DOCS_PAGE} has no section #{cls.docs_anchor} for {cls.__name__}"
    error = cls("something failed")
    assert error.docs == f"{DOCS_PAGE}#{cls.docs_anchor}"
    assert error.to_dict()["hint"] == cls.default_hint and error.to_dict()["docs"] == error.docs


def test_a_given_hint_replaces_the_default_and_details_are_kept() -> None:
    error = PermissionDenied("x", hint="grant it", permission="ecs:RunTask")
    assert error.to_dict() == {
        "error": "PermissionDenied",
        "message": "x",
        "hint": "grant it",
        "docs": "docs/errors.md#permissiondenied",
        "permission": "ecs:RunTask",
    }
    assert isinstance(error, ProviderError)


def test_the_cli_prints_the_hint_and_the_docs_link(invoke_cli) -> None:
    outcome = invoke_cli("status", "abcdef123456")
    assert outcome.code == NotFound.exit_code
    lines = outcome.err.splitlines()
    assert lines[0].startswith("error: ") and "abcdef123456" in lines[0]
    assert lines[1].startswith("hint: ")
    assert lines[2] == "docs: docs/errors.md#notfound"
    assert outcome.out == ""


def test_json_errors_carry_the_hint_and_the_docs_link(invoke_cli) -> None:
    outcome = invoke_cli("status", "abcdef123456", "--json")
    assert outcome.code == NotFound.exit_code
    data = json.loads(outcome.out)
    assert data["error"] == "NotFound" and "abcdef123456" in data["message"]
    assert data["hint"] and data["docs"] == "docs/errors.md#notfound"
    assert "docs: docs/errors.md#notfound" in outcome.err


@pytest.fixture
def invoke_cli():
    from tests.cli.conftest import _invoke

    return _invoke


def test_another_package_s_subclass_links_its_parent_s_section() -> None:
    acme = type("AcmeQuotaError", (ProviderError,), {"__module__": "acme_provider.errors"})
    assert acme.docs_anchor == "providererror"
