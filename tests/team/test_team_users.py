"""The directory of users and service accounts (runvoy_core.team.users, decision 1506), on the in-process
reference store and on the local SQLite store."""

from __future__ import annotations

import string
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_core import inputs
from runvoy_core.errors import AlreadyExists, NotFound, ValidationFailed
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.providers.local.store import LocalStore
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


def test_create_show_list(store: DocumentStore) -> None:
    directory = Directory(store)
    alice = directory.create("alice", role="operator", team="data", created_by="admin")
    bot = directory.create("ci-bot", role="viewer", team="web", kind="service")
    assert directory.show("alice") == alice
    assert (alice.kind, alice.role, alice.team, alice.disabled, alice.created_by) == (
        "user",
        "operator",
        "data",
        False,
        "admin",
    )
    assert bot.kind == "service"
    assert [u.name for u in directory.list()] == ["alice", "ci-bot"]
    assert [u.name for u in directory.list(team="web")] == ["ci-bot"]
    assert not directory.is_empty()


def test_a_name_is_taken_once(store: DocumentStore) -> None:
    directory = Directory(store)
    directory.create("alice", role="operator", team="data")
    with pytest.raises(AlreadyExists, match="user 'alice' exists already"):
        directory.create("alice", role="admin", team="ops")
    assert directory.show("alice").role == "operator"


def test_unknown_user(store: DocumentStore) -> None:
    directory = Directory(store)
    assert directory.is_empty()
    with pytest.raises(NotFound, match="no user 'nobody'"):
        directory.show("nobody")
    with pytest.raises(NotFound):
        directory.disable("nobody")
    assert directory.find("Not A Name") is None


def test_disable_and_enable(store: DocumentStore) -> None:
    directory = Directory(store)
    directory.create("alice", role="operator", team="data")
    assert directory.disable("alice").disabled
    assert directory.show("alice").disabled
    assert directory.disable("alice").disabled  # again: nothing changes
    enabled = directory.enable("alice")
    assert not enabled.disabled and enabled.updated_at is not None
    assert not directory.show("alice").disabled


def test_concurrent_updates_all_land(tmp_path: Path) -> None:
    """Writers on several connections flip one account: each CAS loses or wins, none fails."""
    local = LocalStore(tmp_path / "home")
    Directory(local).create("alice", role="operator", team="data")
    errors: list[BaseException] = []

    def flip(n: int) -> None:
        try:
            directory = Directory(local)
            for i in range(20):
                (directory.disable if (i + n) % 2 else directory.enable)("alice")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    local.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Alice"),
        ("name", "1alice"),
        ("name", ""),
        ("name", "a" * 65),
        ("name", "al ice"),
        ("name", "al\x00ice"),
        ("role", "root"),
        ("role", "Admin"),
        ("team", "Data"),
        ("team", "d" * 33),
        ("team", "-data"),
        ("kind", "robot"),
    ],
)
def test_bad_values_are_refused_with_the_form(field: str, value: str) -> None:
    directory = Directory(MemoryDocumentStore())
    given = {"name": "alice", "role": "operator", "team": "data", "kind": "user", field: value}
    with pytest.raises(ValidationFailed) as caught:
        directory.create(given["name"], role=given["role"], team=given["team"], kind=given["kind"])
    assert caught.value.hint.startswith("expected ")
    assert directory.is_empty()


_NAME_CHARS = string.ascii_lowercase + string.digits + "._@-"


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=70), st.from_regex(r"[a-z][a-z0-9._@-]{0,64}", fullmatch=True)))
def test_user_name_form_property(text: str) -> None:
    """A name is accepted exactly when it is 1-64 of [a-z0-9._@-] starting with a letter; a refused one
    is refused with ValidationFailed, never another error."""
    expected = (
        1 <= len(text) <= 64 and text[0] in string.ascii_lowercase and all(c in _NAME_CHARS for c in text)
    )
    directory = Directory(MemoryDocumentStore())
    try:
        directory.create(text, role="viewer", team="data")
    except ValidationFailed:
        assert not expected
    else:
        assert expected
        assert directory.show(text).name == text


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=40), st.from_regex(r"[a-z][a-z0-9-]{0,32}", fullmatch=True)))
def test_team_form_property(text: str) -> None:
    expected = (
        1 <= len(text) <= 32
        and text[0] in string.ascii_lowercase
        and all(c in string.ascii_lowercase + string.digits + "-" for c in text)
    )
    try:
        inputs.TEAM.check(text)
    except ValueError:
        assert not expected
    else:
        assert expected


_KEY_NAME_CHARS = string.ascii_letters + string.digits + "_.:-"


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=70), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,64}", fullmatch=True)))
def test_key_name_form_property(text: str) -> None:
    expected = (
        1 <= len(text) <= 64
        and text[0] in string.ascii_letters + string.digits
        and all(c in _KEY_NAME_CHARS for c in text)
    )
    try:
        inputs.KEY_NAME.check(text)
    except ValueError:
        assert not expected
    else:
        assert expected


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=20), st.from_regex(r"[0-9a-fA-F]{15,17}", fullmatch=True)))
def test_key_id_form_property(text: str) -> None:
    expected = len(text) == 16 and all(c in "0123456789abcdef" for c in text)
    try:
        inputs.KEY_ID.check(text)
    except ValueError:
        assert not expected
    else:
        assert expected


@settings(max_examples=100)
@given(st.one_of(st.text(max_size=10), st.sampled_from(["viewer", "operator", "admin", "user", "service"])))
def test_role_and_kind_forms_property(text: str) -> None:
    for form, allowed in (
        (inputs.ROLE, {"viewer", "operator", "admin"}),
        (inputs.ACCOUNT_KIND, {"user", "service"}),
    ):
        try:
            form.check(text)
        except ValueError:
            assert text not in allowed
        else:
            assert text in allowed
