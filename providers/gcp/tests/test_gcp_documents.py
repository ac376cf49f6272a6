"""Documents (the ``DocumentStore`` port) as GCS objects on fake-gcs-server: what is particular to GCS (object
names, generations as versions, tombstones instead of deletes, values in the listing's metadata). The port's
behaviour itself is the kit's suite, run in test_gcp_conformance.py."""

from __future__ import annotations

import json

import pytest
from runvoy_gcp.documents import DELETED_META, VALUE_META

from runvoy_core.documents import MAX_KEY_CHARS
from runvoy_core.errors import AlreadyExists, VersionConflict
from runvoy_core.ports import ExecutionQuery
from runvoy_core.ports.capabilities import Capability
from runvoy_core.ports.optional import DocumentStore, implemented_features

EVERY_CHARACTER = [chr(c) for c in range(0x21, 0x7F)]


def test_the_store_implements_and_the_spec_declares_documents(provider) -> None:
    from runvoy_gcp import plugin

    from runvoy_core.plugins import ProviderRegistry

    registry = ProviderRegistry()
    plugin.runvoy_register_providers(registry)
    assert isinstance(provider.store, DocumentStore)
    assert Capability.DOCUMENTS in implemented_features(provider)
    assert Capability.DOCUMENTS in registry.get("gcp").capabilities


def test_a_document_is_one_object_whose_generation_is_its_version(provider) -> None:
    store = provider.store
    created = store.put_document("users", "alice", {"role": "admin"})
    data, generation = store.objects.read("documents/users/alice")
    assert data == b'{"role":"admin"}' and created.version == str(generation)
    [listed] = list(store.objects.listing("documents/users/", metadata=True))
    assert listed.metadata[VALUE_META] == '{"role":"admin"}'
    assert store.list(ExecutionQuery()).executions == []


def test_every_key_character_and_the_longest_keys_list_in_byte_order_page_by_page(provider) -> None:
    store = provider.store
    keys = [*EVERY_CHARACTER, "a" * MAX_KEY_CHARS, "~" * MAX_KEY_CHARS, "..", "a/../b", "a!", "a~"]
    for key in keys:
        assert store.put_document("ns", key, {"k": key}).key == key
        assert store.get_document("ns", key).value == {"k": key}
    seen: list[str] = []
    after = None
    while page := store.list_documents("ns", after=after, limit=7):
        seen += [d.key for d in page]
        after = page[-1].key
    assert seen == sorted(keys, key=str.encode)
    assert [d.key for d in store.list_documents("ns", prefix="a")] == [
        "a", "a!", "a/../b", "a" * MAX_KEY_CHARS, "a~"
    ]  # fmt: skip
    assert [d.key for d in store.list_documents("ns", prefix="~", after="~")] == ["~" * MAX_KEY_CHARS]
    assert store.list_documents("ns", prefix="a", after="b") == []


def test_large_and_non_ascii_values_are_read_from_the_object_not_the_metadata(provider) -> None:
    store = provider.store
    values = {"big": {"blob": "x" * 32_000}, "small": {"n": 1}, "utf8": {"name": "Zoë 日本"}}
    for key, value in values.items():
        store.put_document("users", key, value)
    listed = {
        entry.name: entry.metadata for entry in store.objects.listing("documents/users/", metadata=True)
    }
    assert (
        VALUE_META not in listed["documents/users/big"] and VALUE_META not in listed["documents/users/utf8"]
    )
    page = store.list_documents("users")
    assert {d.key: d.value for d in page} == values
    assert {d.key: d.version for d in page} == {k: store.get_document("users", k).version for k in values}


def test_a_delete_leaves_a_tombstone_that_is_never_listed_and_a_create_takes_over(provider) -> None:
    store = provider.store
    first = store.put_document("keys", "k1", {"n": 1})
    for n in range(2, 6):
        store.put_document("keys", f"k{n}", {"n": n})
    store.delete_document("keys", "k1", version=first.version)
    for n in (2, 3, 4):
        store.delete_document("keys", f"k{n}", version=store.get_document("keys", f"k{n}").version)
    _, generation = store.objects.read("documents/keys/k1")
    [tombstone] = [e for e in store.objects.listing("documents/keys/k1", metadata=True)]
    assert tombstone.metadata.get(DELETED_META) == "1"
    assert store.get_document("keys", "k1") is None
    # a page of one still finds the one live document behind four tombstones
    assert [d.key for d in store.list_documents("keys", limit=1)] == ["k5"]
    with pytest.raises(VersionConflict):  # the tombstone's generation is nobody's version to delete
        store.delete_document("keys", "k1", version=first.version)
    again = store.put_document("keys", "k1", {"n": 1})
    assert int(again.version) > generation
    with pytest.raises(VersionConflict):
        store.put_document("keys", "k1", {"n": 2}, version=first.version)
    with pytest.raises(AlreadyExists):
        store.put_document("keys", "k1", {"n": 3})
    assert [d.key for d in store.list_documents("keys")] == ["k1", "k5"]


@pytest.mark.parametrize("version", ["0", "", "-1", "abc", "01", str(2**63), "\u0661"])
def test_a_version_that_is_no_generation_is_a_conflict_never_a_create(provider, version) -> None:
    store = provider.store
    with pytest.raises(VersionConflict):
        store.put_document("users", "nobody", {"n": 1}, version=version)
    with pytest.raises(VersionConflict):
        store.delete_document("users", "nobody", version=version)
    assert store.get_document("users", "nobody") is None


RACER = """
import json, sys
from runvoy_gcp.config import GcpConfig
from runvoy_gcp.provider import create_provider
from runvoy_core.errors import VersionConflict
store = create_provider(GcpConfig.model_validate(json.loads(sys.argv[1]))).store
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[2])):
    while True:
        doc = store.get_document("race", "counter")
        try:
            store.put_document("race", "counter", {"n": doc.value["n"] + 1}, version=doc.version)
            break
        except VersionConflict:
            pass
print("done", flush=True)
"""


def test_writers_in_two_processes_lose_no_update(provider, gcp_settings) -> None:
    import subprocess
    import sys

    store = provider.store
    store.put_document("race", "counter", {"n": 0})
    increments = 20
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, json.dumps(gcp_settings), str(increments)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
    for racer in racers:  # both read and write from here on, at once
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    for racer in racers:
        out, _ = racer.communicate(timeout=600)
        assert racer.returncode == 0 and out == "done\n"
    assert store.get_document("race", "counter").value == {"n": 2 * increments}
