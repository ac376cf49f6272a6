"""Roles and policies (runvoy_core.team.roles, runvoy_core.team.policy, decision 1507): the one ``decide``
function, every role x action, team ownership, policy matching, and the bounds of a policy's fields."""

from __future__ import annotations

import fnmatch
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core import inputs
from runvoy_core.errors import NotFound, ValidationFailed
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.providers.local.store import LocalStore
from runvoy_core.team import roles
from runvoy_core.team.context import ROLES, Caller
from runvoy_core.team.policy import Policy, PolicyBook, Target, check_policy, decide
from runvoy_core.testing.memory_documents import MemoryDocumentStore

VIEWER = Caller("vera", "user", "viewer", "data")
OPERATOR = Caller("otto", "user", "operator", "data")
ADMIN = Caller("ada", "user", "admin", "ops")
BY_ROLE = {"viewer": VIEWER, "operator": OPERATOR, "admin": ADMIN}


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "memory":
        yield MemoryDocumentStore()
    else:
        local = LocalStore(tmp_path / "home")
        yield local
        local.close()


def test_roles_are_the_documented_ones() -> None:
    assert tuple(roles.GRANTS) == ROLES
    assert roles.VIEWER_ACTIONS < roles.OPERATOR_ACTIONS < roles.ALL_ACTIONS
    assert all(a.endswith(".read") or a in {"whoami", "keys.self"} for a in roles.VIEWER_ACTIONS)
    assert roles.ADMIN_ONLY == roles.ALL_ACTIONS - roles.OPERATOR_ACTIONS


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(roles.ALL_ACTIONS))
def test_every_role_and_action(role: str, action: str) -> None:
    caller = BY_ROLE[role]
    expected = {
        "viewer": action in roles.VIEWER_ACTIONS,
        "operator": action in roles.OPERATOR_ACTIONS,
        "admin": True,
    }[role]
    decision = decide(caller, action)
    assert decision.allowed is expected, decision.reason
    assert bool(decision) is expected
    if not expected:
        assert decision.reason == f"role {role} does not allow {action}"


def test_unknown_role_or_action_is_denied() -> None:
    assert not decide(Caller("x", "user", "root", "data"), roles.RUNS_READ)
    assert not decide(ADMIN, "runs.everything")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("team", ["data", "web", ""])
def test_other_teams_resources(role: str, team: str) -> None:
    """Only an admin acts on another team's resource, or on one of no team ("")."""
    caller = BY_ROLE[role]
    decision = decide(caller, roles.RUNS_READ, team=team)
    assert decision.allowed is (role == "admin" or team == caller.team), decision.reason


def _target(**kw: object) -> Target:
    base: dict[str, object] = {"provider": "local"}
    base.update(kw)
    return Target(**base)  # type: ignore[arg-type]


def test_no_policy_means_anything_goes() -> None:
    decision = decide(OPERATOR, roles.RUNS_START, target=_target(lock="x", image="alpine"), policies=[])
    assert decision.allowed and "no policy applies to team data" in decision.reason
    other_team_only = [Policy(name="web-only", teams=["web"], locks=["none-*"])]
    assert decide(OPERATOR, roles.RUNS_START, target=_target(lock="x"), policies=other_team_only)


def test_policies_narrow_operators_only() -> None:
    policies = [
        Policy(name="etl", teams=["data"], locks=["etl-*"], images=["ghcr.io/acme/*"], providers=["aws"])
    ]
    good = _target(provider="aws", lock="etl-1", image="ghcr.io/acme/etl:1")
    assert decide(OPERATOR, roles.RUNS_START, target=good, policies=policies).reason == "policy etl allows it"
    cases = {
        "provider 'local'": _target(provider="local", lock="etl-1", image="ghcr.io/acme/etl:1"),
        "lock 'prod'": _target(provider="aws", lock="prod", image="ghcr.io/acme/etl:1"),
        "lock (none)": _target(provider="aws", image="ghcr.io/acme/etl:1"),
        "image 'alpine'": _target(provider="aws", lock="etl-1", image="alpine"),
    }
    for why, target in cases.items():
        decision = decide(OPERATOR, roles.RUNS_START, target=target, policies=policies)
        assert not decision.allowed
        assert decision.reason.startswith("no policy of team data allows it (policy etl: " + why), (
            decision.reason
        )
        assert decide(ADMIN, roles.RUNS_START, target=target, policies=policies)  # admins: never narrowed
        assert not decide(VIEWER, roles.RUNS_START, target=target, policies=[])


def test_any_applying_policy_allows() -> None:
    policies = [
        Policy(name="a-locks", teams=["d*"], locks=["a-*"]),
        Policy(name="b-locks", teams=["data"], locks=["b-*"]),
        Policy(name="web", teams=["web"]),
    ]
    assert decide(OPERATOR, roles.RUNS_START, target=_target(lock="b-1"), policies=policies).reason == (
        "policy b-locks allows it"
    )
    denied = decide(OPERATOR, roles.RUNS_START, target=_target(lock="c-1"), policies=policies)
    assert "policy a-locks: lock 'c-1'" in denied.reason and "policy b-locks: lock 'c-1'" in denied.reason
    assert "policy web" not in denied.reason


def test_actions_playbooks_and_labels() -> None:
    policies = [
        Policy(name="books", teams=["*"], actions=["playbooks.run"], playbooks=["nightly-*"]),
        Policy(name="labelled", actions=["runs.start"], labels=["env=dev", "owner=*"]),
    ]
    book = _target(playbook="nightly-etl")
    assert decide(OPERATOR, roles.PLAYBOOKS_RUN, target=book, policies=policies)
    assert not decide(OPERATOR, roles.PLAYBOOKS_RUN, target=_target(playbook="adhoc"), policies=policies)
    assert decide(
        OPERATOR, roles.RUNS_START, target=_target(labels={"env": "dev", "owner": "x"}), policies=policies
    )
    denied = decide(OPERATOR, roles.RUNS_START, target=_target(labels={"env": "prod"}), policies=policies)
    assert "label env='prod' matches none of env=dev, owner=*" in denied.reason
    assert decide(
        OPERATOR, roles.RUNS_START, target=_target(), policies=policies
    )  # no labels: nothing to refuse


def test_reasons_are_bounded() -> None:
    policies = [Policy(name=f"p{i}", locks=[f"l{i}"]) for i in range(40)]
    denied = decide(OPERATOR, roles.RUNS_START, target=_target(lock="zzz"), policies=policies)
    assert not denied.allowed and denied.reason.endswith("; ...)") and denied.reason.count("policy p") == 5


def test_policy_book(store: DocumentStore) -> None:
    book = PolicyBook(store)
    made = book.set({"name": "etl", "teams": ["data"], "locks": ["etl-*"]}, updated_by="ada")
    assert made.updated_by == "ada" and made.images == ["*"]
    assert book.show("etl") == made
    replaced = book.set(Policy(name="etl", teams=["data", "web"]))
    assert book.show("etl").teams == ["data", "web"] and replaced.locks == ["*"]
    book.set({"name": "aaa"})
    assert [p.name for p in book.list()] == ["aaa", "etl"]
    assert book.remove("etl").teams == ["data", "web"]
    with pytest.raises(NotFound, match="no policy 'etl'"):
        book.show("etl")
    with pytest.raises(NotFound):
        book.remove("etl")


@pytest.mark.parametrize(
    "data",
    [
        {"name": "Bad Name"},
        {"name": "x" * 65},
        {"name": "ok", "locks": []},
        {"name": "ok", "locks": ["a"] * 33},
        {"name": "ok", "images": ["has space"]},
        {"name": "ok", "images": ["x" * 129]},
        {"name": "ok", "teams": "data"},
        {"name": "ok", "description": "x" * 257},
        {"name": "ok", "description": "bell\x07"},
        {"name": "ok", "unknown": ["*"]},
        {"locks": ["*"]},
    ],
)
def test_bad_policies_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed):
        check_policy(data)  # type: ignore[arg-type]
    book = PolicyBook(MemoryDocumentStore())
    with pytest.raises(ValidationFailed):
        book.set(data)  # type: ignore[arg-type]
    assert book.list() == []


_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=140), st.text(alphabet=_PRINTABLE, min_size=1, max_size=140)))
def test_pattern_form_property(pattern: str) -> None:
    """A pattern is 1-128 printable ASCII characters; one in that form is accepted in every field."""
    expected = 1 <= len(pattern) <= 128 and all(c in _PRINTABLE for c in pattern)
    try:
        policy = check_policy({"name": "p", "locks": [pattern], "labels": [pattern]})
    except ValidationFailed:
        assert not expected
    else:
        assert expected and policy.locks == [pattern]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=70), st.from_regex(r"[a-z][a-z0-9-]{0,64}", fullmatch=True)))
def test_policy_name_form_property(name: str) -> None:
    expected = (
        1 <= len(name) <= 64
        and name[0] in string.ascii_lowercase
        and all(c in string.ascii_lowercase + string.digits + "-" for c in name)
    )
    try:
        check_policy({"name": name})
    except ValidationFailed:
        assert not expected
    else:
        assert expected


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=_PRINTABLE, min_size=1, max_size=20),
    st.text(alphabet=string.ascii_letters + string.digits + "-_.", max_size=20),
)
def test_lock_matching_is_fnmatchcase(pattern: str, lock: str) -> None:
    """An operator's run with lock L is allowed by a policy with lock pattern P exactly when
    fnmatchcase(L, P) (the empty text for no lock)."""
    policies = [check_policy({"name": "p", "teams": ["data"], "locks": [pattern]})]
    decision = decide(OPERATOR, roles.RUNS_START, target=_target(lock=lock or None), policies=policies)
    assert decision.allowed is fnmatch.fnmatchcase(lock, pattern)


def test_policy_pattern_bound_is_documented() -> None:
    assert "128" in inputs.POLICY_PATTERN.text and inputs.MAX_POLICY_PATTERNS == 32
