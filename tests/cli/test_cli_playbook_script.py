"""runvoy_core.playbook: parsing, validation and the generated script, run by a real /bin/sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runvoy_core.errors import UsageError, ValidationFailed
from runvoy_core.models import Status
from runvoy_core.playbook import load_playbook, merge_options, parse_playbook


def _sh(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_yaml_scalars_become_strings_and_options_map_to_the_request() -> None:
    book = parse_playbook(
        "name: etl\ncpu: 1\nmemory: 2GiB\ntimeout: 90\nenv: {PORT: 8080, DEBUG: yes}\n"
        "lock: etl\non_conflict: wait\nsecrets: [DB]\nsteps: [{run: 'true'}]\n"
    )
    assert book.env == {"PORT": "8080", "DEBUG": "true"}
    request = book.to_request(env={"PORT": "9090"}, labels={"team": "data"}, timeout="2m")
    assert str(request.resources.cpu) == "1" and request.resources.memory_mib == 2048
    assert request.timeout == 120 and request.lock == "etl" and request.on_conflict.value == "wait"
    assert request.env == {"PORT": "9090", "DEBUG": "true"}
    assert request.labels == {"playbook": "etl", "team": "data"}
    assert request.secrets == ["DB"] and request.command is not None


def test_a_bare_list_is_a_playbook_of_steps() -> None:
    assert [s.run for s in parse_playbook("- run: echo a\n- run: echo b\n").steps] == ["echo a", "echo b"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("steps: []\n", "steps: List should have at least 1 item"),
        ("name: x\n", "steps: Field required"),
        ("steps: [{run: '  '}]\n", "steps.0.run: run is empty"),
        ("steps: [{run: 'true', env: {'1X': a}}]\n", "environment variable name '1X'"),
        ("shell: 'sh -x'\nsteps: [{run: 'true'}]\n", "shell 'sh -x'"),
        ("stepz: []\n", "stepz: unknown setting"),
    ],
)
def test_schema_errors_name_the_field(text: str, needle: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_playbook(text, source="p.yaml")
    assert needle in info.value.message and info.value.message.startswith("playbook p.yaml: ")


def test_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="must be a mapping"):
        parse_playbook("just text\n")
    with pytest.raises(UsageError, match="not found"):
        load_playbook(tmp_path / "missing.yaml")


def test_merge_options_command_line_wins_and_merges_dicts() -> None:
    merged = merge_options(
        {"env": {"A": "1", "B": "1"}, "cpu": "1", "secrets": ["X"], "spot": True},
        {"env": {"B": "2"}, "cpu": "2", "secrets": ["Y", "X"], "spot": None, "labels": {}},
    )
    assert merged == {"env": {"A": "1", "B": "2"}, "cpu": "2", "secrets": ["X", "Y"], "spot": True}


def test_script_quotes_names_and_bodies_and_isolates_steps(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    book = parse_playbook(
        'name: "odd name; rm -rf /"\n'
        "steps:\n"
        '  - name: "it\'s $(echo injected)"\n'
        '    run: echo "quote \' and $VALUE"\n'
        '    env: {VALUE: "$(not run) `nor this`"}\n'
        "  - run: pwd\n"
        "    workdir: sub\n"
        '  - run: echo "VALUE=${VALUE:-gone}"; pwd\n',
        default_name="ignored",
    )
    result = _sh(book.script(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "quote ' and $(not run) `nor this`",
        str(tmp_path / "sub"),
        "VALUE=gone",
        str(tmp_path),
    ]
    assert result.stderr.splitlines()[0] == "==> [1/3] it's $(echo injected)"
    assert result.stderr.splitlines()[-1] == "==> playbook finished: 3 step(s) ok"


def test_set_e_inside_a_step_and_the_exit_code_of_the_failing_step(tmp_path: Path) -> None:
    book = parse_playbook(
        "steps:\n  - run: |\n      echo one\n      sh -c 'exit 9'\n      echo two\n  - run: echo three\n"
    )
    result = _sh(book.script(), tmp_path)
    assert result.returncode == 9 and result.stdout == "one\n"
    assert "==> [1/2] echo one: failed with exit code 9; stopping the playbook" in result.stderr


def test_bash_as_the_step_shell(tmp_path: Path) -> None:
    book = parse_playbook("shell: bash\nsteps: [{run: 'set -o pipefail; false | true'}]\n")
    result = _sh(book.script(), tmp_path)
    assert result.returncode == 1


def test_the_python_api_runs_a_playbook() -> None:
    from runvoy_core.api import Runvoy

    book = parse_playbook("steps: [{name: a, run: echo from-api}]\n")
    execution = Runvoy().run(book.to_request())
    assert execution.status == Status.SUCCEEDED
    assert [e.message for e in Runvoy().logs(execution.id) if e.stream == "stdout"] == ["from-api"]
