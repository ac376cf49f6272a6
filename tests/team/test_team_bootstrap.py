"""The first admin (runvoy_core.team.bootstrap, decision 1506): made once on an empty store, whoever starts
first, however many replicas start at once; the token printed once, or taken from the environment."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runvoy_core.errors import InvalidToken, ValidationFailed
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.providers.local.store import LocalStore
from runvoy_core.team import bootstrap
from runvoy_core.team.bootstrap import ensure_bootstrap
from runvoy_core.team.keys import KeyRing, new_token
from runvoy_core.team.users import Directory
from runvoy_core.testing.memory_documents import MemoryDocumentStore


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "memory":
        yield MemoryDocumentStore()
    else:
        local = LocalStore(tmp_path / "home")
        yield local
        local.close()


def test_first_start_makes_the_admin(store: DocumentStore) -> None:
    token = ensure_bootstrap(store, None)
    assert token is not None and token.startswith("rvk_")
    caller = KeyRing(store).authenticate(token)
    assert (caller.name, caller.role, caller.team) == ("admin", "admin", "admins")
    assert ensure_bootstrap(store, None) is None  # never again
    assert [k.user for k in KeyRing(store).list()] == ["admin"]


def test_token_from_the_environment_is_stored_not_returned(store: DocumentStore) -> None:
    _, given = new_token()
    assert ensure_bootstrap(store, given) is None
    assert KeyRing(store).authenticate(given).name == "admin"
    _, other = new_token()
    assert ensure_bootstrap(store, other) is None  # bootstrapped: a later env token changes nothing
    with pytest.raises(InvalidToken):
        KeyRing(store).authenticate(other)


def test_malformed_env_token_is_refused_without_repeating_it(store: DocumentStore) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ensure_bootstrap(store, "rvk_0123456789abcdef_s3cret-but-too-short")
    assert "s3cret" not in str(caught.value) and "RUNVOY_BOOTSTRAP_TOKEN" in str(caught.value)
    assert Directory(store).is_empty()


def test_a_store_with_accounts_is_bootstrapped(store: DocumentStore) -> None:
    Directory(store).create("ada", role="admin", team="ops")
    assert ensure_bootstrap(store, None) is None
    assert Directory(store).find("admin") is None
    assert ensure_bootstrap(store, None) is None


def test_a_replica_that_died_midway_is_taken_over(store: DocumentStore) -> None:
    """The winner claimed the marker and made the user, then died before the key: a start within
    STALE_AFTER leaves it alone (the winner may still be working), a later one finishes the job."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store.put_document(
        bootstrap.NAMESPACE, bootstrap.KEY, {"state": "started", "at": now.isoformat(), "key_id": "0" * 16}
    )
    Directory(store).create("admin", role="admin", team="admins")
    assert ensure_bootstrap(store, None, clock=lambda: now + timedelta(seconds=10)) is None
    later = now + timedelta(seconds=bootstrap.STALE_AFTER + 1)
    token = ensure_bootstrap(store, None, clock=lambda: later)
    assert token is not None
    assert KeyRing(store, clock=lambda: later).authenticate(token).name == "admin"
    marker = store.get_document(bootstrap.NAMESPACE, bootstrap.KEY)
    assert marker is not None and marker.value["state"] == "done"


def test_threads_starting_at_once_make_one_admin(tmp_path: Path) -> None:
    home = tmp_path / "home"
    LocalStore(home).close()
    tokens: list[str | None] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        local = LocalStore(home)
        barrier.wait()
        tokens.append(ensure_bootstrap(local, None))
        local.close()

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    printed = [t for t in tokens if t is not None]
    assert len(tokens) == 6 and len(printed) == 1
    local = LocalStore(home)
    assert KeyRing(local).authenticate(printed[0]).name == "admin"
    assert len(KeyRing(local).list()) == 1
    local.close()


def test_processes_starting_at_once_make_one_admin(tmp_path: Path) -> None:
    """Four server processes on one SQLite store: one prints a token, the others nothing."""
    home = tmp_path / "home"
    go = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import os, time
        from pathlib import Path
        from runvoy_core.providers.local.store import LocalStore
        from runvoy_core.team.bootstrap import ensure_bootstrap
        store = LocalStore(Path({str(home)!r}))
        store.list_documents("users", limit=1)
        Path({str(tmp_path)!r}, "ready-" + str(os.getpid())).touch()
        while not Path({str(go)!r}).exists():
            time.sleep(0.001)
        print(ensure_bootstrap(store, None) or "-")
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    from runvoy_core.testing.waiting import wait_for

    wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == 4 or None, what="4 processes ready", timeout=120)
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip().splitlines()[-1])
    printed = [o for o in outputs if o != "-"]
    assert len(printed) == 1, outputs
    local = LocalStore(home)
    assert KeyRing(local).authenticate(printed[0]).role == "admin"
    local.close()
