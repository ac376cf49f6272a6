"""examples/ keeps working with the runvoy next to it: each Python script runs on the local provider (in this
test's own RUNVOY_HOME), each playbook loads with runvoy's own playbook loader, and the GitHub Actions example is
a workflow whose runvoy command lines parse with runvoy's own CLI."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from runvoy_core.playbook import load_playbook

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted((EXAMPLES / "python").glob("*.py"))
PLAYBOOKS = sorted((EXAMPLES / "playbooks").glob("*.y*ml"))
WORKFLOW = EXAMPLES / "github-actions" / "runvoy.yml"


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    # RUNVOY_HOME and RUNVOY_CONFIG are this test's (the kit's runvoy_home fixture, tests/conftest.py)
    assert os.environ["RUNVOY_HOME"].startswith(os.path.dirname(os.environ["RUNVOY_CONFIG"]))
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=240, env=dict(os.environ)
    )


def test_there_are_examples_of_each_kind() -> None:
    assert {p.name for p in SCRIPTS} >= {
        "run_and_read.py",
        "submit_and_wait.py",
        "with_a_lock.py",
        "run_playbook.py",
    }
    assert len(PLAYBOOKS) >= 3
    assert WORKFLOW.is_file()
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for path in [*SCRIPTS, *PLAYBOOKS, WORKFLOW]:
        assert path.relative_to(EXAMPLES).as_posix() in readme, (
            f"examples/README.md does not mention {path.name}"
        )
    assert "(provider-template/README.md)" in readme


# -- the Python scripts, on the local provider ----------------------------------------------------------


def test_run_and_read() -> None:
    result = run_example("examples/python/run_and_read.py")
    # the command exits 3 on purpose, and the script with it
    assert result.returncode == 3, result.stderr
    out = result.stdout
    match = re.search(r"^execution ([0-9a-f]{12}): FAILED \(exit 3\) on local$", out, re.MULTILINE)
    assert match, out
    assert f"  [stdout] hello from {match[1]}" in out
    assert "  [stderr] a warning" in out
    assert re.search(r"^  \d\d:\d\d:\d\d finished FAILED$", out, re.MULTILINE), out
    assert re.search(r"^cost: 0 USD for ", out, re.MULTILINE), out
    assert re.search(r"^  the same run on (aws|gcp|azure): ", out, re.MULTILINE), out


def test_submit_and_wait() -> None:
    result = run_example("examples/python/submit_and_wait.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "  step 1\n  step 2\n  step 3\n" in out
    assert re.search(r"^[0-9a-f]{12}: SUCCEEDED \(exit 0\)$", out, re.MULTILINE), out
    assert "printed 'started'; stopping it" in out
    assert re.search(r"^[0-9a-f]{12}: CANCELLED ", out, re.MULTILINE), out


def test_with_a_lock() -> None:
    result = run_example("examples/python/with_a_lock.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^[0-9a-f]{12} holds example-deploy with fence \d+$", out, re.MULTILINE), out
    assert re.search(
        r"^refused: lock 'example-deploy' is held by execution [0-9a-f]{12}", out, re.MULTILINE
    ), out
    deploys = re.findall(r"^deploy (\d): SUCCEEDED, fence (\d+)$", out, re.MULTILINE)
    assert sorted(n for n, _ in deploys) == ["1", "2", "3"], out
    fences = [int(f) for _, f in deploys]
    assert fences == sorted(fences) and len(set(fences)) == 3


def test_run_playbook_runs_a_playbook_as_one_execution() -> None:
    result = run_example("examples/python/run_playbook.py", "examples/playbooks/hello.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^hello from [0-9a-f]{12}$", result.stdout, re.MULTILINE), result.stdout
    assert "greeting: hi" in result.stdout
    assert "==> [3/4] optional: failed with exit code 1" in result.stderr
    assert re.search(r"^[0-9a-f]{12}: SUCCEEDED \(exit 0\)$", result.stderr, re.MULTILINE), result.stderr


def test_run_playbook_reports_a_bad_playbook_as_runvoy_does(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("steps:\n  - rn: echo typo\n", encoding="utf-8")
    result = run_example("examples/python/run_playbook.py", str(bad))
    assert result.returncode == 125
    assert "error: " in result.stderr and "rn" in result.stderr
    assert "Traceback" not in result.stderr


# -- the playbooks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.name)
def test_playbook_loads_with_runvoys_loader(path: Path) -> None:
    book = load_playbook(path)
    assert book.steps
    assert book.description, "say what the example is for"
    request = book.to_request()
    assert request.command and request.command.startswith("# runvoy playbook ")
    # the request `runvoy run -f` would make: the playbook's name as a label, its own options validated
    assert request.labels["playbook"] == book.name == path.stem


# -- the GitHub Actions workflow ------------------------------------------------------------------------


def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps(wf: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in wf["jobs"].values() for step in job["steps"]]


def test_the_workflow_has_the_keys_github_needs() -> None:
    wf = workflow()
    assert wf["name"]
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert isinstance(on, dict)
    assert {"push", "pull_request", "schedule"} <= set(on)
    assert wf["permissions"] == {"contents": "read"}
    for job_id, job in wf["jobs"].items():
        assert job["runs-on"], job_id
        assert isinstance(job["timeout-minutes"], int), job_id
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
    # cloud credentials through OIDC: no stored key anywhere
    assert "secrets." not in WORKFLOW.read_text(encoding="utf-8")
    assert any(str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@") for s in steps(wf))


def runvoy_command_lines(wf: dict[Any, Any]) -> list[list[str]]:
    """The runvoy command lines of the workflow's steps, with the step's variables given sample values."""
    lines = []
    samples = {
        "GITHUB_SHA": "0" * 40,
        "GITHUB_WORKFLOW": "tests",
        "BRANCH": "feature/x",
        "APP_IMAGE": "r/app",
    }
    for step in steps(wf):
        text = step.get("run", "")
        for name, value in samples.items():
            text = text.replace(f"${name}", value)
        for line in text.split("\n"):
            words = shlex.split(line, comments=True)
            if words and words[0] == "runvoy":
                redirect = words.index(">") if ">" in words else len(words)
                lines.append(words[1:redirect])
    return lines


def parse(cli: click.Group, args: list[str]) -> click.Context:
    """The context `runvoy ARGS` would run the subcommand with; raises on an unknown option or a bad value."""
    group_ctx = click.Context(cli, info_name="runvoy")
    command = cli.get_command(group_ctx, args[0])
    assert command is not None, args
    return command.make_context(args[0], list(args[1:]), parent=group_ctx)


def test_the_workflows_runvoy_commands_parse_with_runvoys_cli() -> None:
    from runvoy_cli.main import cli

    commands = runvoy_command_lines(workflow())
    assert [c[0] for c in commands] == ["run", "reconcile"]
    for args in commands:
        ctx = parse(cli, args)
        assert ctx.params.get("provider") == "aws", args
    run = commands[0]
    playbook = run[run.index("-f") + 1]
    assert (EXAMPLES / "playbooks" / Path(playbook).name).is_file(), playbook
    assert "--on-conflict" in run and "--lock" in run


def test_the_command_line_check_sees_a_bad_option() -> None:
    from runvoy_cli.main import cli

    with pytest.raises(click.UsageError):
        parse(cli, ["run", "--no-such-option", "x"])
    with pytest.raises(click.BadParameter):
        parse(cli, ["run", "--on-conflict", "sometimes", "--lock", "x", "echo"])
