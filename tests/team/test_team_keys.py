"""API keys (runvoy_core.team.keys, decision 1506): the token format, create/list/revoke/rotate, expiry and
the overlap window, and ``authenticate`` refusing every bad key the same way. Secrets never appear in a repr,
a log line, an error or a listing."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_core.errors import InvalidToken, NotFound, ValidationFailed
from runvoy_core.logging import apply_now, configure_logging
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.providers.local.store import LocalStore
from runvoy_core.team.keys import (
    DEFAULT_LIFETIME,
    INVALID,
    LAST_USED_EVERY,
    NAMESPACE,
    KeyRing,
    check_token,
    new_token,
    parse_token,
)
from runvoy_core.team.users import Directory
from runvoy_core.testing.memory_documents import MemoryDocumentStore

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "memory":
        yield MemoryDocumentStore()
    else:
        local = LocalStore(tmp_path / "home")
        yield local
        local.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The log lines runvoy really writes (JSON on stderr, every level), through its own processors."""
    configure_logging("json", "debug")
    apply_now()
    capsys.readouterr()

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    try:
        yield read
    finally:
        configure_logging()


@pytest.fixture
def ring(store: DocumentStore, clock: Clock) -> KeyRing:
    directory = Directory(store, clock=clock)
    directory.create("alice", role="operator", team="data")
    directory.create("ci-bot", role="viewer", team="web", kind="service")
    return KeyRing(store, directory=directory, clock=clock)


def test_token_format() -> None:
    key_id, token = new_token()
    assert re.fullmatch(r"rvk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", token)
    assert token.startswith(f"rvk_{key_id}_")
    assert parse_token(token) == key_id
    assert len({new_token()[1] for _ in range(50)}) == 50


def test_create_stores_only_the_hash(ring: KeyRing, store: DocumentStore, clock: Clock) -> None:
    made = ring.create("alice", name="laptop", created_by="admin")
    assert made.key.user == "alice" and made.key.name == "laptop" and made.key.created_by == "admin"
    assert made.key.expires_at == clock.now + timedelta(seconds=DEFAULT_LIFETIME)
    doc = store.get_document(NAMESPACE, made.key.id)
    assert doc is not None
    assert doc.value["hash"] == hashlib.sha256(made.token.encode()).hexdigest()
    stored = json.dumps(doc.value)
    assert made.token not in stored and made.token[21:] not in stored


def test_listing_shows_neither_secret_nor_hash(ring: KeyRing) -> None:
    made = ring.create("alice")
    ring.create("ci-bot")
    listed = ring.list()
    assert {k.user for k in listed} == {"alice", "ci-bot"}
    assert [k.id for k in ring.list(user="alice")] == [made.key.id]
    text = json.dumps([k.model_dump(mode="json") for k in listed])
    assert made.token[21:] not in text and "hash" not in text
    assert hashlib.sha256(made.token.encode()).hexdigest() not in text
    assert ring.show(made.key.id) == made.key


def test_secret_never_in_repr_logs_or_errors(ring: KeyRing, logs: Callable[[], list[dict[str, Any]]]) -> None:
    made = ring.create("alice")
    ring.authenticate(made.token)
    wrong = made.token[:-1] + ("A" if made.token[-1] != "A" else "B")
    with pytest.raises(InvalidToken) as caught:
        ring.authenticate(wrong)
    rotated = ring.rotate(made.key.id)
    ring.revoke(made.key.id)
    with pytest.raises(InvalidToken) as caught_revoked:
        ring.authenticate(made.token)
    lines = logs()
    assert [e["event"] for e in lines] == [
        "team.key_created",
        "team.auth_refused",
        "team.key_created",
        "team.key_rotated",
        "team.key_revoked",
        "team.auth_refused",
    ]
    secret = made.token[21:]
    texts = [repr(made), str(made), repr(made.key), json.dumps(lines), str(caught.value), repr(caught.value)]
    texts += [json.dumps(caught.value.to_dict()), str(caught_revoked.value), repr(rotated)]
    for text in texts:
        assert secret not in text and wrong[21:] not in text and rotated.token[21:] not in text
    assert "***" in repr(made)


def test_authenticate(ring: KeyRing) -> None:
    made = ring.create("ci-bot")
    caller = ring.authenticate(made.token)
    assert (caller.name, caller.kind, caller.role, caller.team, caller.key_id) == (
        "ci-bot",
        "service",
        "viewer",
        "web",
        made.key.id,
    )
    assert not caller.second_factor


def _refused(ring: KeyRing, token: object) -> InvalidToken:
    with pytest.raises(InvalidToken) as caught:
        ring.authenticate(token)
    assert caught.value.message == INVALID
    assert caught.value.details == {}
    return caught.value


def test_every_bad_key_is_refused_the_same_way(ring: KeyRing, clock: Clock) -> None:
    made = ring.create("alice", expires_in=2 * 3600)
    key_id = made.key.id
    unknown = "rvk_" + ("0" * 16 if key_id != "0" * 16 else "1" * 16) + made.token[20:]
    wrong_secret = made.token[:21] + ("x" if made.token[21] != "x" else "y") + made.token[22:]
    errors = [
        _refused(ring, token)
        for token in (
            "",
            "rvk_",
            made.token + "x",
            made.token[:-1],
            made.token.upper(),
            " " + made.token,
            unknown,
            wrong_secret,
            None,
            12,
            b"rvk_",
        )
    ]
    assert {(e.message, e.hint) for e in errors} == {(INVALID, InvalidToken.default_hint)}
    ring.authenticate(made.token)  # still good
    clock.advance(2 * 3600)
    _refused(ring, made.token)  # expired


def test_disabled_user_is_refused_and_enabled_again(ring: KeyRing) -> None:
    made = ring.create("alice")
    ring.directory.disable("alice")
    _refused(ring, made.token)
    ring.directory.enable("alice")
    assert ring.authenticate(made.token).name == "alice"


def test_revoke_is_seen_by_every_replica(store: DocumentStore, ring: KeyRing, clock: Clock) -> None:
    """Two KeyRings over one store (two server replicas): a revoke on one is refused by the other at once,
    although the other authenticated the key a moment before (nothing is cached)."""
    other = KeyRing(store, clock=clock)
    made = ring.create("alice")
    assert other.authenticate(made.token).name == "alice"
    assert ring.revoke(made.key.id).revoked_at == clock.now
    _refused(other, made.token)
    _refused(ring, made.token)
    assert ring.show(made.key.id).state(clock.now) == "revoked"
    assert ring.revoke(made.key.id).revoked_at == clock.now  # again: unchanged


def test_last_used_is_written_at_most_once_a_minute(
    ring: KeyRing, store: DocumentStore, clock: Clock
) -> None:
    made = ring.create("alice")
    assert made.key.last_used_at is None
    versions = []
    for _ in range(5):
        ring.authenticate(made.token)
        doc = store.get_document(NAMESPACE, made.key.id)
        assert doc is not None
        versions.append(doc.version)
        clock.advance(LAST_USED_EVERY / 5 - 1)
    assert len(set(versions)) == 1  # one write in the first minute
    assert ring.show(made.key.id).last_used_at == datetime(2026, 1, 1, tzinfo=UTC)
    clock.advance(LAST_USED_EVERY)
    ring.authenticate(made.token)
    assert ring.show(made.key.id).last_used_at == clock.now


def test_rotate_keeps_the_old_key_for_the_overlap(ring: KeyRing, clock: Clock) -> None:
    old = ring.create("alice", name="ci")
    new = ring.rotate(old.key.id, overlap=3600)
    assert new.key.user == "alice" and new.key.name == "ci" and new.key.id != old.key.id
    shown = ring.show(old.key.id)
    assert shown.replaced_by == new.key.id
    assert shown.expires_at == clock.now + timedelta(seconds=3600)
    clock.advance(3599)
    assert ring.authenticate(old.token).key_id == old.key.id
    assert ring.authenticate(new.token).key_id == new.key.id
    clock.advance(1)
    _refused(ring, old.token)
    assert ring.authenticate(new.token).name == "alice"
    with pytest.raises(ValidationFailed, match="expired"):
        ring.rotate(old.key.id)


def test_rotate_twice_is_refused_and_overlap_never_extends(ring: KeyRing, clock: Clock) -> None:
    short = ring.create("alice", expires_in=7200)
    ring.rotate(short.key.id, overlap=7 * DAY)
    assert ring.show(short.key.id).expires_at == clock.now + timedelta(seconds=7200)
    with pytest.raises(ValidationFailed, match="already rotated"):
        ring.rotate(short.key.id)
    revoked = ring.create("alice")
    ring.revoke(revoked.key.id)
    with pytest.raises(ValidationFailed, match="revoked"):
        ring.rotate(revoked.key.id)


def test_unknown_keys_and_users(ring: KeyRing) -> None:
    with pytest.raises(NotFound, match="no user 'nobody'"):
        ring.create("nobody")
    for call in (ring.show, ring.revoke, ring.rotate):
        with pytest.raises(NotFound, match="no key '0123456789abcdef'"):
            call("0123456789abcdef")
    with pytest.raises(ValidationFailed, match="invalid key id"):
        ring.revoke("XYZ")


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**12), 10**12), st.text(max_size=12)
    )
)
def test_lifetime_is_bounded(value: object) -> None:
    """A lifetime is accepted only from 1 hour to 2 years (a number of seconds or a duration text)."""
    store = MemoryDocumentStore()
    clock = Clock()
    Directory(store, clock=clock).create("alice", role="viewer", team="data")
    ring = KeyRing(store, clock=clock)
    try:
        made = ring.create("alice", expires_in=value)  # type: ignore[arg-type]
    except ValidationFailed as exc:
        assert "key lifetime" in exc.message
        return
    seconds = (made.key.expires_at - clock.now).total_seconds()
    assert 3600 <= seconds <= 730 * DAY


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**9), 10**9), st.text(max_size=12)
    )
)
def test_overlap_is_bounded(value: object) -> None:
    store = MemoryDocumentStore()
    clock = Clock()
    Directory(store, clock=clock).create("alice", role="viewer", team="data")
    ring = KeyRing(store, clock=clock)
    made = ring.create("alice")
    try:
        ring.rotate(made.key.id, overlap=value)  # type: ignore[arg-type]
    except ValidationFailed as exc:
        assert "key overlap" in exc.message
        assert ring.show(made.key.id).replaced_by is None  # nothing changed
        return
    left = (ring.show(made.key.id).expires_at - clock.now).total_seconds()
    assert 60 <= left <= 7 * DAY


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=80),
        st.from_regex(r"rvk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", fullmatch=True),
        st.binary(max_size=70),
    )
)
def test_guessed_tokens_never_authenticate(token: object) -> None:
    """Any text, bytes or well-formed token that was not issued is refused with InvalidToken, nothing else."""
    store = MemoryDocumentStore()
    Directory(store).create("alice", role="admin", team="ops")
    ring = KeyRing(store)
    ring.create("alice")
    with pytest.raises(InvalidToken):
        ring.authenticate(token)


def test_check_token_never_repeats_it() -> None:
    bad = "rvk_0123456789abcdef_tooshort-secret-value"
    with pytest.raises(ValidationFailed) as caught:
        check_token(bad, "RUNVOY_BOOTSTRAP_TOKEN")
    assert "tooshort" not in str(caught.value) and "tooshort" not in caught.value.hint
    assert check_token(new_token()[1])


def test_a_created_key_logs_its_id_only(logs: Callable[[], list[dict[str, Any]]]) -> None:
    store = MemoryDocumentStore()
    Directory(store).create("alice", role="admin", team="ops")
    made = KeyRing(store).create("alice")
    [line] = logs()
    assert {k: line[k] for k in ("event", "key_id", "user", "level")} == {
        "event": "team.key_created",
        "key_id": made.key.id,
        "user": "alice",
        "level": "info",
    }
    assert made.token[21:] not in json.dumps(line)


def test_an_unreadable_key_document_is_refused_not_a_crash(ring: KeyRing, store: DocumentStore) -> None:
    made = ring.create("alice")
    doc = store.get_document(NAMESPACE, made.key.id)
    assert doc is not None
    store.put_document(NAMESPACE, made.key.id, {**doc.value, "expires_at": "soon"}, version=doc.version)
    _refused(ring, made.token)
