"""The DynamoDB lock register: create-if-absent and compare-and-swap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def test_create_if_absent_has_exactly_one_winner(data_provider) -> None:
    register = data_provider.locks
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: register.create_if_absent("nightly", {"owner": i}), range(20)))
    assert results.count(True) == 1
    entry = register.read("nightly")
    assert entry is not None and entry.version == "1" and entry.value["owner"] == results.index(True)


def test_replace_if_version_is_a_compare_and_swap(data_provider) -> None:
    register = data_provider.locks
    assert register.read("ci") is None
    assert register.create_if_absent("ci", {"state": "held", "fence": 1})
    first = register.read("ci")
    assert register.replace_if_version("ci", {"state": "released", "fence": 1}, first.version)
    assert not register.replace_if_version("ci", {"state": "held", "fence": 2}, first.version)  # stale
    second = register.read("ci")
    assert second.value == {"state": "released", "fence": 1} and second.version != first.version
    assert not register.replace_if_version("absent", {}, "1")
    assert not register.replace_if_version("ci", {}, "not-a-version")


def test_concurrent_swaps_on_one_version_have_one_winner(data_provider) -> None:
    register = data_provider.locks
    register.create_if_absent("race", {"n": 0})
    seen = register.read("race").version
    with ThreadPoolExecutor(max_workers=10) as pool:
        wins = list(pool.map(lambda i: register.replace_if_version("race", {"n": i}, seen), range(10)))
    assert wins.count(True) == 1


def test_list_returns_every_lock(data_provider) -> None:
    register = data_provider.locks
    for name in ("b", "a", "c"):
        register.create_if_absent(name, {"name": name})
    assert [name for name, _ in register.list()] == ["a", "b", "c"]
