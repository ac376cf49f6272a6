"""Documents (the ``DocumentStore`` port) in the executions table on Azurite: what is particular to Table
storage (the RowKey code, ETags as versions, the entity layout). The port's behaviour itself is the kit's
suite, run in test_azure_conformance.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from runvoy_azure.documents import FORBIDDEN, key_of, row_key

from runvoy_core.documents import MAX_KEY_CHARS
from runvoy_core.errors import AlreadyExists, VersionConflict
from runvoy_core.ports import ExecutionQuery
from runvoy_core.ports.capabilities import Capability
from runvoy_core.ports.optional import DocumentStore, implemented_features

EVERY_CHARACTER = [chr(c) for c in range(0x21, 0x7F)]
keys = st.text(alphabet=st.sampled_from(EVERY_CHARACTER), min_size=1, max_size=MAX_KEY_CHARS)


@given(keys, keys)
def test_the_row_key_code_is_reversible_keeps_the_order_and_the_prefixes(a: str, b: str) -> None:
    assert key_of(row_key(a)) == a
    assert not set(row_key(a)) & set(FORBIDDEN)
    assert len(row_key(a)) <= 2 * MAX_KEY_CHARS
    assert (a < b) == (row_key(a) < row_key(b))
    assert b.startswith(a) == row_key(b).startswith(row_key(a))


def test_the_store_implements_and_the_spec_declares_documents(provider: Any) -> None:
    from runvoy_azure import plugin

    from runvoy_core.plugins import ProviderRegistry

    registry = ProviderRegistry()
    plugin.runvoy_register_providers(registry)
    assert isinstance(provider.store, DocumentStore)
    assert Capability.DOCUMENTS in implemented_features(provider)
    assert Capability.DOCUMENTS in registry.get("azure").capabilities


def test_a_document_is_one_entity_of_its_namespace_partition(provider: Any) -> None:
    store = provider.store
    created = store.put_document("users", "a/b#c?d\\e", {"role": "admin"})
    entity = store._table.get_entity("doc:users", row_key("a/b#c?d\\e"))
    assert entity["value"] == '{"role":"admin"}' and entity.metadata["etag"] == created.version
    assert store.list(ExecutionQuery()).executions == []


def test_every_key_character_and_the_longest_keys_list_in_byte_order_page_by_page(provider: Any) -> None:
    store = provider.store
    doubled = "#" * MAX_KEY_CHARS  # the longest RowKey the code makes
    keys = [*EVERY_CHARACTER, "a" * MAX_KEY_CHARS, "~" * MAX_KEY_CHARS, doubled, "a!", "a~", '"#', '#"']
    for key in keys:
        assert store.put_document("ns", key, {"k": key}).key == key
        assert store.get_document("ns", key).value == {"k": key}
    seen: list[str] = []
    after = None
    while page := store.list_documents("ns", after=after, limit=7):
        seen += [d.key for d in page]
        after = page[-1].key
    assert seen == sorted(keys, key=str.encode)
    assert [d.key for d in store.list_documents("ns", prefix="a")] == ["a", "a!", "a" * MAX_KEY_CHARS, "a~"]
    assert [d.key for d in store.list_documents("ns", prefix="~", after="~")] == ["~" * MAX_KEY_CHARS]
    assert [d.key for d in store.list_documents("ns", prefix="#")] == ["#", '#"', doubled]
    assert [d.key for d in store.list_documents("ns", prefix='"')] == ['"', '"#']
    assert store.list_documents("ns", prefix="a", after="b") == []


def test_the_largest_value_fits_one_property(provider: Any) -> None:
    store = provider.store
    # 32 KiB of UTF-8 at most: as two-byte characters, 16 Ki UTF-16 units; as ASCII 32 Ki, the property's limit
    for key, text in (("ascii", "x" * 32_750), ("utf8", "é" * 16_370)):
        created = store.put_document("audit", key, {"t": text})
        assert store.get_document("audit", key).value == {"t": text}
        assert store.put_document("audit", key, {"t": text[:10]}, version=created.version).value == {
            "t": text[:10]
        }


def test_a_deleted_document_is_gone_and_its_old_version_refused(provider: Any) -> None:
    store = provider.store
    first = store.put_document("keys", "k1", {"n": 1})
    with pytest.raises(VersionConflict):
        store.delete_document("keys", "k2", version=first.version)  # absent: a conflict, not a silent no-op
    store.delete_document("keys", "k1", version=first.version)
    assert store.get_document("keys", "k1") is None
    with pytest.raises(VersionConflict):
        store.delete_document("keys", "k1", version=first.version)
    again = store.put_document("keys", "k1", {"n": 1})
    assert again.version != first.version
    with pytest.raises(VersionConflict):
        store.put_document("keys", "k1", {"n": 2}, version=first.version)
    with pytest.raises(AlreadyExists):
        store.put_document("keys", "k1", {"n": 3})
    with pytest.raises(VersionConflict):
        store.put_document("keys", "k3", {"n": 3}, version=again.version)  # a replace never creates
    assert store.get_document("keys", "k3") is None


RACER = """
import json, sys
from runvoy_azure.provider import create_provider
from runvoy_core.errors import VersionConflict
store = create_provider(json.loads(sys.argv[1])).store
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


def test_writers_in_two_processes_lose_no_update(new_section: Any) -> None:
    import subprocess
    import sys

    from runvoy_azure.provider import create_provider

    section = new_section()
    provider = create_provider(section)
    provider.setup(dry_run=False)
    store = provider.store
    store.put_document("race", "counter", {"n": 0})
    increments = 20
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, json.dumps(section), str(increments)],
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
    provider.close()
