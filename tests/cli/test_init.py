"""`runvoy init` driven in a real terminal (pexpect) with the local provider: the questions and their
defaults, a bad answer asked again, Ctrl-C at every question before the write leaving the config file
byte-identical, other profiles kept, and the --non-interactive path (decision 2111)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tomllib
from pathlib import Path

import pexpect
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core import inputs
from runvoy_core.testing.waiting import wait_for

from .conftest import RUNVOY

TIMEOUT = 120  # a loaded 2-core machine; every wait is on an output line, never on time

PROMPTS = [
    r"Config profile to write \[default\]: ",
    r"Provider \[local\]: ",
    r"Default vCPU of a run \[0\.25\]: ",
    r"Default memory of a run \[512MiB\]: ",
    r"Write this to .*config\.toml\? \[Y/n\]: ",
]
EXISTING = """# my runvoy settings (a comment init must keep)
log_level = "info"

[providers.local]
shell = "/bin/sh"   # inline comment

[profiles.ci]
provider = "local"
user = "ci"
"""


def config_path() -> Path:
    return Path(os.environ["RUNVOY_CONFIG"])


def spawn(*args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        RUNVOY,
        ["init", *args],
        env=os.environ.copy(),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 200),
    )
    return child


READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}.get(os.uname().machine, "0")


def interrupt_at_the_question(child: pexpect.spawn) -> None:
    """Ctrl-C once the wizard blocks reading the terminal. The prompt is written just before the read: a
    SIGINT landing in between only sets CPython's flag, acted on at the next key, so the test waits for the
    read (the process state in /proc), never for a time."""

    def reading() -> bool:
        if not Path("/proc/self/syscall").exists():  # macOS: ps names the wait channel of a tty read
            done = subprocess.run(
                ["ps", "-o", "wchan=", "-p", str(child.pid)], capture_output=True, text=True
            )
            return done.stdout.strip() == "ttyin"
        try:
            fields = Path(f"/proc/{child.pid}/syscall").read_text().split()
        except OSError:
            return False
        return fields[:2] == [READ_SYSCALL, "0x0"]

    wait_for(reading, what="runvoy init to wait for an answer")
    child.sendintr()


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert "Traceback" not in (child.before or "")
    return int(child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0))


def test_enter_at_every_question_writes_the_profile_and_runs_hello(tmp_path: Path) -> None:
    child = spawn()
    transcript = []
    for prompt in PROMPTS:
        child.expect(prompt)
        transcript.append(child.before)
        child.sendline("")
    child.expect(r"Run setup now\? \[Y/n\]: ")
    child.sendline("")
    child.expect(r"Run a first command \(echo hello from runvoy\)\? \[Y/n\]: ")
    child.sendline("")
    child.expect(r"\nhello from runvoy\r?\n")
    child.expect("Next:")
    assert finish(child) == 0
    assert "local" in "".join(transcript)  # the installed providers were listed
    written = tomllib.loads(config_path().read_text(encoding="utf-8"))
    assert written == {"provider": "local", "cpu": "0.25", "memory": "512MiB"}
    assert not [p for p in config_path().parent.iterdir() if p.name.endswith(".tmp")]


def test_yes_answers_the_yes_no_questions_and_still_asks_for_values() -> None:
    child = spawn("--yes")
    child.logfile_read = transcript = io.StringIO()
    for prompt in PROMPTS[:-1]:
        child.expect(prompt)
        child.sendline("")
    child.expect(r"\nhello from runvoy\r?\n")
    assert finish(child) == 0
    assert "Write this" not in transcript.getvalue() and "[Y/n]" not in transcript.getvalue()
    assert "would create" in transcript.getvalue()  # the dry run is still shown
    assert tomllib.loads(config_path().read_text(encoding="utf-8"))["provider"] == "local"


@pytest.mark.parametrize("existing", [None, EXISTING], ids=["no-file", "a-file"])
@pytest.mark.parametrize("at", range(len(PROMPTS)), ids=[f"question-{n}" for n in range(len(PROMPTS))])
def test_ctrl_c_at_any_question_leaves_the_config_as_it_was(existing: str | None, at: int) -> None:
    path = config_path()
    if existing is not None:
        path.write_text(existing, encoding="utf-8")
    before = path.read_bytes() if existing is not None else None
    child = spawn()
    for prompt in PROMPTS[:at]:
        child.expect(prompt)
        child.sendline("")
    child.expect(PROMPTS[at])
    interrupt_at_the_question(child)
    child.expect("interrupted")
    assert finish(child) == 130
    if before is None:
        assert not path.exists()
    else:
        assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".config.toml")) == []


def test_a_bad_answer_is_asked_again_with_the_reason() -> None:
    child = spawn("--no-setup", "--no-first-run")
    child.expect(PROMPTS[0])
    child.sendline("no spaces allowed")
    child.expect("is not a profile name")
    child.expect(PROMPTS[0])
    child.sendline("")
    child.expect(PROMPTS[1])
    child.sendline("nope")
    child.expect(r"no provider 'nope' is installed here \(installed: [a-z, ]*local")
    child.expect(PROMPTS[1])
    child.sendline("local")
    child.expect(PROMPTS[2])
    child.sendline("lots")
    child.expect("is not a number of vCPU")
    child.expect(PROMPTS[2])
    child.sendline("1")
    child.expect(r"Default memory of a run \[512MiB\]: ")
    child.sendline("½GiB")
    child.expect("try again")
    child.expect(r"Default memory of a run \[512MiB\]: ")
    child.sendline("2GiB")
    child.expect(PROMPTS[4])
    child.sendline("y")
    child.expect("Next:")
    assert finish(child) == 0
    written = tomllib.loads(config_path().read_text(encoding="utf-8"))
    assert written == {"provider": "local", "cpu": "1", "memory": "2GiB"}


def test_writing_a_profile_keeps_the_other_profiles_and_the_comments() -> None:
    path = config_path()
    path.write_text(EXISTING, encoding="utf-8")
    child = spawn("--profile", "dev", "--no-setup", "--no-first-run")
    for prompt in PROMPTS[1:]:
        child.expect(prompt)
        child.sendline("")
    assert finish(child) == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith(EXISTING)  # every byte of the old file is still there, comments included
    data = tomllib.loads(text)
    assert data["profiles"]["ci"] == {"provider": "local", "user": "ci"}
    assert data["profiles"]["dev"] == {"provider": "local", "cpu": "0.25", "memory": "512MiB"}
    assert data["log_level"] == "info" and data["providers"] == {"local": {"shell": "/bin/sh"}}


def run_init(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNVOY, "init", "--non-interactive", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )


def test_non_interactive_writes_runs_hello_and_the_size_becomes_the_default_of_a_run() -> None:
    done = run_init("--provider", "local", "--cpu", "1", "--memory", "1GiB")
    assert done.returncode == 0, done.stderr
    assert "hello from runvoy" in done.stdout and "Traceback" not in done.stderr
    assert tomllib.loads(config_path().read_text(encoding="utf-8")) == {
        "provider": "local",
        "cpu": "1",
        "memory": "1GiB",
    }
    record = subprocess.run(
        [RUNVOY, "run", "--json", "true"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=os.environ.copy(),
    )
    assert record.returncode == 0, record.stderr
    resources = json.loads(record.stdout)["request"]["resources"]
    assert (resources["cpu"], resources["memory_mib"]) == ("1", 1024)
    # a run naming its own size gets none of the defaults (they are a pair)
    sized = subprocess.run(
        [RUNVOY, "run", "--json", "--cpu", "2", "true"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=os.environ.copy(),
    )
    assert json.loads(sized.stdout)["request"]["resources"]["memory_mib"] == 512


def test_non_interactive_refuses_to_replace_a_profile_without_yes() -> None:
    assert run_init("--no-setup", "--no-first-run").returncode == 0
    before = config_path().read_bytes()
    refused = run_init("--cpu", "2", "--memory", "4GiB", "--no-setup", "--no-first-run")
    assert refused.returncode == 125, refused.stderr
    assert "pass --yes" in refused.stderr and "Traceback" not in refused.stderr
    assert config_path().read_bytes() == before
    replaced = run_init("--cpu", "2", "--memory", "4GiB", "--no-setup", "--no-first-run", "--yes")
    assert replaced.returncode == 0, replaced.stderr
    assert tomllib.loads(config_path().read_text(encoding="utf-8"))["cpu"] == "2"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--provider", "nope"], "--provider: no provider 'nope' is installed here"),
        (["--region", "eu-west-1"], "--region: provider 'local' takes no region"),
        (["--set", "no_such_key=1"], "no_such_key: unknown setting"),
        (["--set", "shell"], "--set: 'shell': expected KEY=VALUE"),
        (["--cpu", "nan"], "--cpu"),
    ],
)
def test_non_interactive_bad_values_are_clean_errors_and_write_nothing(args: list[str], needle: str) -> None:
    done = run_init(*args)
    assert done.returncode == 125, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not config_path().exists()


def test_a_config_file_that_is_not_toml_is_left_alone() -> None:
    config_path().write_text("provider = [unclosed\n", encoding="utf-8")
    done = run_init()
    assert done.returncode == 125 and "is not valid TOML" in done.stderr, done.stderr
    assert config_path().read_text(encoding="utf-8") == "provider = [unclosed\n"


# -- the form of --set ------------------------------------------------------------------------------------------

KEYS = st.from_regex(r"\A[a-z][a-z0-9_]{0,63}\Z")
VALUES = st.text(st.characters(min_codepoint=32, codec="utf-8"), max_size=200).filter(
    lambda v: "\x7f" not in v
)


@settings(max_examples=200, deadline=None)
@given(key=KEYS, value=VALUES)
def test_a_provider_setting_inside_its_form_is_parsed_into_key_and_value(key: str, value: str) -> None:
    assert inputs.PROVIDER_SETTING.parse(f"{key}={value}") == (key, value)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=80),
        st.tuples(st.text(max_size=70), VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"),
        st.tuples(KEYS, st.text(max_size=30)).map(lambda kv: f"{kv[0]}={kv[1]}"),
        st.tuples(KEYS, st.just("x" * (inputs.MAX_SETTING_VALUE_CHARS + 1))).map(
            lambda kv: f"{kv[0]}={kv[1]}"
        ),
    )
)
def test_a_provider_setting_is_accepted_only_inside_its_form(text: str) -> None:
    key, sep, value = text.partition("=")
    inside = (
        bool(sep)
        and len(key) <= 64
        and key[:1].isascii()
        and key[:1].isalpha()
        and key[:1].islower()
        and all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in key)
        and len(value) <= inputs.MAX_SETTING_VALUE_CHARS
        and inputs.text_problem(text) is None
    )
    try:
        parsed = inputs.PROVIDER_SETTING.parse(text)
    except ValueError as exc:
        assert not inside, (text, exc)
        assert str(exc)
    else:
        assert inside and parsed == (key, value), text


# -- the write itself ---------------------------------------------------------------------------------------------


def test_an_interrupt_while_the_new_file_is_staged_leaves_the_old_one(tmp_path: Path) -> None:
    from runvoy_cli.config_file import write_atomically

    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text(EXISTING, encoding="utf-8")
    path.chmod(0o640)
    seen = []

    def interrupted(staged: Path) -> None:
        seen.append(staged.read_text(encoding="utf-8"))  # the whole new text is there before the swap
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, 'provider = "local"\n', check=interrupted)
    assert seen == ['provider = "local"\n']
    assert path.read_text(encoding="utf-8") == EXISTING
    assert sorted(p.name for p in folder.iterdir()) == ["config.toml"]
    write_atomically(path, 'provider = "local"\n')
    assert path.read_text(encoding="utf-8") == 'provider = "local"\n'
    assert path.stat().st_mode & 0o777 == 0o640  # the file keeps its mode
