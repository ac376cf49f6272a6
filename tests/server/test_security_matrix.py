"""Role x team x endpoint over HTTP, against a real ``runvoy server`` (decision 1520): every operation of the
OpenAPI schema, called by an admin and by an operator and a viewer of the resource's team (``data``) and of
another team (``web``), with every allow and every deny written out below — the table is the specification,
not derived from the code it checks. An operation the table lacks fails the test.

A: allowed (2xx; a streamed run ends without an error event); D: refused, 403 ``accessdenied`` (in the stream
for a streamed run); H: hidden, 404 ``notfound``, as for an id nobody has (another team's run or account,
another account's key). An allowed call that changes something gets a fresh target of its own."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.testing.waiting import gate
from tests.server._team import Team, make_team, operations, outcome, sse_events
from tests.server.conftest import StartServer

CALLERS = ("admin", "op-data", "view-data", "op-web", "view-web")
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}
"""Probes a balancer calls without a key (tests/server/test_middleware.py)."""

Prepare = Callable[["World", bool], tuple[dict[str, str], Any]]
"""(world, allowed) -> (path parameters, JSON body)."""


@dataclass
class World:
    team: Team
    tmp: Path
    ended: str
    holder: str
    counter: itertools.count[int]

    def fresh(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    def running(self, lock: str | None = None) -> str:
        """A data run that keeps running (and holding ``lock``) until the test ends."""
        body: dict[str, Any] = {"command": gate(self.tmp / "release")}
        if lock:
            body["lock"] = lock
        return str(self.team.ok("op-data", "POST", "/v1/executions", json_body=body)["id"])


def none(world: World, allowed: bool) -> tuple[dict[str, str], Any]:
    return {}, None


def body(value: Any) -> Prepare:
    return lambda world, allowed: ({}, value)


def ended_run(value: Any = None) -> Prepare:
    return lambda world, allowed: ({"execution_id": world.ended}, value)


def kill_target(world: World, allowed: bool) -> tuple[dict[str, str], Any]:
    return {"execution_id": world.running() if allowed else world.holder}, {"force": True}


def lock_target(world: World, allowed: bool) -> tuple[dict[str, str], Any]:
    name = world.fresh("etl")
    if allowed:
        world.running(lock=name)
        return {"name": name}, {"force": True}
    return {"name": "etl-data"}, {"force": True}


def fresh_budget(world: World, allowed: bool) -> tuple[dict[str, str], Any]:
    name = world.fresh("budget")
    world.team.ok("admin", "PUT", f"/v1/budgets/{name}", json_body={"amount": "5"})
    return {"name": name}, None


def fresh_policy(world: World, allowed: bool) -> tuple[dict[str, str], Any]:
    name = world.fresh("policy")
    world.team.ok("admin", "PUT", f"/v1/policies/{name}", json_body={"teams": ["nobody"]})
    return {"name": name}, None


def fresh_user(world: World, allowed: bool) -> tuple[dict[str, str], Any]:
    name = world.fresh("user")
    world.team.ok("admin", "POST", "/v1/users", json_body={"name": name, "role": "viewer", "team": "data"})
    return {"name": name}, None


def view_data_key(value: Any = None) -> Prepare:
    """A fresh key of ``view-data``: its own key for view-data, another account's for everyone else."""

    def prepare(world: World, allowed: bool) -> tuple[dict[str, str], Any]:
        made = world.team.ok(
            "admin", "POST", "/v1/keys", json_body={"user": "view-data", "name": world.fresh("k")}
        )
        return {"key_id": made["key"]["id"]}, value

    return prepare


PLAYBOOK = "name: pb\nsteps:\n  - name: one\n    run: echo step\n"

# (method, path) -> (outcome for admin, op-data, view-data, op-web, view-web; how to call it)
MATRIX: dict[tuple[str, str], tuple[str, Prepare]] = {
    ("GET", "/v1/info"): ("AAAAA", none),
    ("POST", "/v1/runs"): ("AADAD", body({"command": "true"})),
    ("POST", "/v1/executions"): ("AADAD", body({"command": "true"})),
    ("GET", "/v1/executions"): ("AAAAA", none),
    ("GET", "/v1/executions/{execution_id}"): ("AAAHH", ended_run()),
    ("GET", "/v1/executions/{execution_id}/status"): ("AAAHH", ended_run()),
    ("GET", "/v1/executions/{execution_id}/events"): ("AAAHH", ended_run()),
    ("POST", "/v1/executions/{execution_id}/wait"): ("AAAHH", ended_run({"timeout": 0})),
    ("GET", "/v1/executions/{execution_id}/logs"): ("AAAHH", ended_run()),
    ("GET", "/v1/executions/{execution_id}/logs/stream"): ("AAAHH", ended_run()),
    ("POST", "/v1/executions/{execution_id}/kill"): ("AADHD", kill_target),
    ("POST", "/v1/reconcile"): ("ADDDD", body({"dry_run": True})),
    ("POST", "/v1/playbooks/runs"): ("AADAD", body({"text": PLAYBOOK})),
    ("GET", "/v1/locks"): ("AAAAA", none),
    ("POST", "/v1/locks/{name}/release"): ("AADHD", lock_target),
    ("GET", "/v1/locks/{name}"): ("AAAHH", lambda w, a: ({"name": "etl-data"}, None)),
    ("POST", "/v1/cost/estimate"): ("AAAAA", body({"cpu": "1", "memory": "2GiB", "duration": "10m"})),
    ("GET", "/v1/cost/report"): ("AAAAA", none),
    ("GET", "/v1/budgets"): ("AAAAA", none),
    ("GET", "/v1/budgets/{name}"): ("AAAAA", lambda w, a: ({"name": "data-budget"}, None)),
    ("PUT", "/v1/budgets/{name}"): ("ADDDD", lambda w, a: ({"name": w.fresh("budget")}, {"amount": "5"})),
    ("DELETE", "/v1/budgets/{name}"): ("ADDDD", fresh_budget),
    ("GET", "/v1/providers"): ("AAAAA", none),
    ("GET", "/v1/whoami"): ("AAAAA", none),
    ("GET", "/v1/users"): ("AAAAA", none),
    (
        "POST",
        "/v1/users",
    ): ("ADDDD", lambda w, a: ({}, {"name": w.fresh("new"), "role": "viewer", "team": "data"})),
    ("GET", "/v1/users/{name}"): ("AAAHH", lambda w, a: ({"name": "op-data"}, None)),
    ("POST", "/v1/users/{name}/disable"): ("ADDDD", fresh_user),
    ("POST", "/v1/users/{name}/enable"): ("ADDDD", fresh_user),
    ("GET", "/v1/keys"): ("AAAAA", none),
    ("POST", "/v1/keys"): ("ADDDD", body({"user": "view-data"})),
    ("POST", "/v1/keys/{key_id}/revoke"): ("AHAHH", view_data_key()),
    ("POST", "/v1/keys/{key_id}/rotate"): ("AHAHH", view_data_key({"overlap": 60})),
    ("GET", "/v1/policies"): ("AAAAA", none),
    ("PUT", "/v1/policies/{name}"): (
        "ADDDD",
        lambda w, a: ({"name": w.fresh("policy")}, {"teams": ["nobody"]}),
    ),
    ("GET", "/v1/policies/{name}"): ("AAAAA", lambda w, a: ({"name": "data-any"}, None)),
    ("DELETE", "/v1/policies/{name}"): ("ADDDD", fresh_policy),
    ("GET", "/v1/audit/verify"): ("ADDDD", none),
    ("GET", "/v1/audit/entries"): ("ADDDD", none),
    ("GET", "/v1/audit/export"): ("ADDDD", none),
}
EXPECTED = {"A": None, "D": (403, "accessdenied"), "H": (404, "notfound")}


@pytest.fixture
def world(start_server: StartServer, runvoy_home: Path, tmp_path: Path) -> Any:
    team = make_team(start_server, runvoy_home)
    ended = team.ok("op-data", "POST", "/v1/executions", json_body={"command": "echo data-line"})["id"]
    team.ok("op-data", "POST", f"/v1/executions/{ended}/wait", json_body={"timeout": 60})
    made = World(team, tmp_path, ended, "", itertools.count(1))
    made.holder = made.running(lock="etl-data")
    team.ok("admin", "PUT", "/v1/budgets/data-budget", json_body={"amount": "5"})
    team.ok("admin", "PUT", "/v1/policies/data-any", json_body={"teams": ["data"]})
    yield made
    (tmp_path / "release").touch()
    team.close()


def _fill(template: str, params: dict[str, str]) -> str:
    path = template
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, (template, params)
    return path


def test_every_role_and_team_on_every_endpoint(world: World) -> None:
    team = world.team
    listed = {(method, path) for method, path, _ in operations(team)} - PUBLIC
    assert listed == set(MATRIX), (
        f"operations without a row here: {sorted(listed - set(MATRIX))}; rows of no operation: "
        f"{sorted(set(MATRIX) - listed)}"
    )
    wrong = []
    for (method, template), (codes, prepare) in MATRIX.items():
        for caller, code in zip(CALLERS, codes, strict=True):
            params, value = prepare(world, code == "A")
            response = team.call(caller, method, _fill(template, params), json_body=value)
            got = outcome(response)
            streamed = response.headers.get("content-type", "").startswith("text/event-stream")
            if code == "A":
                fine = response.status_code < 300 and got[1] is None
                if streamed:
                    fine = fine and "end" in [name for name, _ in sse_events(response)]
            elif streamed and EXPECTED[code] == (403, "accessdenied"):
                fine = got == (200, "accessdenied")
            else:
                fine = got == EXPECTED[code]
            if not fine:
                wrong.append(
                    f"{caller} {method} {template}: expected {code}, got {got} {response.text[:200]}"
                )
    assert not wrong, "\n".join(wrong)
