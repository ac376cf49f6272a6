"""The lock register's compare-and-swap on Azure Table storage (Azurite) and the lease protocol over it."""

from __future__ import annotations

import threading
from typing import Any

from runvoy_azure.register import name_of, row_key


def test_twenty_concurrent_creates_have_exactly_one_winner(provider: Any) -> None:
    register = provider.locks
    results: list[bool] = []
    barrier = threading.Barrier(20)

    def create(n: int) -> None:
        barrier.wait()
        results.append(register.create_if_absent("nightly/etl", {"owner": n}))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    value = register.read("nightly/etl")
    assert value is not None and value.value["owner"] in range(20)


def test_replace_only_from_the_current_version(provider: Any) -> None:
    register = provider.locks
    assert register.create_if_absent("ci", {"fence": 1})
    seen = register.read("ci")
    assert register.replace_if_version("ci", {"fence": 2}, seen.version)
    assert not register.replace_if_version("ci", {"fence": 3}, seen.version)  # stale ETag -> 412
    now = register.read("ci")
    assert now.value == {"fence": 2} and now.version != seen.version
    assert not register.replace_if_version("missing", {"fence": 1}, now.version)
    assert register.read("missing") is None
    assert [name for name, _ in register.list()] == ["ci"]


def test_lock_names_with_slashes_round_trip(provider: Any) -> None:
    assert name_of(row_key("a/b#c?d%e\\f")) == "a/b#c?d%e\\f"
    provider.locks.create_if_absent("team/job:nightly", {"x": 1})
    assert [name for name, _ in provider.locks.list()] == ["team/job:nightly"]


def test_the_lease_protocol_over_table_storage(provider: Any) -> None:
    from runvoy_core.errors import LockHeld
    from runvoy_core.locks import LockManager
    from runvoy_core.models import LockHolder

    manager = LockManager(provider.locks, lease=30.0)
    first = manager.acquire("deploy", LockHolder(execution_id="e1"))
    assert first.fence == 1
    try:
        manager.acquire("deploy", LockHolder(execution_id="e2"))
        raise AssertionError("a held lock was acquired twice")
    except LockHeld as exc:
        assert "e1" in exc.message
    assert first.renew()
    first.release()
    second = manager.acquire("deploy", LockHolder(execution_id="e3"))
    assert second.fence == 2
    second.release()
