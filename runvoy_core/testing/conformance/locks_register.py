"""The lock register suite (a compare-and-swap register; the lease protocol over it is tested once in the
core). Requires a fixture ``register`` (an empty LockRegister). Starts with the canary from
reference/locks.md: 20 concurrent create-if-absent calls, exactly one winner."""

from __future__ import annotations

import threading
from typing import Any, cast

from runvoy_core.ports.locks import Versioned


class LockRegisterConformance:
    contenders: int = 20

    def test_canary_concurrent_create_has_exactly_one_winner(self, register: Any) -> None:
        barrier = threading.Barrier(self.contenders)
        results: list[tuple[int, bool]] = []
        guard = threading.Lock()

        def contender(i: int) -> None:
            barrier.wait()
            won = register.create_if_absent("canary", {"owner": i})
            with guard:
                results.append((i, won))

        threads = [threading.Thread(target=contender, args=(i,)) for i in range(self.contenders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        winners = [i for i, won in results if won]
        assert len(results) == self.contenders
        assert len(winners) == 1, results
        stored = register.read("canary")
        assert stored is not None and stored.value == {"owner": winners[0]}

    def test_read_unknown_is_none(self, register: Any) -> None:
        assert register.read("nobody") is None

    def test_read_returns_value_and_version(self, register: Any) -> None:
        value = {"state": "held", "fence": 1, "holder": {"execution_id": "abc"}, "audit": []}
        assert register.create_if_absent("job", value) is True
        got = register.read("job")
        assert isinstance(got, tuple) and isinstance(got, Versioned)
        assert got.value == value
        assert isinstance(got.version, str) and got.version

    def test_create_if_absent_does_not_overwrite(self, register: Any) -> None:
        assert register.create_if_absent("job", {"n": 1}) is True
        assert register.create_if_absent("job", {"n": 2}) is False
        got = register.read("job")
        assert got is not None and got.value == {"n": 1}

    def test_replace_with_the_current_version_writes_and_changes_the_version(self, register: Any) -> None:
        register.create_if_absent("job", {"n": 1})
        first = register.read("job")
        assert first is not None
        assert register.replace_if_version("job", {"n": 2}, first.version) is True
        second = register.read("job")
        assert second is not None and second.value == {"n": 2}
        assert second.version != first.version
        assert register.replace_if_version("job", {"n": 3}, second.version) is True
        third = register.read("job")
        assert third is not None and third.version not in (first.version, second.version)

    def test_replace_with_a_stale_version_fails_and_changes_nothing(self, register: Any) -> None:
        register.create_if_absent("job", {"n": 1})
        stale = register.read("job")
        assert stale is not None
        assert register.replace_if_version("job", {"n": 2}, stale.version) is True
        assert register.replace_if_version("job", {"n": 99}, stale.version) is False
        got = register.read("job")
        assert got is not None and got.value == {"n": 2}

    def test_writing_the_same_value_again_still_changes_the_version(self, register: Any) -> None:
        register.create_if_absent("job", {"n": 1})
        v1 = register.read("job")
        assert v1 is not None
        assert register.replace_if_version("job", {"n": 1}, v1.version)
        v2 = register.read("job")
        assert v2 is not None and v2.version != v1.version
        assert register.replace_if_version("job", {"n": 1}, v1.version) is False  # no ABA

    def test_replace_of_an_absent_name_fails(self, register: Any) -> None:
        assert register.replace_if_version("ghost", {"n": 1}, "1") is False
        assert register.read("ghost") is None

    def test_concurrent_replace_has_exactly_one_winner(self, register: Any) -> None:
        register.create_if_absent("job", {"n": 0})
        seen = register.read("job")
        assert seen is not None
        barrier = threading.Barrier(self.contenders)
        wins: list[int] = []
        guard = threading.Lock()

        def contender(i: int) -> None:
            barrier.wait()
            if register.replace_if_version("job", {"n": i}, seen.version):
                with guard:
                    wins.append(i)

        threads = [threading.Thread(target=contender, args=(i,)) for i in range(self.contenders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(wins) == 1, wins
        got = register.read("job")
        assert got is not None and got.value == {"n": wins[0]}

    def test_every_character_a_lock_or_slot_name_may_hold_round_trips(self, register: Any) -> None:
        # lock names allow _ . : / -, and slot k of lock NAME is NAME#k (runvoy_core.locks.slot_names)
        # and the queue of lock NAME keeps NAME~queue and one NAME~<n> per ticket (runvoy_core.lock_queue)
        names = [
            "etl#1",
            "etl#2",
            "db:migrate/eu-west_1.v2#10",
            "Z9",
            "a" * 120 + "#100",
            "etl~queue",
            "etl~12",
        ]
        for name in names:
            assert register.create_if_absent(name, {"name": name}) is True
        for name in names:
            got = register.read(name)
            assert got is not None and got.value == {"name": name}
            assert register.replace_if_version(name, {"name": name, "n": 1}, got.version) is True
        assert register.read("etl") is None  # a slot is not its lock
        listed = {name for name, _ in register.list()}
        assert set(names) <= listed

    def test_list_returns_every_entry_with_its_version(self, register: Any) -> None:
        for name in ("b-lock", "a-lock", "c/lock"):
            register.create_if_absent(name, {"name": name})
        listed = dict(register.list())
        assert set(listed) == {"a-lock", "b-lock", "c/lock"}
        for name, entry in listed.items():
            assert entry.value == {"name": name}
            current = register.read(name)
            assert current is not None and current.version == entry.version

    def test_list_locks_is_list_without_the_queue_entries(self, register: Any) -> None:
        """A register that lists locks only (``LockListing``, for ``runvoy locks list``) returns exactly
        ``list()`` without the lock queues' entries: every lock and slot, each with its version."""
        from runvoy_core.lock_queue import is_queue_key, queue_key, ticket_key
        from runvoy_core.ports.optional import LockListing

        if not isinstance(register, LockListing):
            return  # optional: `runvoy locks list` then filters `list()`
        listing: LockListing = register
        register = cast(Any, register)  # and a LockRegister, as every register here
        for name in ("a", "a#1", "a.b", "ab", "b", "team/x"):
            register.create_if_absent(name, {"name": name})
        for lock in ("a", "b"):
            register.create_if_absent(queue_key(lock), {"next": 3})
            for ticket in range(3):
                register.create_if_absent(ticket_key(lock, ticket), {"ticket": ticket})
        expected = {name: entry.version for name, entry in register.list() if not is_queue_key(name)}
        assert set(expected) == {"a", "a#1", "a.b", "ab", "b", "team/x"}
        assert {name: entry.version for name, entry in listing.list_locks()} == expected
