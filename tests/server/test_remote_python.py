"""``Runvoy(server=URL, token=...)`` from Python, ``runvoy login``/``logout`` and the token file, and the
accepted forms of the client's inputs (decision 1517)."""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core import Runvoy, inputs
from runvoy_core.errors import (
    InvalidToken,
    LockHeld,
    NotFound,
    ServerUnavailable,
    ValidationFailed,
)
from runvoy_core.models import LogEvent, Status, StopReason
from runvoy_core.remote import sse
from runvoy_core.remote.client import normalize_server
from runvoy_core.remote.tokens import remove_token, resolve_token, save_token, stored_token
from runvoy_core.runner import RunHandle
from runvoy_core.testing.waiting import DEADLINE, gate
from tests.server.conftest import RUNVOY, RunningServer, StartServer, new_token


@pytest.fixture
def remote(start_server: StartServer, tmp_path: Path) -> RunningServer:
    home = tmp_path / "server-home"
    home.mkdir()
    return start_server(home=home, token=new_token())


class Collect:
    def __init__(self) -> None:
        self.events: list[LogEvent] = []

    def write_events(self, events: list[LogEvent]) -> None:
        self.events.extend(events)


def test_python_api_through_a_server(remote: RunningServer, tmp_path: Path) -> None:
    with Runvoy(server=remote.url, token=remote.token) as rv:
        assert rv.provider_name == "local"
        sink = Collect()
        started: list[RunHandle] = []
        done = rv.run(
            "echo one; echo two >&2; exit 5", log_sink=sink, on_start=started.append, labels={"k": "v"}
        )
        assert (done.status, done.exit_code) == (Status.FAILED, 5)
        assert [(e.stream, e.message) for e in sink.events] == [("stdout", "one"), ("stderr", "two")]
        assert started and started[0].execution.id == done.id
        assert done.request.labels["k"] == "v" and done.user == "admin"
        from runvoy_core.models import ExecutionRequest

        given = ExecutionRequest.model_validate({"command": "echo sized", "resources": {"cpu": "0.5"}})
        sized = rv.run(given)
        assert (sized.exit_code, str(sized.request.resources.cpu)) == (0, "0.5")
        assert sized.request.resources.explicit == frozenset({"cpu"})
        submitted = rv.submit(["sh", "-c", "exit 0"], timeout="1m")
        assert rv.wait(submitted.id, timeout=DEADLINE).status == Status.SUCCEEDED
        assert rv.resolve_id(submitted.id[:7]) == submitted.id
        assert rv.get(submitted.id).request.timeout == 60.0
        assert [c.event for c in rv.events(submitted.id)][-1] == "finished"
        assert [m.message for m in rv.logs(done.id, tail=1)] == ["two"]
        page = rv.log_page(done.id, limit=1)
        assert [e.message for e in page.events] == ["one"]
        assert {e.id for e in rv.list(labels={"k": "v"})} == {done.id}
        assert {e.id for e in rv.list(statuses={Status.SUCCEEDED})} == {submitted.id, sized.id}
        with pytest.raises(NotFound):
            rv.status("0000")
        with pytest.raises(ValidationFailed):
            rv.run("true", memory="lots")
        with pytest.raises(ValidationFailed):
            rv.wait(done.id, timeout=-1)

        # a lock held by a detached run: the same LockHeld (exit 75) a local run raises
        release = tmp_path / "release"
        holder = rv.submit(gate(release), lock="py-lock")
        with pytest.raises(LockHeld) as held:
            rv.run("true", lock="py-lock")
        assert held.value.exit_code == 75
        locks = {lock["name"]: lock for lock in rv.list_locks()}
        assert locks["py-lock"]["holder"]["execution_id"] == holder.id
        assert rv.lock_status("py-lock")["holder_status"].upper() in ("RUNNING", "STARTING")
        release.touch()
        assert rv.wait(holder.id, timeout=DEADLINE).status == Status.SUCCEEDED

        # Ctrl-C's handler sets handle.cancel: the server stops the run as a local Ctrl-C would (here once
        # the command has shown it runs)
        handles: list[RunHandle] = []

        class CancelOnOutput(Collect):
            def write_events(self, events: list[LogEvent]) -> None:
                super().write_events(events)
                handles[0].cancel = StopReason.CANCEL

        stopped = rv.run("echo ready; sleep 300", on_start=handles.append, log_sink=CancelOnOutput())
        assert (stopped.status, stopped.exit_code) == (Status.CANCELLED, 143)

        assert rv.kill(rv.submit("sleep 300").id, wait=DEADLINE).status == Status.CANCELLED
        assert isinstance(rv.reconcile(dry_run=True), list)
        assert "local" in {p["name"] for p in rv.list_providers()["providers"]}


def test_python_api_refusals(remote: RunningServer) -> None:
    with pytest.raises(InvalidToken) as refused:
        Runvoy(server=remote.url, token=new_token()).list()
    assert refused.value.exit_code == 77
    with pytest.raises(ServerUnavailable):
        Runvoy(server="http://127.0.0.1:9", token=new_token()).list()


def test_playbooks_cost_and_budgets_through_a_server(remote: RunningServer) -> None:
    with Runvoy(server=remote.url, token=remote.token) as rv:
        sink = Collect()
        done = rv.run_playbook("name: hello\nsteps:\n  - run: echo from-playbook\n", log_sink=sink)
        assert done.status == Status.SUCCEEDED and done.request.labels.get("playbook") == "hello"
        assert "from-playbook" in [e.message for e in sink.events]
        detached = rv.submit_playbook("steps:\n  - run: exit 2\n", name="fails")
        assert rv.wait(detached.id, timeout=DEADLINE).exit_code == 2
        with pytest.raises(ValidationFailed):
            rv.run_playbook("steps: 3\n")
        estimate = rv.estimate_cost(provider="local", duration="1h")
        assert estimate["estimates"][0]["provider"] == "local"
        assert "rows" in rv.cost_report(since=86400)
        created = rv.set_budget("monthly", amount="50", scopes=["provider=local"])
        assert created["created"] is True
        assert [b["name"] for b in rv.list_budgets()] == ["monthly"]
        assert rv.show_budget("monthly")["amount"] in ("50", "50.00")
        rv.remove_budget("monthly")
        with pytest.raises(NotFound):
            rv.show_budget("monthly")


# -- runvoy login / logout -----------------------------------------------------------------------------------
def _cli(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("RUNVOY_TOKEN", "RUNVOY_SERVER")}
    full.update(env)
    return subprocess.run(
        [RUNVOY, *args], capture_output=True, text=True, input=stdin, env=full, timeout=DEADLINE * 2
    )


def test_login_keeps_the_key_0600_and_logout_forgets_it(remote: RunningServer, runvoy_home: Path) -> None:
    token = remote.token
    assert token is not None
    signed = _cli("login", "--server", remote.url + "/", stdin=token + "\n")
    assert signed.returncode == 0, signed.stderr
    assert "signed in to" in signed.stderr and "as admin (admin" in signed.stderr
    path = Path(os.environ["RUNVOY_CONFIG"]).parent / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in signed.stdout + signed.stderr
    # the next commands find it, with no RUNVOY_TOKEN
    listed = _cli("list", "--json", RUNVOY_SERVER=remote.url)
    assert listed.returncode == 0, listed.stderr
    # RUNVOY_TOKEN wins over the file
    refused = _cli("list", RUNVOY_SERVER=remote.url, RUNVOY_TOKEN=new_token())
    assert refused.returncode == 77
    # a wrong key is refused by the server and not kept; a malformed one never leaves this machine
    wrong = new_token()
    bad = _cli("login", "--server", remote.url, stdin=wrong + "\n")
    assert bad.returncode == 77 and wrong not in bad.stdout + bad.stderr
    assert stored_token(normalize_server(remote.url), path) == token
    typo = "rvk_not-a-key-but-a-secret"
    malformed = _cli("login", "--server", remote.url, stdin=typo + "\n")
    assert malformed.returncode == 125 and typo not in malformed.stderr
    out = _cli("logout", "--json", RUNVOY_SERVER=remote.url)
    assert out.returncode == 0 and '"removed": true' in out.stdout
    assert stored_token(normalize_server(remote.url), path) is None
    assert _cli("list", RUNVOY_SERVER=remote.url).returncode == 77
    assert _cli("logout", "--server", remote.url).returncode == 0
    nowhere = _cli("login", stdin=token + "\n")
    assert nowhere.returncode == 125 and "--server" in nowhere.stderr


def test_token_file_refuses_a_file_others_can_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runvoy_core.errors import ConfigError

    path = tmp_path / "tokens.json"
    save_token("http://a", new_token(), path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="other users"):
        stored_token("http://a", path)
    path.chmod(0o600)
    assert remove_token("http://a", path) and not remove_token("http://a", path)
    monkeypatch.setenv("RUNVOY_TOKEN", "from-env")
    assert resolve_token("http://a") == "from-env"
    assert resolve_token("http://a", "given") == "given"


# -- accepted forms --------------------------------------------------------------------------------------------
KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


@given(
    st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    st.text(alphabet=KEY_CHARS, min_size=43, max_size=43),
)
def test_api_key_form_accepts_every_key(key_id: str, secret: str) -> None:
    key = f"rvk_{key_id}_{secret}"
    assert inputs.API_KEY.parse(f"  {key}\n") == key


@given(st.text(max_size=120))
def test_api_key_form_never_repeats_what_it_refuses(value: str) -> None:
    try:
        inputs.API_KEY.parse(value)
    except ValueError as exc:
        assert str(exc) == "this is not a runvoy API key"


@given(
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
    st.one_of(st.none(), st.integers(1, 65535)),
    st.from_regex(r"(/[a-z0-9]{1,8}){0,3}", fullmatch=True),
)
def test_server_url_form_accepts_urls_and_normalizes_them(
    scheme: str, host: str, port: int | None, path: str
) -> None:
    url = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
    assert inputs.SERVER_URL.parse(url + "/") == url
    default = 443 if scheme == "https" else 80
    shown = "" if port in (None, default) else f":{port}"
    assert normalize_server(f"{scheme}://{host.upper()}{'' if port is None else f':{port}'}{path}/") == (
        f"{scheme}://{host}{shown}{path}"
    )


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_server_url_form_refuses_anything_else_cleanly(value: str) -> None:
    try:
        parsed = inputs.SERVER_URL.parse(value)
    except ValueError:
        return
    assert parsed.startswith(("http://", "https://")) and len(parsed) <= inputs.MAX_SERVER_URL_CHARS
    assert "@" not in parsed.split("/")[2] and "?" not in parsed and "#" not in parsed


@given(st.lists(st.tuples(st.sampled_from(sse.EVENT_NAMES), st.text()), max_size=20))
def test_sse_round_trip(events: list[tuple[str, str]]) -> None:
    stream = b"".join(sse.encode(name, data) for name, data in events) + sse.KEEPALIVE
    lines = stream.splitlines(keepends=True)
    expected = [(n, d.replace("\r\n", "\n").replace("\r", "\n")) for n, d in events]
    assert [(e.name, e.data) for e in sse.read_events(lines)] == expected


def test_sse_reader_drops_a_cut_off_event() -> None:
    whole = sse.encode("end", '{"id": "x"}')
    assert list(sse.read_events(whole[:-1].splitlines(keepends=True))) == []


def test_login_prompts_without_echo_on_a_terminal(remote: RunningServer) -> None:
    import pexpect

    assert remote.token is not None
    env = {k: v for k, v in os.environ.items() if k not in ("RUNVOY_TOKEN", "RUNVOY_SERVER")}
    child = pexpect.spawn(
        RUNVOY, ["login", "--server", remote.url], env=env, encoding="utf-8", timeout=DEADLINE
    )
    shown = io.StringIO()
    child.logfile_read = shown  # everything the terminal showed
    try:
        child.expect("API key for ")
        child.sendline(remote.token)
        child.expect("signed in to ")
        child.expect(pexpect.EOF)
        assert remote.token not in shown.getvalue() and "as admin" in shown.getvalue()
    finally:
        child.close()
    assert child.exitstatus == 0
    path = Path(os.environ["RUNVOY_CONFIG"]).parent / "tokens.json"
    assert stored_token(normalize_server(remote.url), path) == remote.token


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40) | st.from_regex(r"[0-9 ]{0,12}", fullmatch=True))
def test_runvoy_totp_is_sent_in_its_form_or_refused_unrepeated(value: str) -> None:
    """RUNVOY_TOTP: 6 digits (spaces ignored) reach the header; anything else is ValidationFailed, unrepeated."""
    from runvoy_core.errors import ValidationFailed
    from runvoy_core.remote.client import TOTP_ENV, second_factor

    if "\x00" in value:
        return  # an environment variable cannot hold NUL
    saved = os.environ.get(TOTP_ENV)
    os.environ[TOTP_ENV] = value
    try:
        try:
            sent = second_factor()
        except ValidationFailed as exc:
            # the same words whatever the value: it is never repeated
            assert str(exc) == f"{TOTP_ENV} is not a one-time password: {inputs.TOTP_CODE.text}"
            return
        if not value.strip():
            assert sent is None
        else:
            assert sent is not None and re.fullmatch(r"[0-9]{6}", sent)
            assert sent == value.replace(" ", "")
    finally:
        if saved is None:
            os.environ.pop(TOTP_ENV, None)
        else:
            os.environ[TOTP_ENV] = saved
