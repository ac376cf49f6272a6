"""The documentation site (mkdocs.yml, decision 2131): it builds with --strict (no broken link, page or
anchor), its nav holds every page of docs/, and what the hooks add is there: the README and the repository files
the pages link to, every decision record, and the clouds' sizes and prices read from the providers' data."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PROVIDERS = ["aws", "gcp", "azure"]

pytest.importorskip("mkdocs", reason="the docs extra is not installed: uv sync --all-extras")


def _mkdocs_env() -> dict[str, str]:
    # Material's banner about its end of life is printed on every build; it is not a warning of the build
    return {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        env=_mkdocs_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = build(ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return out


def page(site: Path, src_uri: str) -> str:
    """The HTML of the page built from src_uri (use_directory_urls: a/b.md -> a/b/index.html)."""
    path = src_uri[: -len(".md")]
    if path == "index" or path.endswith("/index") or path.endswith("/README"):
        html = site / path.rpartition("/")[0] / "index.html" if "/" in path else site / "index.html"
    else:
        html = site / path / "index.html"
    assert html.is_file(), f"{src_uri} was not built ({html})"
    return html.read_text(encoding="utf-8")


def nav_paths(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in nav_paths(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in nav_paths(value)]
    return []


def load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("runvoy_mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the nav --------------------------------------------------------------------------------------------


def test_the_nav_holds_every_page_of_docs_and_names_only_pages_that_exist() -> None:
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"))
    in_nav = nav_paths(config.nav)
    assert len(in_nav) == len(set(in_nav)), "a page is twice in the nav"
    pages = {
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if p.relative_to(DOCS).parts[0] != "decisions"  # the generated decisions/index.md lists them
    }
    missing = pages - set(in_nav)
    assert not missing, f"pages of docs/ not in the nav of mkdocs.yml: {sorted(missing)}"
    for item in in_nav:
        if item.startswith("project/"):
            assert (ROOT / item.removeprefix("project/")).is_file(), item
        elif item not in {"index.md", "decisions/index.md"}:
            assert (DOCS / item).is_file(), item
    # the sections issue 21 asks for
    titles = " ".join(str(entry) for entry in config.nav or []).lower()
    for section in [
        "getting started",
        "user guide",
        "aws",
        "gcp",
        "azure",
        "server",
        "web",
        "locks",
        "cost",
        "scheduling",
        "observability",
        "providers kit",
        "api reference",
        "decisions",
    ]:
        assert section in titles, section


# -- the build ------------------------------------------------------------------------------------------


def test_every_nav_page_is_built(site: Path) -> None:
    from mkdocs.config import load_config

    for item in nav_paths(load_config(str(ROOT / "mkdocs.yml")).nav):
        assert "<h1" in page(site, item), item


def test_the_home_page_is_the_readme_with_its_links_made_site_links(site: Path) -> None:
    home = page(site, "index.md")
    readme_title = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
    assert f">{readme_title}<" in home
    # README.md links docs/user-guide.md and providers/aws/README.md (paths in the repository)
    assert 'href="user-guide/"' in home
    assert 'href="project/providers/aws/"' in home
    assert 'href="project/CONTRIBUTING/"' in home
    assert "docs/user-guide.md" not in re.findall(r'href="([^"]*)"', home)


def test_files_outside_docs_that_pages_link_to_are_on_the_site(site: Path) -> None:
    # docs/inputs.md links ../runvoy_core/inputs.py; SECURITY.md links .github/workflows/release.yml
    assert (site / "project" / "runvoy_core" / "inputs.py").read_bytes() == (
        ROOT / "runvoy_core" / "inputs.py"
    ).read_bytes()
    assert (site / "project" / "github" / "workflows" / "release.yml").is_file()
    security = page(site, "project/SECURITY.md")
    assert 'href="../../locks/#fencing"' in security


def test_the_decisions_index_lists_every_decision(site: Path) -> None:
    index = page(site, "decisions/index.md")
    links = set(re.findall(r'href="(\d{4}-[^"/]+)/"', index))
    on_disk = {p.stem for p in (DOCS / "decisions").glob("*.md") if p.name != "index.md"}
    assert on_disk and links == on_disk
    for stem in on_disk:
        assert (site / "decisions" / stem / "index.html").is_file()


def test_the_api_reference_is_generated_from_docstrings(site: Path) -> None:
    api = page(site, "reference/api.md")
    # the class, a method and a docstring of runvoy_core.api
    assert 'id="runvoy_core.api.Runvoy"' in api
    assert 'id="runvoy_core.api.Runvoy.submit"' in api
    assert 'id="runvoy_core.api.Runvoy.logs"' in api  # a method without a docstring: its signature at least
    assert "Start and return at once" in api
    errors = page(site, "reference/errors.md")
    assert 'id="runvoy_core.errors.LockHeld"' in errors
    assert 'id="runvoy_core.ports.ComputePort"' in page(site, "reference/ports.md")
    records = page(site, "reference/records.md")
    assert 'id="runvoy_core.records.Record"' in records
    assert 'id="runvoy_core.models.Execution"' in records
    assert 'id="runvoy_core.ports.optional.WaitingCompute"' in page(site, "reference/ports.md")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_cloud_page_shows_the_sizes_and_prices_of_its_catalog(site: Path, provider: str) -> None:
    html = page(site, f"clouds/{provider}.md")
    assert "runvoy:catalog" not in html
    data = ROOT / "providers" / provider / f"runvoy_{provider}" / "data"
    with (data / "prices.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        assert f"{row['price']} per {row['unit']}" in html, row
        assert f"<td>{row['region']}</td>" in html, row
    # every page of a cloud links its provider's README, which is on the site too
    assert 'href="../../project/providers/' in html
    assert "<h2" in page(site, f"project/providers/{provider}/README.md")


# -- the link rule ---------------------------------------------------------------------------------------


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[a page](missing-page.md)\n", encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        "site_name: t\n"
        f"docs_dir: {docs}\n"
        f"hooks: [{ROOT / 'scripts' / 'mkdocs_hooks.py'}]\n"
        "nav: [index.md]\n"
        "validation: {links: {not_found: warn}}\n",
        encoding="utf-8",
    )
    result = build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "missing-page.md" in result.stderr


def test_links_are_resolved_from_the_files_place_in_the_repository() -> None:
    hooks = load_hooks()
    site = hooks._Site.__new__(hooks._Site)
    site.origin = {"index.md": "README.md", "project/SECURITY.md": "SECURITY.md"}
    assert site.repo_path("user-guide.md") == "docs/user-guide.md"
    assert site.resolve("README.md", "docs/user-guide.md") == "docs/user-guide.md"
    assert site.resolve("docs/configuration.md", "../providers/aws/README.md") == "providers/aws/README.md"
    assert site.resolve("README.md", "docs/decisions/") == "docs/decisions/index.md"
    assert site.resolve("SECURITY.md", ".github/workflows/") == ".github/workflows/"
    assert site.resolve("README.md", "docs/no-such-page.md") is None
    assert site.resolve("README.md", "../outside.md") is None
    assert site.site_path("README.md") == "index.md"
    assert site.site_path("docs/clouds/aws.md") == "clouds/aws.md"
    assert site.site_path(".github/workflows/docs.yml") == "project/github/workflows/docs.yml"
