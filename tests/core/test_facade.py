"""``Runvoy`` is a facade over a backend (decisions 1511-1512): without a server a LocalBackend, with one the
backend a plugin serves through the ``runvoy_backends`` hook, and every CLI command goes through it.

The plugin here is a real installed distribution (a ``.dist-info`` with an entry point, found by the same
discovery as any provider's): its backend forwards each call to a LocalBackend and writes the operation's
name to a file, so a test sees which operation a command used without any stand-in for runvoy's own classes.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core.api import Runvoy
from runvoy_core.backend import Backend
from runvoy_core.config import Settings, load_settings
from runvoy_core.engine import LocalBackend
from runvoy_core.errors import ConfigError, LockHeld, RunvoyError, ValidationFailed, VersionConflict
from runvoy_core.records import RecordError

RUNVOY = str(Path(sys.executable).parent / "runvoy")
SERVER = "https://team.example:8421/runvoy"

PLUGIN = """
import os
from runvoy_core.engine import LocalBackend
from runvoy_core.plugins import hookimpl


class Recording:
    '''Forwards every operation to a LocalBackend and writes its name (and the token given) to a file.'''

    def __init__(self, url, token, inner):
        self.url, self.token, self.inner = url, token, inner
        self.provider_name = inner.provider_name

    def __getattr__(self, name):
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            with open(os.environ["FACADE_LOG"], "a") as log:
                log.write(f"{name} {self.url} {self.token}\\n")
            return target(*args, **kwargs)

        return call


def factory(url, *, token, settings, provider, config):
    return Recording(url, token, LocalBackend(provider, settings=settings, **config))


@hookimpl
def runvoy_backends():
    return {"https": factory}
"""


@pytest.fixture
def served(runvoy_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The recording plugin installed (for subprocesses), and the file its backend writes to."""
    site = tmp_path / "site"
    dist = site / "facadeplugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: facadeplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[runvoy]\nfacadeplugin = facadeplugin_module\n")
    (site / "facadeplugin_module.py").write_text(PLUGIN)
    log = tmp_path / "operations.log"
    log.touch()
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("FACADE_LOG", str(log))
    monkeypatch.delenv("RUNVOY_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    # runvoy's own remote client serves http(s) too: this plugin is the only one here
    monkeypatch.setenv("RUNVOY_PLUGINS_BLOCK", "remote")
    return log


def runvoy(
    *args: str, server: str | None = SERVER, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if server is not None:
        env["RUNVOY_SERVER"] = server
    return subprocess.run(
        [RUNVOY, *args], capture_output=True, text=True, env=env, timeout=120, check=False, input=stdin
    )


def operations(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()]


# -- the shape -------------------------------------------------------------------------------------------------


def _operations() -> list[str]:
    return sorted(
        name
        for name, member in vars(Backend).items()
        if callable(member) and not name.startswith("_") and name not in ("close",)
    )


def test_the_protocol_holds_every_operation_the_cli_needs() -> None:
    wanted = {
        "run_playbook",
        "submit_playbook",
        "list_locks",
        "lock_status",
        "release_lock",
        "estimate_cost",
        "cost_report",
        "list_budgets",
        "show_budget",
        "set_budget",
        "remove_budget",
        "list_providers",
        "log_page",
    }
    assert wanted <= set(_operations())


@pytest.mark.parametrize("name", _operations())
def test_runvoy_and_the_local_backend_offer_each_operation_with_its_parameters(name: str) -> None:
    expected = inspect.signature(getattr(Backend, name))
    for implementation in (Runvoy, LocalBackend):
        found = inspect.signature(getattr(implementation, name))
        assert [(p.name, p.kind, p.default) for p in found.parameters.values()] == [
            (p.name, p.kind, p.default) for p in expected.parameters.values()
        ], f"{implementation.__name__}.{name}"


def test_without_a_server_the_backend_is_local(runvoy_home: Path) -> None:
    with Runvoy() as rv:
        assert isinstance(rv.backend, LocalBackend) and isinstance(rv.backend, Backend)
        assert rv.server is None and rv.provider_name == "local"
        assert rv.run("exit 3").exit_code == 3
        assert rv.store is rv.backend.store and rv.spec.name == "local"


def test_a_server_no_plugin_serves_is_a_clear_config_error(
    runvoy_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNVOY_PLUGINS_BLOCK", "remote")  # runvoy's own remote client serves http(s)
    script = textwrap.dedent(
        """
        from runvoy_core import Runvoy
        from runvoy_core.errors import ConfigError

        try:
            Runvoy(server="https://nobody-serves.example")
        except ConfigError as exc:
            print(exc.message)
            print(exc.hint)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "no installed plugin serves the server https://nobody-serves.example" in done.stdout
    assert "RUNVOY_SERVER" in done.stdout


def test_the_cli_says_so_too_with_exit_125(runvoy_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNVOY_PLUGINS_BLOCK", "remote")
    done = runvoy("list", server="https://nobody-serves.example")
    assert done.returncode == 125, done.stderr
    assert "no installed plugin serves the server https://nobody-serves.example" in done.stderr
    assert "Traceback" not in done.stderr


# -- the config key ---------------------------------------------------------------------------------------------

HOSTS = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}\Z")
URLS = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https"]),
    HOSTS,
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")),
    st.one_of(st.just(""), st.just("/"), st.from_regex(r"\A(/[a-z0-9._~-]{1,12}){1,3}/?\Z")),
)


@settings(max_examples=60, deadline=None)
@given(url=URLS)
def test_a_server_url_in_its_form_is_accepted_without_its_trailing_slash(url: str) -> None:
    assert Settings.model_validate({"server": url}).server == url.rstrip("/")


@settings(max_examples=150, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=60),
        URLS.map(lambda u: u.replace("://", "://user:pw@", 1)),
        URLS.map(lambda u: u + "?token=x"),
        URLS.map(lambda u: u + "#frag"),
        URLS.map(lambda u: u.replace("http", "ftp", 1)),
        URLS.map(lambda u: u + "/" + "a" * 2100),
        st.integers(),
    )
)
def test_any_other_server_value_is_refused_naming_the_key(value: Any) -> None:
    try:
        accepted = Settings.model_validate({"server": value}).server
    except RecordError as exc:
        assert "server" in str(exc)
        return
    # what is accepted is an http(s) URL without credentials, query or fragment, or nothing at all
    from urllib.parse import urlsplit

    if accepted is None:
        assert value == ""
        return
    parts = urlsplit(accepted)
    assert parts.scheme in ("http", "https") and parts.hostname
    assert not (parts.username or parts.password or parts.query or parts.fragment)
    assert len(accepted) <= 2048


def test_the_key_comes_from_the_profile_and_the_environment(
    runvoy_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Path(os.environ["RUNVOY_CONFIG"])
    config.write_text('[profiles.team]\nserver = "https://team.example/"\n')
    assert load_settings(profile="team").server == "https://team.example"
    assert load_settings().server is None
    monkeypatch.setenv("RUNVOY_SERVER", "http://127.0.0.1:8421")
    assert load_settings(profile="team").server == "http://127.0.0.1:8421"
    monkeypatch.setenv("RUNVOY_SERVER", "")  # empty: off, over the file's
    assert load_settings(profile="team").server is None
    monkeypatch.setenv("RUNVOY_SERVER", "ftp://team.example")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "server" in raised.value.message


def test_a_bad_server_argument_is_a_config_error(runvoy_home: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        Runvoy(server="https://user:secret@team.example")
    assert "secret" not in raised.value.message and "server" in raised.value.message


# -- through a plugin's backend -------------------------------------------------------------------------------


def test_the_python_api_reaches_the_plugins_backend(served: Path) -> None:
    script = textwrap.dedent(
        f"""
        from runvoy_core import Runvoy
        from runvoy_core.errors import RunvoyError

        rv = Runvoy(server={SERVER!r}, token="rvk_test")
        assert type(rv.backend).__name__ == "Recording", type(rv.backend)
        assert rv.run("exit 4").exit_code == 4
        for attribute in ("provider", "store", "register", "runner", "spec", "plugins"):
            try:
                getattr(rv, attribute)
            except RunvoyError as exc:
                assert {SERVER!r} in exc.message and attribute in exc.message, exc.message
            else:
                raise AssertionError(attribute)
        local = Runvoy.local()
        assert local.server is None and local.provider.name == "local"
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert served.read_text().splitlines() == [f"run {SERVER} rvk_test"]


def test_every_command_goes_through_the_backend(served: Path, tmp_path: Path) -> None:
    def ran(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = runvoy(*args)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        return done

    def used(*args: str, operation: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        before = len(operations(served))
        done = ran(*args, code=code)
        assert operation in operations(served)[before:], (args, operations(served)[before:])
        return done

    assert used("run", "echo through", operation="run").stdout == "through\n"
    execution_id = used("run", "--detach", "echo detached", operation="submit").stdout.strip()
    used("wait", execution_id, operation="wait")
    used("status", execution_id, operation="status")
    assert used("logs", execution_id, operation="copy_logs").stdout == "detached\n"
    listed = json.loads(used("list", "--json", operation="list").stdout)
    assert execution_id in [item["id"] for item in listed]
    sleeper = used("run", "--detach", "sleep 300", operation="submit").stdout.strip()
    used("kill", sleeper, "--force", operation="kill")
    used("reconcile", "--dry-run", operation="reconcile")
    book = tmp_path / "nightly.yaml"
    book.write_text("steps:\n  - run: echo from-the-book\n")
    assert "from-the-book" in used("run", "-f", str(book), operation="run_playbook").stdout
    used("run", "-f", str(book), "--detach", operation="submit_playbook")
    used("locks", "list", "--json", operation="list_locks")
    used("locks", "status", "nothing", operation="lock_status", code=125)
    used("locks", "release", "nothing", operation="release_lock", code=125)
    used("cost", "estimate", "--provider", "local", "--json", operation="estimate_cost")
    used("cost", "report", "--json", operation="cost_report")
    used("budget", "set", "team", "--amount", "5", operation="set_budget")
    used("budget", "list", "--json", operation="list_budgets")
    used("budget", "show", "team", operation="show_budget")
    used("budget", "rm", "team", operation="remove_budget")
    assert json.loads(used("providers", "--json", operation="list_providers").stdout)["providers"]


def test_setup_init_and_config_say_they_act_on_this_machine(served: Path) -> None:
    for args in (("setup", "--dry-run"), ("config", "show"), ("config", "validate")):
        done = runvoy(*args)
        assert done.returncode == 0, done.stderr
        assert f"acts on this machine, not through the server at {SERVER}" in done.stderr, done.stderr
    assert operations(served) == []
    without = runvoy("setup", "--dry-run", server=None)
    assert "server" not in without.stderr


# -- operations of the LocalBackend ------------------------------------------------------------------------------


def test_log_pages_give_every_line_once_then_no_cursor(runvoy_home: Path) -> None:
    rv = Runvoy()
    ex = rv.run("seq 1 2500")
    lines: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = rv.log_page(ex.id, cursor=cursor, limit=1000)
        pages += 1
        lines += [event.message for event in page.events]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert lines == [str(n) for n in range(1, 2501)]
    assert pages == 4  # three full pages, then an empty one that ends it
    with pytest.raises(ValidationFailed):
        rv.log_page(ex.id, cursor="not-a-cursor")
    with pytest.raises(ValidationFailed):
        rv.log_page(ex.id, limit=0)


def test_a_log_page_of_a_run_with_no_output_yet_continues(runvoy_home: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    rv = Runvoy()
    ex = rv.submit(f"while [ ! -e {go} ]; do sleep 0.05; done; echo late")
    page = rv.log_page(ex.id)
    assert page.events == [] and page.cursor is not None
    go.touch()
    rv.wait(ex.id, timeout=120)
    seen = []
    cursor: str | None = page.cursor
    while cursor is not None:
        page = rv.log_page(ex.id, cursor=cursor)
        seen += [event.message for event in page.events]
        cursor = page.cursor
    assert seen == ["late"]


def test_a_playbook_runs_from_its_text_named_by_it_or_by_the_caller(runvoy_home: Path) -> None:
    rv = Runvoy()
    named = rv.run_playbook("name: etl\nsteps:\n  - run: exit 0\n", name="ignored")
    assert named.request.labels == {"playbook": "etl"} and named.exit_code == 0
    unnamed = rv.submit_playbook("steps:\n  - run: exit 5\n", name="from-file", labels={"team": "data"})
    assert unnamed.request.labels == {"playbook": "from-file", "team": "data"}
    assert rv.wait(unnamed.id, timeout=120).exit_code == 5
    with pytest.raises(ValidationFailed) as raised:
        rv.run_playbook("on_conflict: wait\nsteps:\n  - run: 'true'\n")
    assert "--on-conflict needs --lock NAME" in raised.value.message
    with pytest.raises(RunvoyError) as broken:
        rv.run_playbook("steps: [", source="book.yaml")
    assert "book.yaml" in broken.value.message


def test_a_lock_is_released_by_its_version_and_names_the_caller(runvoy_home: Path, tmp_path: Path) -> None:
    from runvoy_core.team.context import Caller, calling_as

    go = tmp_path / "go"
    rv = Runvoy()
    ex = rv.submit(f"while [ ! -e {go} ]; do sleep 0.05; done", lock="deploy")
    try:
        status = rv.lock_status("deploy")
        assert status["state"] == "held" and status["holder"]["execution_id"] == ex.id
        assert status["queue"] == [] and isinstance(status["version"], str)
        assert [lock["name"] for lock in rv.list_locks()] == ["deploy"]
        with pytest.raises(LockHeld):
            rv.release_lock("deploy")
        with pytest.raises(VersionConflict):
            rv.release_lock("deploy", force=True, version=status["version"] + "0")
        with calling_as(Caller(name="alice", kind="user", role="admin", team="ops")):
            released = rv.release_lock("deploy", force=True, version=status["version"])
        assert released == {
            "name": "deploy",
            "released": True,
            "fence": status["fence"],
            "message": f"force-released lock 'deploy' (was fence {status['fence']})",
        }
        after = rv.lock_status("deploy")
        assert after["state"] == "released"
        assert any(str(entry.get("by", "")).startswith("alice@") for entry in after["audit"])
        assert rv.release_lock("deploy")["released"] is False
    finally:
        go.touch()
        rv.wait(ex.id, timeout=120)


def test_budgets_and_cost_are_plain_data(runvoy_home: Path) -> None:
    rv = Runvoy()
    made = rv.set_budget("team", amount="12.50", scopes=["provider=local"], alert_at="80,100")
    assert made["created"] is True and made["budget"]["amount"] == "12.50"
    assert rv.set_budget("team", amount="20")["created"] is False
    (listed,) = rv.list_budgets()
    assert listed["name"] == "team" and listed["spent"] == "0"
    assert rv.show_budget("team")["alerted"] == []
    rv.remove_budget("team")
    assert rv.list_budgets() == []
    with pytest.raises(ValidationFailed):
        rv.set_budget("team", amount="-1")
    estimate = rv.estimate_cost(provider="local", runs=3)
    assert [row["provider"] for row in estimate["estimates"]] == ["local"] and estimate["request"][
        "runs"
    ] == 3
    with pytest.raises(ValidationFailed):
        rv.estimate_cost(cpu="a lot")
    assert rv.cost_report(since=3600)["runs"] == 0
    json.dumps([estimate, rv.cost_report(), rv.list_providers(), rv.list_budgets(), rv.list_locks()])
