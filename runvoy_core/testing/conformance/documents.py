"""The document store suite (``ports.optional.DocumentStore``, decision 1502): create-if-absent, compare-and-
swap replace and delete, listing in ascending byte order by pages, isolated namespaces, JSON round trips, the
bounds of ``runvoy_core.documents`` as hypothesis properties, and concurrent writers that lose no update.

Requires a fixture ``documents``: a DocumentStore holding no documents. Set ``provider_name`` to also check that
the provider's spec declares ``Capability.DOCUMENTS``::

    class TestAwsDocuments(DocumentsConformance):
        provider_name = "aws"

        @pytest.fixture
        def documents(self, aws_provider):
            return aws_provider.store
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_core.documents import MAX_KEY_CHARS, MAX_LIST_LIMIT, MAX_VALUE_BYTES, MAX_VALUE_DEPTH
from runvoy_core.errors import AlreadyExists, ValidationFailed, VersionConflict
from runvoy_core.ports.capabilities import Capability
from runvoy_core.ports.optional import Document, DocumentStore

NS = "conformance"

_NAMESPACE = re.compile(r"[a-z][a-z0-9-]{0,31}")
_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_CHARS}}}")
_KEY_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E)

valid_namespaces = st.from_regex(_NAMESPACE, fullmatch=True)
valid_keys = st.text(_KEY_CHARS, min_size=1, max_size=MAX_KEY_CHARS)
_not_text = st.one_of(
    st.none(), st.integers(), st.binary(max_size=8), st.lists(st.text(max_size=3), max_size=2)
)
bad_namespaces = st.one_of(
    _not_text,
    st.text(max_size=40).filter(lambda s: not _NAMESPACE.fullmatch(s)),
    # near misses: the right alphabet, too long; a digit or dash first; upper case
    st.text("abc0-", min_size=33, max_size=40).map(lambda s: "a" + s),
    st.sampled_from(["", "0abc", "-abc", "Users", "us_ers", "us ers", "users\n", "ns/x", "ünï"]),
)
bad_keys = st.one_of(
    _not_text,
    st.text(max_size=MAX_KEY_CHARS + 4).filter(lambda s: not _KEY.fullmatch(s)),
    st.text(_KEY_CHARS, min_size=MAX_KEY_CHARS + 1, max_size=MAX_KEY_CHARS + 20),
    st.sampled_from(["", " ", "a b", "tab\t", "new\nline", "del\x7f", "nul\x00", "é", "k" * 257]),
)
bad_limits = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=MAX_LIST_LIMIT + 1),
    st.booleans(),
    st.floats(),
    st.text(max_size=4),
    st.none(),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=16),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


def _nested(depth: int) -> dict[str, Any]:
    """An object whose objects and arrays nest ``depth`` levels deep (the object itself is level 1)."""
    inner: Any = 0
    for level in range(depth - 1, 0, -1):
        inner = [inner] if level % 2 else {"n": inner}
    return {"n": inner}


bad_values = st.one_of(
    # not an object at the top
    st.none(),
    st.integers(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    # not JSON inside
    st.dictionaries(st.text(max_size=4), st.sampled_from([math.nan, math.inf, -math.inf]), min_size=1),
    st.dictionaries(st.text(max_size=4), st.sampled_from([b"bytes", {1, 2}, object(), 1j]), min_size=1),
    st.dictionaries(st.one_of(st.integers(), st.none(), st.booleans()), st.integers(), min_size=1),
    st.builds(lambda k: {"outer": {k: 1}}, st.integers()),
    st.just({"s": "lone \ud800 surrogate"}),
    # too large, too deep
    st.integers(min_value=1, max_value=64).map(lambda extra: {"v": "x" * (MAX_VALUE_BYTES - 8 + extra)}),
    st.integers(min_value=MAX_VALUE_DEPTH + 1, max_value=MAX_VALUE_DEPTH + 2000).map(_nested),
)

_property = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def _value_of_size(size: int, char: str = "x") -> dict[str, Any]:
    """An object whose compact JSON encoding is ``size`` bytes: ``{"v":"…"}`` is 8 bytes plus the text's."""
    width = len(char.encode())
    count, rest = divmod(size - 8, width)
    return {"v": char * count + "y" * rest}


class DocumentsConformance:
    provider_name: str | None = None
    """The provider whose store this is: its registered spec must declare ``Capability.DOCUMENTS``."""
    writers: int = 4
    """Threads incrementing one counter at once (concurrent writers)."""
    increments: int = 25
    """Increments per writer."""
    property_examples: int = 60
    """Examples per hypothesis property (lower it for a slow emulator)."""

    # -- the port ----------------------------------------------------------------------------------------
    def test_the_store_implements_the_port(self, documents: Any) -> None:
        assert isinstance(documents, DocumentStore)

    def test_the_provider_declares_documents(self, documents: Any) -> None:
        if self.provider_name is None:
            pytest.skip("no provider_name: a store outside any provider")
        from runvoy_core.plugins.manager import get_plugins

        spec = get_plugins().registry.get(self.provider_name)
        assert spec is not None, f"provider {self.provider_name!r} is not registered by any plugin"
        # the contract suite checks the converse: a provider declaring it has a store that implements it
        assert Capability.DOCUMENTS in spec.capabilities

    # -- create, get, replace, delete --------------------------------------------------------------------
    def test_get_absent_is_none(self, documents: Any) -> None:
        assert documents.get_document(NS, "nobody") is None

    def test_create_if_absent_then_get(self, documents: Any) -> None:
        value = {"name": "alice", "roles": ["admin"], "n": 1}
        created = documents.put_document(NS, "alice", value)
        assert isinstance(created, Document)
        assert created.key == "alice" and created.value == value
        assert isinstance(created.version, str) and created.version
        got = documents.get_document(NS, "alice")
        assert got is not None
        assert (got.key, got.value, got.version) == ("alice", value, created.version)

    def test_create_of_an_existing_document_is_refused_and_changes_nothing(self, documents: Any) -> None:
        first = documents.put_document(NS, "k", {"n": 1})
        with pytest.raises(AlreadyExists):
            documents.put_document(NS, "k", {"n": 2})
        got = documents.get_document(NS, "k")
        assert got is not None and (got.value, got.version) == ({"n": 1}, first.version)

    def test_replace_with_the_current_version(self, documents: Any) -> None:
        first = documents.put_document(NS, "k", {"n": 1})
        second = documents.put_document(NS, "k", {"n": 2}, version=first.version)
        assert second.value == {"n": 2} and second.version != first.version
        third = documents.put_document(NS, "k", {"n": 3}, version=second.version)
        assert third.version not in (first.version, second.version)
        got = documents.get_document(NS, "k")
        assert got is not None and (got.value, got.version) == ({"n": 3}, third.version)

    @pytest.mark.parametrize("wrong", ["", "0", "no-such-version", "1" * 40, "\u00e9"])
    def test_replace_with_a_wrong_version_is_a_conflict(self, documents: Any, wrong: str) -> None:
        first = documents.put_document(NS, "k", {"n": 1})
        if wrong == first.version:
            wrong += "0"
        with pytest.raises(VersionConflict):
            documents.put_document(NS, "k", {"n": 2}, version=wrong)
        got = documents.get_document(NS, "k")
        assert got is not None and (got.value, got.version) == ({"n": 1}, first.version)

    def test_replace_with_a_stale_version_is_a_conflict(self, documents: Any) -> None:
        stale = documents.put_document(NS, "k", {"n": 1})
        current = documents.put_document(NS, "k", {"n": 2}, version=stale.version)
        with pytest.raises(VersionConflict):
            documents.put_document(NS, "k", {"n": 99}, version=stale.version)
        got = documents.get_document(NS, "k")
        assert got is not None and (got.value, got.version) == ({"n": 2}, current.version)

    def test_rewriting_the_same_value_changes_the_version(self, documents: Any) -> None:
        first = documents.put_document(NS, "k", {"n": 1})
        second = documents.put_document(NS, "k", {"n": 1}, version=first.version)
        assert second.version != first.version
        with pytest.raises(VersionConflict):  # no ABA
            documents.put_document(NS, "k", {"n": 1}, version=first.version)

    def test_replace_of_an_absent_document_is_a_conflict(self, documents: Any) -> None:
        other = documents.put_document(NS, "other", {"n": 1})
        with pytest.raises(VersionConflict):
            documents.put_document(NS, "ghost", {"n": 1}, version=other.version)
        assert documents.get_document(NS, "ghost") is None

    def test_delete_with_the_current_version(self, documents: Any) -> None:
        created = documents.put_document(NS, "k", {"n": 1})
        documents.put_document(NS, "kept", {"n": 2})
        assert documents.delete_document(NS, "k", version=created.version) is None
        assert documents.get_document(NS, "k") is None
        assert [d.key for d in documents.list_documents(NS)] == ["kept"]
        with pytest.raises(VersionConflict):  # gone: a second delete conflicts
            documents.delete_document(NS, "k", version=created.version)

    def test_delete_with_a_stale_version_is_a_conflict_and_keeps_the_document(self, documents: Any) -> None:
        stale = documents.put_document(NS, "k", {"n": 1})
        current = documents.put_document(NS, "k", {"n": 2}, version=stale.version)
        with pytest.raises(VersionConflict):
            documents.delete_document(NS, "k", version=stale.version)
        got = documents.get_document(NS, "k")
        assert got is not None and got.version == current.version

    def test_delete_of_an_absent_document_is_a_conflict(self, documents: Any) -> None:
        other = documents.put_document(NS, "other", {"n": 1})
        with pytest.raises(VersionConflict):
            documents.delete_document(NS, "ghost", version=other.version)
        with pytest.raises(VersionConflict):
            documents.delete_document(NS, "ghost", version="1")

    def test_a_recreated_document_never_takes_back_an_old_version(self, documents: Any) -> None:
        seen = set()
        version = documents.put_document(NS, "k", {"n": 0}).version
        for n in range(1, 4):
            seen.add(version)
            documents.delete_document(NS, "k", version=version)
            version = documents.put_document(NS, "k", {"n": n}).version
            assert version not in seen
        for old in seen:
            with pytest.raises(VersionConflict):
                documents.put_document(NS, "k", {"n": -1}, version=old)

    # -- listing -----------------------------------------------------------------------------------------
    def test_listing_is_in_ascending_byte_order_with_values_and_versions(self, documents: Any) -> None:
        keys = ["b", "a", "A", "Z", "0", "a0", "a!", "a~", "a/b", "a-b", "_", "~", "!", "aa", "a" * 256]
        versions = {k: documents.put_document(NS, k, {"key": k}).version for k in keys}
        listed = documents.list_documents(NS, limit=MAX_LIST_LIMIT)
        assert [d.key for d in listed] == sorted(keys, key=lambda k: k.encode())
        for d in listed:
            assert d.value == {"key": d.key} and d.version == versions[d.key]

    def test_listing_by_prefix(self, documents: Any) -> None:
        keys = [
            "a",
            "a!",
            "a-b",
            "a/b",
            "a~",
            "aa",
            "ab",
            "b",
            "A",
            "`",
            "users/x",
            "users/y",
            "users",
            "usersz",
        ]
        for k in keys:
            documents.put_document(NS, k, {"key": k})
        for prefix in ("a", "a/", "users/", "users", "A", "zz", "~", "a" * 256):
            listed = [d.key for d in documents.list_documents(NS, prefix=prefix)]
            assert listed == sorted(k for k in keys if k.startswith(prefix)), prefix

    @pytest.mark.parametrize("limit", [1, 2, 5, 7, 23, 24, 100])
    def test_pages_with_after_read_every_document_once(self, documents: Any, limit: int) -> None:
        inside = [f"p/{i:03d}" for i in range(23)]
        for k in [*inside, "o/1", "p", "q/1", "p0"]:
            documents.put_document(NS, k, {"key": k})
        seen: list[str] = []
        after = None
        for _ in range(100):
            page = documents.list_documents(NS, prefix="p/", after=after, limit=limit)
            # a page is full whenever more documents follow: a short page is the last one
            assert len(page) == min(limit, len(inside) - len(seen)), (after, [d.key for d in page])
            seen.extend(d.key for d in page)
            if len(page) < limit:
                break
            after = page[-1].key
        assert seen == inside

    def test_after_need_not_be_a_stored_key(self, documents: Any) -> None:
        for k in ("b1", "b2", "c1", "d1"):
            documents.put_document(NS, k, {"key": k})
        assert [d.key for d in documents.list_documents(NS, after="b")] == ["b1", "b2", "c1", "d1"]
        assert [d.key for d in documents.list_documents(NS, after="b1")] == ["b2", "c1", "d1"]
        assert [d.key for d in documents.list_documents(NS, after="b10")] == ["b2", "c1", "d1"]
        assert [d.key for d in documents.list_documents(NS, after="c")] == ["c1", "d1"]
        assert documents.list_documents(NS, after="d1") == []
        assert documents.list_documents(NS, after="~") == []
        # after below the prefix: the prefix starts the listing; after beyond it: nothing
        assert [d.key for d in documents.list_documents(NS, prefix="c", after="a")] == ["c1"]
        assert documents.list_documents(NS, prefix="b", after="c") == []
        assert [d.key for d in documents.list_documents(NS, prefix="b", after="b1")] == ["b2"]

    def test_pages_of_large_documents_are_full(self, documents: Any) -> None:
        # 40 documents of ~30 KiB: more than one page of a store that reads ~1 MB per call (DynamoDB)
        keys = [f"big/{i:02d}" for i in range(40)]
        for k in keys:
            documents.put_document(NS, k, _value_of_size(30 * 1024))
        listed = documents.list_documents(NS, prefix="big/", limit=MAX_LIST_LIMIT)
        assert [d.key for d in listed] == keys
        page = documents.list_documents(NS, prefix="big/", limit=35)
        assert [d.key for d in page] == keys[:35]
        assert all(d.value == _value_of_size(30 * 1024) for d in page)

    def test_an_empty_namespace_lists_nothing(self, documents: Any) -> None:
        assert documents.list_documents("never-written") == []
        assert documents.list_documents(NS, prefix="x") == []

    # -- namespaces --------------------------------------------------------------------------------------
    def test_namespaces_are_isolated(self, documents: Any) -> None:
        # names that share a prefix, so a store that joins namespace and key into one name cannot confuse them
        spaces = ["team", "team-a", "teama", "t", "team0"]
        versions = {ns: documents.put_document(ns, "k", {"ns": ns}).version for ns in spaces}
        documents.put_document("team", "a-k", {"ns": "team"})
        documents.put_document("team-a", "x", {"ns": "team-a"})
        for ns in spaces:
            got = documents.get_document(ns, "k")
            assert got is not None and got.value == {"ns": ns}
        assert [d.key for d in documents.list_documents("team")] == ["a-k", "k"]
        assert [d.key for d in documents.list_documents("team-a")] == ["k", "x"]
        assert [d.key for d in documents.list_documents("t")] == ["k"]
        assert [d.key for d in documents.list_documents("team", prefix="a")] == ["a-k"]
        with pytest.raises(VersionConflict):  # a version is no key to another namespace's document
            documents.put_document("teama", "k", {"n": 1}, version=versions["team"])
        documents.delete_document("team", "k", version=versions["team"])
        assert documents.get_document("team", "k") is None
        for ns in spaces[1:]:
            got = documents.get_document(ns, "k")
            assert got is not None and got.version == versions[ns]

    # -- values ------------------------------------------------------------------------------------------
    def test_json_round_trip(self, documents: Any) -> None:
        value: dict[str, Any] = {
            "unicode": 'é 中文 🎉 עברית \u0000 \n\t"\\/ \u2028',
            "é🎉": "a key that is not ASCII",
            "": "the empty key",
            "nested": {"list": [1, [2, [3, {"deep": None}]], {}, []], "flag": True, "off": False},
            "ints": [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64],
            "floats": [1.5, -0.25, 1e-300, 1.7976931348623157e308, 5e-324, 0.1, 3.0],
            "none": None,
            "empty": {},
        }
        created = documents.put_document(NS, "json", value)
        assert created.value == value
        got = documents.get_document(NS, "json")
        assert got is not None and got.value == value
        assert [type(x) for x in got.value["ints"]] == [int] * len(value["ints"])
        assert [type(x) for x in got.value["floats"]] == [float] * len(value["floats"])
        (listed,) = documents.list_documents(NS, prefix="json")
        assert listed.value == value

    def test_a_tuple_is_stored_as_a_list(self, documents: Any) -> None:
        created = documents.put_document(NS, "t", {"pair": (1, "a")})
        assert created.value == {"pair": [1, "a"]}
        got = documents.get_document(NS, "t")
        assert got is not None and got.value == {"pair": [1, "a"]}

    @pytest.mark.parametrize("char", ["x", "\u00e9", "\u4e2d", "\U0001f389"])
    def test_a_value_of_exactly_the_bound_is_stored_and_one_byte_more_refused(
        self, documents: Any, char: str
    ) -> None:
        largest = _value_of_size(MAX_VALUE_BYTES, char)
        created = documents.put_document(NS, "big", largest)
        got = documents.get_document(NS, "big")
        assert got is not None and got.value == largest
        with pytest.raises(ValidationFailed):
            documents.put_document(
                NS, "big", _value_of_size(MAX_VALUE_BYTES + 1, char), version=created.version
            )
        with pytest.raises(ValidationFailed):
            documents.put_document(NS, "bigger", _value_of_size(MAX_VALUE_BYTES + 1, char))
        got = documents.get_document(NS, "big")
        assert got is not None and got.version == created.version
        assert documents.get_document(NS, "bigger") is None

    def test_a_value_nested_to_the_bound_is_stored_and_one_level_more_refused(self, documents: Any) -> None:
        deepest = _nested(MAX_VALUE_DEPTH)
        documents.put_document(NS, "deep", deepest)
        got = documents.get_document(NS, "deep")
        assert got is not None and got.value == deepest
        with pytest.raises(ValidationFailed):
            documents.put_document(NS, "deeper", _nested(MAX_VALUE_DEPTH + 1))
        assert documents.get_document(NS, "deeper") is None

    def test_the_longest_key_and_every_key_character(self, documents: Any) -> None:
        every = "".join(chr(c) for c in range(0x21, 0x7F))
        for key in (every, "k" * MAX_KEY_CHARS, "~" * MAX_KEY_CHARS, "!"):
            created = documents.put_document(NS, key, {"key": key})
            got = documents.get_document(NS, key)
            assert got is not None and got.value == {"key": key}
            documents.delete_document(NS, key, version=created.version)
        assert documents.list_documents(NS) == []

    # -- bounds (hypothesis) -----------------------------------------------------------------------------
    def _settings(self) -> settings:
        return settings(_property, max_examples=self.property_examples)

    def test_any_valid_object_round_trips(self, documents: Any) -> None:
        @self._settings()
        @given(namespace=valid_namespaces, key=valid_keys, value=json_objects)
        def check(namespace: str, key: str, value: dict[str, Any]) -> None:
            created = documents.put_document(namespace, key, value)
            try:
                assert created.value == value
                got = documents.get_document(namespace, key)
                assert got is not None and got.value == value and got.version == created.version
                listed = documents.list_documents(namespace, prefix=key, limit=1)
                assert [(d.key, d.value) for d in listed] == [(key, value)]
            finally:
                documents.delete_document(namespace, key, version=created.version)

        check()

    def test_a_bad_namespace_is_refused_by_every_method(self, documents: Any) -> None:
        @self._settings()
        @given(namespace=bad_namespaces)
        def check(namespace: Any) -> None:
            self._refused(lambda: documents.get_document(namespace, "k"))
            self._refused(lambda: documents.put_document(namespace, "k", {"n": 1}))
            self._refused(lambda: documents.put_document(namespace, "k", {"n": 1}, version="1"))
            self._refused(lambda: documents.delete_document(namespace, "k", version="1"))
            self._refused(lambda: documents.list_documents(namespace))

        check()

    def test_a_bad_key_is_refused_by_every_method(self, documents: Any) -> None:
        @self._settings()
        @given(key=bad_keys)
        def check(key: Any) -> None:
            self._refused(lambda: documents.get_document(NS, key))
            self._refused(lambda: documents.put_document(NS, key, {"n": 1}))
            self._refused(lambda: documents.put_document(NS, key, {"n": 1}, version="1"))
            self._refused(lambda: documents.delete_document(NS, key, version="1"))
            if key != "":  # the empty prefix lists everything
                self._refused(lambda: documents.list_documents(NS, prefix=key))
            if key is not None:  # no after: from the start
                self._refused(lambda: documents.list_documents(NS, after=key))

        check()
        assert documents.list_documents(NS) == []

    def test_a_bad_limit_is_refused(self, documents: Any) -> None:
        documents.put_document(NS, "k", {"n": 1})

        @self._settings()
        @given(limit=bad_limits)
        def check(limit: Any) -> None:
            self._refused(lambda: documents.list_documents(NS, limit=limit))

        check()
        for limit in (1, MAX_LIST_LIMIT):
            assert len(documents.list_documents(NS, limit=limit)) == 1

    def test_a_bad_value_is_refused_and_stores_nothing(self, documents: Any) -> None:
        existing = documents.put_document(NS, "existing", {"n": 1})

        @self._settings()
        @given(value=bad_values)
        def check(value: Any) -> None:
            self._refused(lambda: documents.put_document(NS, "new", value))
            self._refused(lambda: documents.put_document(NS, "existing", value, version=existing.version))

        check()
        assert documents.get_document(NS, "new") is None
        got = documents.get_document(NS, "existing")
        assert got is not None and (got.value, got.version) == ({"n": 1}, existing.version)

    @staticmethod
    def _refused(call: Any) -> None:
        # ValidationFailed and nothing else: no TypeError, no cloud error, no crash
        with pytest.raises(ValidationFailed):
            call()

    # -- concurrent writers ------------------------------------------------------------------------------
    def test_concurrent_increments_lose_no_update(self, documents: Any) -> None:
        documents.put_document(NS, "counter", {"n": 0})
        barrier = threading.Barrier(self.writers)
        errors: list[BaseException] = []
        conflicts = [0] * self.writers

        def writer(i: int) -> None:
            try:
                barrier.wait()
                for _ in range(self.increments):
                    while True:
                        current = documents.get_document(NS, "counter")
                        assert current is not None
                        try:
                            documents.put_document(
                                NS, "counter", {"n": current.value["n"] + 1}, version=current.version
                            )
                            break
                        except VersionConflict:
                            conflicts[i] += 1
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(self.writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert not [t for t in threads if t.is_alive()], "a writer is stuck"
        assert errors == []
        got = documents.get_document(NS, "counter")
        assert got is not None and got.value == {"n": self.writers * self.increments}

    def test_concurrent_creates_have_exactly_one_winner(self, documents: Any) -> None:
        barrier = threading.Barrier(self.writers * 2)
        outcomes: list[Any] = []
        guard = threading.Lock()

        def contender(i: int) -> None:
            barrier.wait()
            try:
                documents.put_document(NS, "once", {"owner": i})
                outcome: Any = i
            except AlreadyExists:
                outcome = "lost"
            except BaseException as exc:  # reported by the main thread
                outcome = exc
            with guard:
                outcomes.append(outcome)

        threads = [threading.Thread(target=contender, args=(i,)) for i in range(self.writers * 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        winners = [o for o in outcomes if isinstance(o, int)]
        assert len(outcomes) == self.writers * 2 and len(winners) == 1, outcomes
        got = documents.get_document(NS, "once")
        assert got is not None and got.value == {"owner": winners[0]}
