"""TeamBackend (runvoy_core.team.guarded, decision 1508): the permission check of every method, for every
role, on its own team's and another team's resources; runs labelled with their team and recorded with the
caller as user; the audit entry of every mutating call and every refusal; policies on run/submit/playbooks;
the second factor. Against a real LocalBackend on the local provider (real processes, the SQLite store)."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.backend import Backend
from runvoy_core.engine import LocalBackend
from runvoy_core.errors import AccessDenied, NotFound, RunvoyError, ValidationFailed
from runvoy_core.models import ExecutionRequest, Status
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.team.admin import LocalTeamAdmin, TeamAdmin
from runvoy_core.team.audit import AuditLog
from runvoy_core.team.context import ROLES, Caller, current_caller
from runvoy_core.team.guarded import ACTIONS, MUTATING, TEAM_LABEL, TeamBackend
from runvoy_core.testing.sinks import RecordingSink

PLAYBOOK = textwrap.dedent(
    """
    name: nightly
    steps:
      - run: echo from-playbook
    """
)


@dataclass
class Env:
    inner: LocalBackend
    store: DocumentStore
    runs: dict[str, str] = field(default_factory=dict)
    """team -> a finished run of that team."""
    holders: dict[str, str] = field(default_factory=dict)
    """team -> a running run holding the lock ``lock-<team>``."""
    keys: dict[str, str] = field(default_factory=dict)
    """user -> the id of one of its keys."""

    def backend(self, caller: Caller, **kw: Any) -> TeamBackend:
        return TeamBackend(self.inner, self.store, caller, audit=AuditLog(self.store), **kw)


def _caller(role: str, team: str = "data") -> Caller:
    return Caller(f"{role}-{team[0]}", "user", role, team)


@pytest.fixture
def env(runvoy_home: Path) -> Iterator[Env]:
    inner = LocalBackend("local")
    store = inner.store
    assert isinstance(store, DocumentStore)
    admin = LocalTeamAdmin(store)
    for role in ROLES:
        for team in ("data", "web"):
            admin.create_user(f"{role}-{team[0]}", role=role, team=team)
    made = Env(inner=inner, store=store)
    for user in ("viewer-d", "operator-d", "admin-d", "operator-w"):
        made.keys[user] = admin.create_key(user).key.id
        made.keys[user + "/2"] = admin.create_key(user, name="second").key.id
    admin.set_policy({"name": "p0", "teams": ["nobody"]})
    inner.set_budget("b1", amount="10")
    for team in ("data", "web"):
        operator = made.backend(_caller("operator", team))
        run = operator.submit("echo hi")
        assert operator.wait(run.id, timeout=120).status == Status.SUCCEEDED
        made.runs[team] = run.id
        made.holders[team] = operator.submit("sleep 600", lock=f"lock-{team}").id
    try:
        yield made
    finally:
        for execution_id in made.holders.values():
            inner.kill(execution_id, force=True)
        inner.close()


def _scenarios(env: Env, caller: Caller) -> list[tuple[str, str, Callable[[TeamBackend], Any]]]:
    """(method, whose resource: data|web|-, the call). Mutating calls on runs and locks come last."""
    found: list[tuple[str, str, Callable[[TeamBackend], Any]]] = []
    for team in ("data", "web"):
        rid = env.runs[team]
        found += [
            ("get", team, lambda b, r=rid: b.get(r)),
            ("resolve_id", team, lambda b, r=rid: b.resolve_id(r[:8])),
            ("status", team, lambda b, r=rid: b.status(r)),
            ("events", team, lambda b, r=rid: b.events(r)),
            ("wait", team, lambda b, r=rid: b.wait(r, timeout=60)),
            ("logs", team, lambda b, r=rid: list(b.logs(r))),
            ("log_page", team, lambda b, r=rid: b.log_page(r)),
            ("copy_logs", team, lambda b, r=rid: b.copy_logs(r, RecordingSink())),
        ]
    own_key, own_key2 = env.keys.get(caller.name), env.keys.get(caller.name + "/2")
    found += [
        ("list", "-", lambda b: b.list()),
        ("reconcile", "-", lambda b: b.reconcile(dry_run=True)),
        ("list_locks", "-", lambda b: b.list_locks()),
        ("estimate_cost", "-", lambda b: b.estimate_cost(provider="local")),
        ("cost_report", "-", lambda b: b.cost_report()),
        ("list_budgets", "-", lambda b: b.list_budgets()),
        ("show_budget", "-", lambda b: b.show_budget("b1")),
        ("set_budget", "-", lambda b: b.set_budget("b2", amount="5")),
        ("remove_budget", "-", lambda b: b.remove_budget("b1")),
        ("list_providers", "-", lambda b: b.list_providers()),
        ("run", "-", lambda b: b.run("true")),
        ("submit", "-", lambda b: b.submit("true")),
        ("run_playbook", "-", lambda b: b.run_playbook(PLAYBOOK)),
        ("submit_playbook", "-", lambda b: b.submit_playbook(PLAYBOOK)),
        ("whoami", "-", lambda b: b.whoami()),
        ("create_user", "-", lambda b: b.create_user("newbie", role="viewer", team="data")),
        ("list_users", "-", lambda b: b.list_users()),
        ("show_user", "data", lambda b: b.show_user("operator-d")),
        ("show_user", "web", lambda b: b.show_user("operator-w")),
        ("disable_user", "-", lambda b: b.disable_user("viewer-w")),
        ("enable_user", "-", lambda b: b.enable_user("viewer-w")),
        ("create_key", "-", lambda b: b.create_key("operator-w")),
        ("list_keys", "-", lambda b: b.list_keys()),
        ("revoke_key", "data", lambda b: b.revoke_key(own_key or "")),
        ("rotate_key", "data", lambda b: b.rotate_key(own_key2 or "")),
        ("revoke_key", "web", lambda b: b.revoke_key(env.keys["operator-w"])),
        ("rotate_key", "web", lambda b: b.rotate_key(env.keys["operator-w/2"])),
        ("set_policy", "-", lambda b: b.set_policy({"name": "p1"})),
        ("list_policies", "-", lambda b: b.list_policies()),
        ("show_policy", "-", lambda b: b.show_policy("p0")),
        ("remove_policy", "-", lambda b: b.remove_policy("p0")),
        ("audit_verify", "-", lambda b: b.audit_verify()),
        ("audit_entries", "-", lambda b: b.audit_entries()),
    ]
    for team in ("data", "web"):
        found.append(("lock_status", team, lambda b, t=team: b.lock_status(f"lock-{t}")))
    for team in ("data", "web"):
        found.append(("release_lock", team, lambda b, t=team: b.release_lock(f"lock-{t}", force=True)))
    for team in ("data", "web"):
        found.append(("kill", team, lambda b, t=team: b.kill(env.holders[t])))
    return found


LEAST_ROLE = {
    **dict.fromkeys(
        ["resolve_id", "get", "status", "events", "wait", "logs", "log_page", "copy_logs", "list"], "viewer"
    ),
    **dict.fromkeys(
        ["list_locks", "lock_status", "estimate_cost", "cost_report", "list_providers"], "viewer"
    ),
    **dict.fromkeys(["list_budgets", "show_budget", "whoami", "list_users", "show_user"], "viewer"),
    **dict.fromkeys(["list_keys", "revoke_key", "rotate_key", "list_policies", "show_policy"], "viewer"),
    **dict.fromkeys(["run", "submit", "run_playbook", "submit_playbook", "kill", "release_lock"], "operator"),
    **dict.fromkeys(["reconcile", "set_budget", "remove_budget", "create_user", "disable_user"], "admin"),
    **dict.fromkeys(["enable_user", "create_key", "set_policy", "remove_policy"], "admin"),
    **dict.fromkeys(["audit_verify", "audit_entries"], "admin"),
}
"""The least role that may call each method: the brief's roles written out by hand, not read from the code."""


def _expected(role: str, method: str, team: str) -> str:
    """The rule of decision 1508, written out: the role first (refused for any resource), then the team
    (another team's run, account, key or lock is not found: it cannot be told from one that does not exist)."""
    if ROLES.index(role) < ROLES.index(LEAST_ROLE[method]):
        return "denied"
    if role == "admin" or team != "web":
        return "ok"
    return "notfound"


def _outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except AccessDenied:
        return "denied"
    except NotFound:
        return "notfound"
    except RunvoyError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.parametrize("role", ROLES)
def test_every_method_for_every_role_and_team(env: Env, role: str) -> None:
    """The matrix: a caller of team data with ``role`` calls every method on team data's and team web's
    resources; every allow and every refusal is what the rule says, and each is audited."""
    caller = _caller(role)
    backend = env.backend(caller)
    scenarios = _scenarios(env, caller)
    got = {(m, t): _outcome(lambda c=call: c(backend)) for m, t, call in scenarios}
    want = {(m, t): _expected(role, m, t) for m, t, _ in scenarios}
    assert got == want
    entries = list(AuditLog(env.store).entries())
    mine = [e for e in entries if e.actor == caller.name]
    refused = sorted((m, t) for (m, t), outcome in want.items() if outcome != "ok")
    assert len([e for e in mine if e.outcome == "denied"]) == len(refused)
    for (method, _team), outcome in want.items():
        if outcome == "ok" and method in MUTATING:
            assert any(e.action == method and e.outcome == "allowed" for e in mine), method
    assert not [e for e in mine if e.outcome == "allowed" and e.action not in MUTATING]


def test_the_matrix_covers_every_method() -> None:
    """Every method of Backend and TeamAdmin has an action in the table (a new method without one would be
    refused, and this fails first), and the matrix above calls each of them."""
    members = {
        name
        for proto in (Backend, TeamAdmin)
        for name, value in vars(proto).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }
    assert (
        set(ACTIONS) == members - {"close", "team"} == set(LEAST_ROLE)
    )  # team(): itself, each method checked
    env = Env(inner=None, store=None)  # type: ignore[arg-type]
    env.runs = {"data": "r", "web": "r"}
    env.holders = {"data": "h", "web": "h"}
    env.keys = {"operator-w": "k", "operator-w/2": "k"}
    covered = {m for m, _, _ in _scenarios(env, _caller("viewer"))}
    assert covered == set(ACTIONS)
    assert set(ACTIONS) >= MUTATING
    for name in members:
        assert callable(getattr(TeamBackend, name)), name


def test_runs_carry_team_and_user(env: Env) -> None:
    operator = env.backend(_caller("operator", "web"))
    record = operator.get(env.runs["web"])
    assert record.user == "operator-w" and record.request.labels == {TEAM_LABEL: "web"}
    status = operator.lock_status("lock-web")
    assert status["holder"]["user"] == "operator-w"
    run = operator.run(ExecutionRequest(command="true", labels={"app": "x"}))
    assert run.user == "operator-w" and run.request.labels == {"app": "x", TEAM_LABEL: "web"}
    assert current_caller() is None  # bound only for the call


def test_the_team_label_is_reserved(env: Env) -> None:
    for role in ("operator", "admin"):
        backend = env.backend(_caller(role))
        with pytest.raises(ValidationFailed, match=r"runvoy\.team is reserved"):
            backend.submit("true", labels={TEAM_LABEL: "web"})
        with pytest.raises(ValidationFailed, match=r"runvoy\.team is reserved"):
            backend.submit(ExecutionRequest(command="true", labels={TEAM_LABEL: "data"}))
        with pytest.raises(ValidationFailed, match=r"runvoy\.team is reserved"):
            backend.submit_playbook(PLAYBOOK + "labels:\n  runvoy.team: web\n")


def test_lists_show_only_the_callers_team(env: Env) -> None:
    data = env.backend(_caller("viewer"))
    web = env.backend(_caller("viewer", "web"))
    admin = env.backend(_caller("admin"))
    assert {r.id for r in data.list()} == {env.runs["data"], env.holders["data"]}
    assert {r.id for r in web.list()} == {env.runs["web"], env.holders["web"]}
    assert {r.id for r in admin.list()} == set(env.runs.values()) | set(env.holders.values())
    assert data.list(labels={TEAM_LABEL: "web"}) == []
    assert {r.id for r in admin.list(labels={TEAM_LABEL: "web"})} == {env.runs["web"], env.holders["web"]}
    assert {u.name for u in data.list_users()} == {"viewer-d", "operator-d", "admin-d"}
    assert data.list_users(team="web") == []
    assert {k.user for k in data.list_keys()} == {"viewer-d"}
    with pytest.raises(AccessDenied):
        data.list_keys(user="operator-w")
    # another team's lock is not listed, and its name is as unknown as one nobody used
    locks = {lock["name"]: lock for lock in data.list_locks()}
    assert locks["lock-data"]["holder"]["command"] == "sleep 600"
    assert "lock-web" not in locks
    with pytest.raises(NotFound) as hidden:
        data.lock_status("lock-web")
    with pytest.raises(NotFound) as unused:
        data.lock_status("lock-nobody-used")
    assert str(hidden.value) == str(unused.value).replace("lock-nobody-used", "lock-web")
    assert hidden.value.hint == unused.value.hint
    assert admin.lock_status("lock-web")["holder"]["command"] == "sleep 600"


def test_another_teams_run_looks_like_an_unknown_one(env: Env) -> None:
    """The error for another team's run is the very error of an id that does not exist."""
    data = env.backend(_caller("operator"))
    with pytest.raises(NotFound) as unknown:
        env.inner.get("0123456789ab")
    for call in (data.get, data.status, data.events, data.kill, data.resolve_id):
        with pytest.raises(NotFound) as hidden:
            call("0123456789ab")
        assert (hidden.value.message, hidden.value.hint) == (unknown.value.message, unknown.value.hint)
    web_run = env.runs["web"]
    with pytest.raises(NotFound) as hidden:
        data.get(web_run)
    with pytest.raises(NotFound) as missing:
        env.inner.get(web_run[:-1] + ("0" if web_run[-1] != "0" else "1"))
    assert hidden.value.hint == missing.value.hint
    assert hidden.value.message == missing.value.message.replace(missing.value.message.split("'")[1], web_run)


def test_lock_release_rule(env: Env) -> None:
    """An operator releases locks its team's runs hold; another team's lock is as unknown as a name nobody
    used; the release is a compare-and-swap on what was checked."""
    data = env.backend(_caller("operator"))
    with pytest.raises(NotFound, match="no lock named 'lock-web'"):
        data.release_lock("lock-web", force=True)
    assert env.inner.lock_status("lock-web")["state"] == "held"
    assert data.release_lock("lock-data", force=True)["released"]
    assert data.release_lock("lock-data")["released"] is False  # not held any more


def test_policies_apply_to_operators_runs(env: Env) -> None:
    admin = env.backend(_caller("admin"))
    admin.set_policy({"name": "etl", "teams": ["data"], "actions": ["runs.start"], "locks": ["etl-*"]})
    admin.set_policy(
        {
            "name": "etl-books",
            "teams": ["data"],
            "actions": ["playbooks.*"],
            "locks": ["etl-*"],
            "playbooks": ["nightly"],
        }
    )
    operator = env.backend(_caller("operator"))
    with pytest.raises(AccessDenied, match="policy etl: lock"):
        operator.submit("true", lock="other")
    with pytest.raises(AccessDenied, match=r"policy etl: lock \(none\)"):
        operator.submit("true")
    ok = operator.submit("true", lock="etl-1")
    assert operator.wait(ok.id, timeout=120).status == Status.SUCCEEDED
    assert operator.run_playbook(PLAYBOOK, lock="etl-2").status == Status.SUCCEEDED
    with pytest.raises(AccessDenied, match="playbook 'other'"):
        operator.submit_playbook(PLAYBOOK.replace("nightly", "other"), lock="etl-3")
    # another team has no policy: it runs anything; an admin is never narrowed
    assert env.backend(_caller("operator", "web")).run("true").status == Status.SUCCEEDED
    assert admin.run("true").status == Status.SUCCEEDED
    denied = [e for e in AuditLog(env.store).entries() if e.outcome == "denied"]
    assert len(denied) == 3 and all(e.actor == "operator-d" for e in denied)


def test_second_factor_for_admin_only_actions(env: Env) -> None:
    admin = _caller("admin")
    strict = env.backend(admin, require_second_factor=True)
    for call in (
        lambda: strict.create_user("x1", role="viewer", team="data"),
        lambda: strict.set_policy({"name": "p2"}),
        lambda: strict.reconcile(dry_run=True),
        lambda: strict.audit_verify(),
        lambda: strict.revoke_key(env.keys["operator-w"]),
    ):
        with pytest.raises(AccessDenied, match="second factor"):
            call()
    assert strict.list_users()  # reads and non-admin actions need no second factor
    assert strict.get(env.runs["web"])
    with_code = env.backend(
        Caller(admin.name, "user", "admin", "data", second_factor=True), require_second_factor=True
    )
    assert with_code.create_user("x1", role="viewer", team="data").name == "x1"
    assert with_code.revoke_key(env.keys["operator-w"]).revoked_at is not None
    # a non-admin's own key needs none: it is not an admin-only action
    own = env.backend(_caller("viewer"), require_second_factor=True)
    assert own.revoke_key(env.keys["viewer-d"]).revoked_at is not None


def test_an_admin_cannot_disable_itself(env: Env) -> None:
    admin = env.backend(_caller("admin"))
    with pytest.raises(ValidationFailed, match="own account"):
        admin.disable_user("admin-d")


def test_failed_mutations_are_audited(env: Env) -> None:
    admin = env.backend(_caller("admin"))
    with pytest.raises(NotFound):
        admin.remove_policy("nope")
    with pytest.raises(ValidationFailed):
        admin.submit("true", lock="bad lock name")
    with pytest.raises(RunvoyError):
        admin.run_playbook("steps: []")
    failed = [
        (e.action, e.resource, e.detail) for e in AuditLog(env.store).entries() if e.outcome == "failed"
    ]
    assert failed == [
        ("remove_policy", "policy:nope", {"error": "NotFound"}),
        ("submit", "execution:new", {"error": "ValidationFailed"}),
        ("run_playbook", "playbook:-", {"error": "ValidationFailed"}),
    ]


def test_new_keys_secret_not_in_the_audit(env: Env) -> None:
    admin = env.backend(_caller("admin"))
    made = admin.create_key("operator-w")
    rotated = admin.rotate_key(made.key.id)
    text = "".join(str(e.as_dict()) for e in AuditLog(env.store).entries())
    assert made.token[21:] not in text and rotated.token[21:] not in text
    assert made.key.id in text or "user:operator-w" in text


def test_a_policy_that_is_not_an_object_is_refused(env: Env) -> None:
    admin = env.backend(_caller("admin"))
    for bad in (["*"], "etl", None, {"name": 7}):
        with pytest.raises(ValidationFailed):
            admin.set_policy(bad)  # type: ignore[arg-type]
    failed = [e.resource for e in AuditLog(env.store).entries() if e.outcome == "failed"]
    assert failed == ["policy:-"] * 4


def test_default_audit_is_the_chain_and_close_keeps_the_shared_backend(env: Env) -> None:
    backend = TeamBackend(env.inner, env.store, _caller("viewer"))
    with pytest.raises(AccessDenied):
        backend.kill(env.runs["data"])
    backend.close()
    assert env.inner.get(env.runs["data"]).id == env.runs["data"]  # still usable by the next request
    [entry] = [e for e in AuditLog(env.store).entries() if e.actor == "viewer-d"]
    assert (entry.action, entry.resource, entry.outcome) == (
        "kill",
        f"execution:{env.runs['data']}",
        "denied",
    )
    assert AuditLog(env.store).verify().ok
