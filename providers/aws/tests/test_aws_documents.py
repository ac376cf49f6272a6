"""Documents (the ``DocumentStore`` port) in the executions table on moto: what is particular to DynamoDB
(item layout, sort-key bounds, pages past 1 MB, no index entries). The port's behaviour itself is the kit's
suite, run in test_aws_conformance.py."""

from __future__ import annotations

import json

import pytest

from runvoy_core.documents import MAX_KEY_CHARS
from runvoy_core.errors import AlreadyExists, VersionConflict
from runvoy_core.ports import ExecutionQuery
from runvoy_core.ports.capabilities import Capability
from runvoy_core.ports.optional import DocumentStore, implemented_features

EVERY_CHARACTER = [chr(c) for c in range(0x21, 0x7F)]


def test_the_store_implements_and_the_spec_declares_documents(data_provider) -> None:
    from runvoy_aws import plugin

    from runvoy_core.plugins import ProviderRegistry

    registry = ProviderRegistry()
    plugin.runvoy_register_providers(registry)
    assert isinstance(data_provider.store, DocumentStore)
    assert Capability.DOCUMENTS in implemented_features(data_provider)
    assert Capability.DOCUMENTS in registry.get("aws").capabilities


def test_a_document_is_one_item_of_its_namespace_partition_and_no_index_sees_it(data_provider) -> None:
    store = data_provider.store
    created = store.put_document("users", "alice", {"role": "admin"})
    db, table = data_provider.clients.client("dynamodb"), data_provider.config.executions_table
    item = db.get_item(TableName=table, Key={"pk": {"S": "doc#users"}, "sk": {"S": "alice"}})["Item"]
    assert item["value"] == {"S": '{"role":"admin"}'} and item["version"] == {"S": created.version}
    assert not {"list_pk", "status_pk", "label_pk", "id"} & item.keys()
    assert store.list(ExecutionQuery()).executions == []


def test_every_key_character_and_the_longest_keys_list_in_byte_order_page_by_page(data_provider) -> None:
    store = data_provider.store
    keys = [*EVERY_CHARACTER, "a" * MAX_KEY_CHARS, "~" * MAX_KEY_CHARS, "!" * MAX_KEY_CHARS, "a!", "a~"]
    for key in keys:
        assert store.put_document("ns", key, {"k": key}).key == key
    seen: list[str] = []
    after = None
    while page := store.list_documents("ns", after=after, limit=7):
        seen += [d.key for d in page]
        after = page[-1].key
    assert seen == sorted(keys, key=str.encode)
    assert [d.key for d in store.list_documents("ns", prefix="a")] == ["a", "a!", "a" * MAX_KEY_CHARS, "a~"]
    assert [d.key for d in store.list_documents("ns", prefix="a", after="a" * MAX_KEY_CHARS)] == ["a~"]
    assert [d.key for d in store.list_documents("ns", prefix="~", after="~")] == ["~" * MAX_KEY_CHARS]
    # an ``after`` beyond every key of the prefix, or before it
    assert store.list_documents("ns", prefix="a", after="b") == []
    assert [d.key for d in store.list_documents("ns", prefix="~", after="!")][:1] == ["~"]
    assert [d.value for d in store.list_documents("ns", prefix="#")] == [{"k": "#"}]


def test_a_listing_reads_on_past_dynamodbs_one_megabyte_pages(data_provider) -> None:
    store = data_provider.store
    big = {"blob": "x" * 32_000}
    for n in range(40):  # 40 x 32 kB: more than one 1 MB page of a Query
        store.put_document("audit", f"{n:04d}", big)
    page = store.list_documents("audit", limit=1000)
    assert [d.key for d in page] == [f"{n:04d}" for n in range(40)]
    assert all(d.value == big for d in page)


def test_a_deleted_then_recreated_document_refuses_the_old_version(data_provider) -> None:
    store = data_provider.store
    first = store.put_document("keys", "k1", {"n": 1})
    store.delete_document("keys", "k1", version=first.version)
    again = store.put_document("keys", "k1", {"n": 1})
    assert again.version != first.version
    with pytest.raises(VersionConflict):
        store.put_document("keys", "k1", {"n": 2}, version=first.version)
    with pytest.raises(VersionConflict):
        store.delete_document("keys", "k1", version=first.version)
    with pytest.raises(AlreadyExists):
        store.put_document("keys", "k1", {"n": 3})
    assert store.get_document("keys", "k1").value == {"n": 1}


RACER = """
import json, sys
from runvoy_aws.provider import create_provider
from runvoy_core.errors import VersionConflict
store = create_provider(json.loads(sys.argv[1]), None).store
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


def test_writers_in_two_processes_lose_no_update(data_provider, moto) -> None:
    import subprocess
    import sys

    from aws_test_tools import config_dict

    store = data_provider.store
    store.put_document("race", "counter", {"n": 0})
    increments = 20
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, json.dumps(config_dict(moto)), str(increments)],
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
