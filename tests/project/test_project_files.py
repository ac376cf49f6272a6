"""The files a contributor looks for (SECURITY.md, CONTRIBUTING.md, ...) and the GitHub workflows, checked
where a mistake would otherwise only show on GitHub: after a push, on a tag, or when someone follows a link."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
REQUIRED_WORKFLOWS = {"tests.yml", "lint.yml", "audit.yml", "docs.yml", "release.yml"}
# every workflow present is checked, including ones added later
WORKFLOW_NAMES = sorted(p.name for p in WORKFLOWS.glob("*.y*ml"))
PROVIDERS = ["aws", "gcp", "azure"]

# file -> (smallest sensible size in characters, headings it must have)
PROJECT_FILES: dict[str, tuple[int, list[str]]] = {
    "SECURITY.md": (
        3000,
        [
            "Reporting a vulnerability",
            "Supported versions",
            "What runvoy does with credentials and secrets",
            "Permissions the cloud providers need",
        ],
    ),
    "CONTRIBUTING.md": (
        3000,
        [
            "Set-up",
            "Running parts of the tests",
            "Writing a provider: the conformance kit",
            "Decision records",
            "Style",
        ],
    ),
    "CHANGELOG.md": (800, ["Changelog", "[Unreleased]", "[0.1.0] - 2026-11-27"]),
    "CODE_OF_CONDUCT.md": (4000, ["Contributor Covenant Code of Conduct", "Enforcement", "Attribution"]),
    ".github/pull_request_template.md": (300, ["What and why", "How it is tested", "Checklist"]),
}
MARKDOWN_FILES = list(PROJECT_FILES)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflow(name: str) -> dict[str, Any]:
    data = load_yaml(WORKFLOWS / name)
    assert isinstance(data, dict), f"{name}: not a mapping"
    return data


def triggers(wf: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean true
    on = wf.get("on", wf.get(True))
    assert on, "no `on:` triggers"
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict)
    return on


def all_steps(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in wf["jobs"].values() for step in job["steps"]]


def run_text(wf: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in all_steps(wf))


def step_using(wf: dict[str, Any], action: str) -> dict[str, Any]:
    found = [s for s in all_steps(wf) if str(s.get("uses", "")).split("@")[0] == action]
    assert found, f"no step uses {action}"
    return found[0]


# -- every workflow -------------------------------------------------------------------------------------


def test_the_workflows_exist() -> None:
    assert set(WORKFLOW_NAMES) >= REQUIRED_WORKFLOWS


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_workflow_structure(name: str) -> None:
    wf = workflow(name)
    assert wf.get("name"), f"{name}: no name"
    assert triggers(wf)
    # least privilege by default; a job that needs more says so itself
    assert wf.get("permissions") == {"contents": "read"}, f"{name}: top-level permissions"
    assert wf.get("jobs"), f"{name}: no jobs"
    for job_id, job in wf["jobs"].items():
        assert job.get("runs-on"), f"{name}/{job_id}: no runs-on"
        assert isinstance(job.get("timeout-minutes"), int), f"{name}/{job_id}: no timeout-minutes"
        steps = job.get("steps")
        assert isinstance(steps, list) and steps, f"{name}/{job_id}: no steps"
        for step in steps:
            assert ("uses" in step) != ("run" in step), f"{name}/{job_id}: a step needs uses or run: {step}"


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_actions_are_pinned_to_a_major_version(name: str) -> None:
    for step in all_steps(workflow(name)):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+|release/v\d+)", step["uses"]), step["uses"]


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_checkouts_do_not_keep_the_token(name: str) -> None:
    for step in all_steps(workflow(name)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False


# -- tests.yml ------------------------------------------------------------------------------------------


def test_tests_run_the_test_script_on_linux_and_macos_for_each_python() -> None:
    wf = workflow("tests.yml")
    assert {"push", "pull_request"} <= set(triggers(wf))
    [job] = wf["jobs"].values()
    matrix = job["strategy"]["matrix"]
    assert set(matrix["os"]) == {"ubuntu-latest", "macos-latest"}
    # strings: an unquoted 3.10 would be read as the float 3.1
    assert matrix["python-version"] == ["3.11", "3.12", "3.13"]
    assert job["strategy"]["fail-fast"] is False
    assert job["runs-on"] == "${{ matrix.os }}"
    python = step_using(wf, "actions/setup-python")
    assert python["with"]["python-version"] == "${{ matrix.python-version }}"
    runs = [s for s in job["steps"] if "run" in s]
    assert [s["run"].strip() for s in runs] == ["bash scripts/test.sh"]
    assert (ROOT / "scripts" / "test.sh").is_file()
    # uv must use the matrix cell's interpreter
    assert runs[0]["env"]["UV_PYTHON"] == f"${{{{ steps.{python['id']}.outputs.python-path }}}}"
    node = step_using(wf, "actions/setup-node")
    assert str(node["with"]["node-version"]) == "20"
    assert (ROOT / node["with"]["cache-dependency-path"]).is_file()


# -- lint.yml, audit.yml, docs.yml --------------------------------------------------------------------


def test_lint_runs_ruff_check_ruff_format_and_mypy_from_the_lock() -> None:
    text = run_text(workflow("lint.yml"))
    assert "uv sync --locked --all-extras --all-packages" in text
    assert re.search(r"\.venv/bin/ruff check\b", text)
    assert ".venv/bin/ruff format --check ." in text
    assert re.search(r"^\.venv/bin/mypy$", text, re.MULTILINE)


def test_audit_runs_pip_audit_on_the_exported_lock() -> None:
    wf = workflow("audit.yml")
    assert "schedule" in triggers(wf)
    text = " ".join(run_text(wf).split())
    export = re.search(r"uv export (.*?)--output-file \"(\S+)\"", text)
    assert export, text
    assert "--locked" in export[1]
    assert "--all-packages" in export[1] and "--all-extras" in export[1]
    audit = re.search(r"pip_audit --requirement \"(\S+)\"(.*)", text)
    assert audit and audit[1] == export[2], "pip-audit must read the exported file"
    assert "--require-hashes" in audit[2] and "--disable-pip" in audit[2]


def test_docs_build_strictly_only_when_mkdocs_yml_exists() -> None:
    wf = workflow("docs.yml")
    steps = all_steps(wf)
    build = [s for s in steps if "mkdocs build" in s.get("run", "")]
    assert build and all(
        "--strict" in line for line in build[0]["run"].splitlines() if "mkdocs build" in line
    )
    # everything after the checkout depends on mkdocs.yml: without it the job must succeed doing nothing
    for step in steps[1:]:
        assert "hashFiles('mkdocs.yml')" in step.get("if", ""), step


# -- release.yml ----------------------------------------------------------------------------------------


def test_release_builds_on_a_version_tag_and_publishes_with_trusted_publishing() -> None:
    wf = workflow("release.yml")
    assert triggers(wf) == {"push": {"tags": ["v*"]}}
    build, publish = wf["jobs"]["build"], wf["jobs"]["publish"]
    assert "uv build --all-packages --out-dir dist" in run_text({"jobs": {"build": build}})
    assert step_using({"jobs": {"build": build}}, "actions/upload-artifact")["with"]["name"] == "dist"
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    assert "id-token" not in build.get("permissions", {}), "only the publishing job gets the OIDC token"
    pub = step_using({"jobs": {"publish": publish}}, "pypa/gh-action-pypi-publish")
    # trusted publishing: no stored credential of any kind
    assert not {"user", "password", "token", "api-token"} & set(pub.get("with", {}))
    assert "secrets." not in (WORKFLOWS / "release.yml").read_text(encoding="utf-8")
    download = step_using({"jobs": {"publish": publish}}, "actions/download-artifact")
    assert download["with"]["name"] == "dist"


def test_the_workspace_holds_the_four_distributions_the_release_builds() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert root["tool"]["uv"]["workspace"]["members"] == [f"providers/{p}" for p in PROVIDERS]


def _tag_check_script() -> str:
    [step] = [s for s in all_steps(workflow("release.yml")) if "TAG" in s.get("env", {})]
    return str(step["run"])


def _run_tag_check(tag: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # the workflow calls `python`; give it this interpreter whatever this machine calls python
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python").unlink(missing_ok=True)
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "TAG": tag, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-e", "-c", _tag_check_script()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_release_tag_check_accepts_the_current_version_and_refuses_another(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    ok = _run_tag_check(f"v{version}", tmp_path)
    assert ok.returncode == 0, ok.stderr
    wrong = _run_tag_check("v999.0.0", tmp_path)
    assert wrong.returncode != 0
    assert "tag v999.0.0 does not match" in wrong.stderr
    for name in ["runvoy", *(f"runvoy-{p}" for p in PROVIDERS)]:
        assert f"{name} {version}" in wrong.stderr


# -- dependabot, pre-commit, issue forms ----------------------------------------------------------------


def test_dependabot_covers_python_npm_and_actions() -> None:
    config = load_yaml(GITHUB / "dependabot.yml")
    assert config["version"] == 2
    updates: dict[str, list[str]] = {}
    for entry in config["updates"]:
        assert entry["schedule"]["interval"]
        dirs = entry.get("directories") or [entry["directory"]]
        updates.setdefault(entry["package-ecosystem"], []).extend(dirs)
    # Python through the `uv` ecosystem: one lock at the root covers the providers (decision 0922)
    assert updates["uv"] == ["/"]
    assert (ROOT / "uv.lock").is_file()
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    locked = {p["name"] for p in lock["package"]}
    assert {"runvoy", *(f"runvoy-{p}" for p in PROVIDERS)} <= locked
    assert updates["npm"] == ["/tools/azurite"]
    assert (ROOT / "tools/azurite/package-lock.json").is_file()
    assert updates["github-actions"] == ["/"]


def test_pre_commit_runs_ruff_mypy_and_the_lock_check_from_the_lock() -> None:
    config = load_yaml(ROOT / ".pre-commit-config.yaml")
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy", "uv-lock-check"}
    assert hooks["ruff-check"]["entry"].endswith("ruff check --force-exclude")
    assert hooks["ruff-format"]["entry"].endswith("ruff format --force-exclude")
    assert hooks["mypy"]["entry"].endswith(" mypy")
    assert hooks["mypy"]["pass_filenames"] is False
    assert hooks["uv-lock-check"]["entry"] == "uv lock --check"
    for hook_id in ("ruff-check", "ruff-format", "mypy"):
        # the tools of uv.lock, as in scripts/test.sh and lint.yml, not a second pinned copy
        assert hooks[hook_id]["entry"].startswith("uv run --frozen --all-extras --all-packages ")
    lock_files = re.compile(hooks["uv-lock-check"]["files"])
    for path in ["uv.lock", "pyproject.toml", *(f"providers/{p}/pyproject.toml" for p in PROVIDERS)]:
        assert lock_files.search(path), path
    assert not lock_files.search("docs/pyproject.toml.md")


@pytest.mark.parametrize("name", ["bug_report.yml", "feature_request.yml"])
def test_issue_forms(name: str) -> None:
    form = load_yaml(GITHUB / "ISSUE_TEMPLATE" / name)
    assert form["name"] and form["description"]
    ids = [item["id"] for item in form["body"] if item["type"] != "markdown"]
    assert len(ids) == len(set(ids)) >= 3
    assert any(item.get("validations", {}).get("required") for item in form["body"])
    for item in form["body"]:
        assert item["type"] in {"markdown", "input", "textarea", "dropdown", "checkboxes"}
        if item["type"] == "dropdown":
            assert item["attributes"]["options"]


def test_blank_issues_go_through_the_forms() -> None:
    assert load_yaml(GITHUB / "ISSUE_TEMPLATE" / "config.yml") == {"blank_issues_enabled": False}


# -- the markdown files ---------------------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)


def prose(text: str) -> str:
    return INLINE_CODE.sub("", FENCE.sub("", text))


def github_anchors(markdown: str) -> set[str]:
    """The ids GitHub gives the headings of a markdown file."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in FENCE.sub("", markdown).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match[1])
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def relative_links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_anchor_rule_matches_githubs() -> None:
    assert github_anchors(
        "## 8. Testing with the conformance kit\n## Minimal IAM policy (for the identity)"
    ) == {
        "8-testing-with-the-conformance-kit",
        "minimal-iam-policy-for-the-identity",
    }
    assert github_anchors("# Notes\n```\n# not a heading\n```\n# Notes") == {"notes", "notes-1"}


@pytest.mark.parametrize("name", list(PROJECT_FILES))
def test_project_file_exists_and_has_its_sections(name: str) -> None:
    path = ROOT / name
    assert path.is_file(), f"{name} is missing"
    text = path.read_text(encoding="utf-8")
    min_size, headings = PROJECT_FILES[name]
    assert len(text) >= min_size, f"{name} is only {len(text)} characters"
    present = {m[1].strip() for m in re.finditer(r"^#{1,6}\s+(.*)$", text, re.MULTILINE)}
    for heading in headings:
        assert heading in present, f"{name}: no heading {heading!r}"


@pytest.mark.parametrize("name", MARKDOWN_FILES)
def test_relative_links_point_to_existing_files_and_headings(name: str) -> None:
    path = ROOT / name
    links = relative_links(path)
    for link in links:
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{name}: link {link!r} points to nothing"
        assert ROOT in file.parents or file == ROOT, f"{name}: link {link!r} leaves the repository"
        if anchor and file.suffix == ".md":
            assert anchor in github_anchors(file.read_text(encoding="utf-8")), f"{name}: no heading #{anchor}"


def test_the_link_check_sees_links() -> None:
    # the check above passes trivially if the patterns stop matching
    links = relative_links(ROOT / "SECURITY.md")
    assert "CHANGELOG.md" in links
    assert "docs/locks.md#fencing" in links
    assert ".github/workflows/release.yml" in links
    assert not any(link.startswith("http") for link in links)


def test_changelog_follows_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## \[([^\]]+)\](.*)$", text, re.MULTILINE)
    assert versions[0] == ("Unreleased", "")
    released = versions[1:]
    assert released, "no released version"
    for version, date in released:
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", date), date
    kinds = set(re.findall(r"^### (.*)$", text, re.MULTILINE))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    current = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert current in {v for v, _ in released}, f"no entry for the version in pyproject.toml, {current}"


def test_the_readme_links_the_project_files() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documentation = readme.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    for name in ["SECURITY.md", "CONTRIBUTING.md", "CHANGELOG.md"]:
        assert f"]({name})" in documentation, name
