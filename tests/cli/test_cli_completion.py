"""Shell completion through real shells: the script ``runvoy completion SHELL`` prints is loaded into bash,
zsh or fish, which then run the installed ``runvoy`` as they would on a TAB (decision 2121).

bash: the completion function is called as readline calls it, with COMP_WORDS/COMP_CWORD set, and
COMPREPLY is printed. fish: ``complete -C`` asks fish for the completions of a command line. zsh: an
interactive zsh in a terminal (pexpect), where TAB is pressed."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import run_script

BIN = str(Path(sys.executable).parent)


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def bash_complete(line: str, cwd: Path | None = None) -> list[str]:
    """What bash offers for ``line`` (the cursor at its end), as readline's completion would set it."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    script = "\n".join(
        [
            'eval "$(runvoy completion bash)"',
            "complete -p runvoy >&2",
            f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})",
            f"COMP_CWORD={len(words) - 1}",
            "COMPREPLY=()",
            "_runvoy_completion runvoy",
            'for reply in "${COMPREPLY[@]}"; do printf "reply:%s\\n" "$reply"; done',
        ]
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    assert "complete -o nosort -F _runvoy_completion runvoy" in done.stderr
    assert "Traceback" not in done.stderr
    return [line.removeprefix("reply:") for line in done.stdout.splitlines() if line.startswith("reply:")]


def fish_complete(line: str, cwd: Path | None = None) -> dict[str, str]:
    """fish's completions of ``line``: value -> description."""
    done = subprocess.run(
        ["fish", "--no-config", "-c", f"runvoy completion fish | source; complete -C {shlex.quote(line)}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    offered = {}
    for row in done.stdout.splitlines():
        value, _, description = row.partition("\t")
        offered[value] = description
    return offered


def start(*args: str) -> str:
    done = run_script("run", "--detach", *args)
    assert done.returncode == 0, done.stderr
    execution_id = done.stdout.strip()
    waited = run_script("wait", execution_id)
    assert waited.returncode == 0, waited.stderr
    return execution_id


@pytest.fixture
def two_runs() -> tuple[str, str]:
    return start("echo first-run"), start("--lock", "nightly-etl", "echo second-run")


def test_the_script_is_printed_for_each_shell(script) -> None:
    for shell, needle in (
        ("bash", "complete -o nosort -F _runvoy_completion runvoy"),
        ("zsh", "compdef _runvoy_completion runvoy"),
        ("fish", 'complete --no-files --command runvoy --arguments "(_runvoy_completion)"'),
    ):
        done = script("completion", shell)
        assert done.returncode == 0, done.stderr
        assert needle in done.stdout
    refused = script("completion", "tcsh")
    assert refused.returncode == 2 and "tcsh" in refused.stderr


def test_bash_completes_commands_and_options() -> None:
    assert bash_complete("runvoy st") == ["status"]
    assert {"run", "status", "logs", "locks", "completion"} <= set(bash_complete("runvoy "))
    assert bash_complete("runvoy run --lock-") == ["--lock-timeout", "--lock-slots"]
    assert {"--provider", "--profile"} <= set(bash_complete("runvoy --pro"))


def test_bash_completes_provider_names() -> None:
    assert "local" in bash_complete("runvoy --provider ")
    assert bash_complete("runvoy run --provider loc") == ["local"]


def test_bash_completes_profile_names_from_the_config_file() -> None:
    Path(os.environ["RUNVOY_CONFIG"]).write_text(
        'provider = "local"\n[profiles.ci]\nprovider = "local"\n[profiles.nightly]\n', encoding="utf-8"
    )
    assert sorted(bash_complete("runvoy --profile ")) == ["ci", "default", "nightly"]
    assert bash_complete("runvoy --profile n") == ["nightly"]


def test_bash_completes_execution_ids_of_recent_runs(two_runs: tuple[str, str]) -> None:
    first, second = two_runs
    for command in ("status", "logs", "wait", "kill"):
        assert set(bash_complete(f"runvoy {command} ")) == {first, second}
    assert bash_complete(f"runvoy status {first[:6]}") == [first]


def test_bash_completes_lock_names(two_runs: tuple[str, str]) -> None:
    assert bash_complete("runvoy locks status ") == ["nightly-etl"]
    assert bash_complete("runvoy locks release nig") == ["nightly-etl"]
    assert bash_complete("runvoy run --lock ") == ["nightly-etl"]


def test_bash_completes_playbook_files(tmp_path: Path) -> None:
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    (tmp_path / "deploy.yml").write_text("steps: []\n")
    (tmp_path / "etl.yaml").write_text("steps: []\n")
    (tmp_path / "notes.txt").write_text("not a playbook\n")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "nightly.yml").write_text("steps: []\n")
    assert sorted(bash_complete("runvoy run -f ", cwd=tmp_path)) == ["deploy.yml", "etl.yaml", "playbooks/"]
    assert bash_complete("runvoy run --file playbooks/", cwd=tmp_path) == ["playbooks/nightly.yml"]
    # a lone directory is walked into: bash would put a space after it
    assert bash_complete("runvoy run -f pl", cwd=tmp_path) == ["playbooks/nightly.yml"]
    (tmp_path / "playbooks" / "weekly.yaml").write_text("steps: []\n")
    assert bash_complete("runvoy run -f pl", cwd=tmp_path) == [
        "playbooks/nightly.yml",
        "playbooks/weekly.yaml",
    ]


def test_a_broken_store_or_config_completes_nothing_and_shows_no_traceback(two_runs: tuple[str, str]) -> None:
    home = Path(os.environ["RUNVOY_HOME"])
    for name in ("state.db-wal", "state.db-shm"):
        (home / name).unlink(missing_ok=True)
    (home / "state.db").write_bytes(b"this is not a database" * 100)
    assert bash_complete("runvoy status ") == []
    assert bash_complete("runvoy locks status ") == []
    Path(os.environ["RUNVOY_CONFIG"]).write_text("provider = [broken\n", encoding="utf-8")
    assert bash_complete("runvoy status ") == []
    assert bash_complete("runvoy --profile ") == []
    assert bash_complete("runvoy st") == ["status"]  # commands still complete


def test_a_cloud_store_that_does_not_answer_completes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listening socket that never answers: the lookup is given up after its deadline, and the
    completion still ends cleanly, offering nothing."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        Path(os.environ["RUNVOY_CONFIG"]).write_text(
            "[providers.aws]\n"
            f'endpoint_url = "http://127.0.0.1:{silent.getsockname()[1]}"\n'
            'region = "us-east-1"\nread_timeout = 600\n',
            encoding="utf-8",
        )
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
            monkeypatch.setenv(name, value)
        assert bash_complete("runvoy --provider aws status ") == []
        assert bash_complete("runvoy locks status --provider aws ") == []
    finally:
        silent.close()


@pytest.mark.skipif(
    shutil.which("fish") is None, reason="fish is not installed (scripts/test.sh installs it)"
)
def test_fish_completes_each_kind_with_descriptions(two_runs: tuple[str, str], tmp_path: Path) -> None:
    first, second = two_runs
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    (tmp_path / "deploy.yml").write_text("steps: []\n")
    Path(os.environ["RUNVOY_CONFIG"]).write_text('[profiles.ci]\nprovider = "local"\n', encoding="utf-8")
    assert "status" in fish_complete("runvoy sta")
    assert fish_complete("runvoy --pro")["--provider"].startswith("Provider to use")
    assert "local" in fish_complete("runvoy --provider ")
    assert fish_complete("runvoy --profile ")["ci"] == "provider local"
    ids = fish_complete("runvoy status ")
    assert ids[first] == "SUCCEEDED echo first-run" and ids[second] == "SUCCEEDED echo second-run"
    assert fish_complete("runvoy locks status ") == {"nightly-etl": "released"}
    assert fish_complete("runvoy run -f ", cwd=tmp_path) == {"deploy.yml": "playbook"}


def zsh_tab(cwd: Path, typed: str, *shown: str) -> None:
    """Type ``typed`` and TAB in a fresh interactive zsh with the script loaded; expect ``shown`` on the
    terminal, in order. A fresh shell per line: no state (or a lost Ctrl-C) carries over."""
    import pexpect

    env = {**_env(), "TERM": "xterm", "PS1": "READY> ", "HOME": str(cwd)}
    shell = pexpect.spawn(
        "zsh", ["-f", "-i"], env=env, cwd=str(cwd), encoding="utf-8", timeout=60, dimensions=(40, 200)
    )
    try:
        shell.expect("READY> ")
        shell.sendline(
            'autoload -Uz compinit && compinit -u && eval "$(runvoy completion zsh)" && echo LOADED'
        )
        shell.expect("LOADED")
        shell.expect("READY> ")
        shell.send(f"{typed}\t")
        for text in shown:
            shell.expect_exact(text)
    finally:
        shell.close(force=True)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/test.sh installs it)")
def test_zsh_completes_on_tab_in_a_terminal(two_runs: tuple[str, str], tmp_path: Path) -> None:
    first, second = two_runs
    work = tmp_path / "work"
    work.mkdir()
    (work / "deploy.yml").write_text("steps: []\n")
    # two candidates: zsh lists them with their descriptions, newest first
    zsh_tab(
        work,
        "runvoy status ",
        f"{second}  -- SUCCEEDED echo second-run",
        f"{first}  -- SUCCEEDED echo first-run",
    )
    # one candidate: zsh puts it on the line
    zsh_tab(work, "runvoy locks status ", "runvoy locks status nightly-etl")
    zsh_tab(work, "runvoy run -f ", "runvoy run -f deploy.yml")
    zsh_tab(work, "runvoy --pro", "--provider  -- Provider to use", "--profile   -- Config profile to use")
