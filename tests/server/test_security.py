"""Security of the server against real ``runvoy server`` processes (decision 1520): a revoked, expired or disabled
key is refused at once by every replica; a viewer reaches no mutating endpoint (every operation of the OpenAPI
schema, so a new endpoint is covered without editing this file); one team cannot read another's runs, events,
logs or locks even by guessing ids; the body size and rate limits hold."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from runvoy_core.models import utcnow
from runvoy_core.testing.waiting import gate
from tests.server._team import OPEN, Team, make_team, operations, outcome, sse_events, write_config
from tests.server.conftest import StartServer, new_token


@pytest.fixture
def team(start_server: StartServer, runvoy_home: Path) -> Any:
    made = make_team(start_server, runvoy_home)
    yield made
    made.close()


def _whoami(team: Team, who: str, url: str | None = None) -> int:
    return team.call(who, "GET", "/v1/whoami", url=url).status_code


# -- keys on every replica ----------------------------------------------------------------------------------------
def test_a_revoked_expired_or_disabled_key_is_refused_at_once_on_every_replica(
    start_server: StartServer, runvoy_home: Path
) -> None:
    from runvoy_core.providers.local.store import LocalStore

    team = make_team(start_server, runvoy_home)
    other = start_server(
        home=runvoy_home,
        token=team.tokens["admin"],
        env={"RUNVOY_CONFIG": str(write_config(runvoy_home, OPEN))},
    )
    replicas = [team.url, other.url]
    try:
        # a key made on one replica works on the other at once
        made = team.ok("admin", "POST", "/v1/keys", json_body={"user": "view-data", "name": "revoked"})
        team.tokens["revoked"] = made["token"]
        assert [_whoami(team, "revoked", url) for url in replicas] == [200, 200]
        team.ok("admin", "POST", f"/v1/keys/{made['key']['id']}/revoke", url=other.url)
        assert [_whoami(team, "revoked", url) for url in replicas] == [401, 401]

        # expiry: the key's expiry moved into the past in the shared store is seen by both at once
        made = team.ok("admin", "POST", "/v1/keys", json_body={"user": "view-data", "name": "expiring"})
        team.tokens["expiring"] = made["token"]
        assert [_whoami(team, "expiring", url) for url in replicas] == [200, 200]
        store = LocalStore(runvoy_home)
        try:
            doc = store.get_document("keys", made["key"]["id"])
            assert doc is not None
            past = (utcnow() - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
            store.put_document("keys", doc.key, {**doc.value, "expires_at": past}, version=doc.version)
        finally:
            store.close()
        assert [_whoami(team, "expiring", url) for url in replicas] == [401, 401]
        refused = team.call("expiring", "GET", "/v1/executions", url=other.url)
        assert refused.json()["error"]["code"] == "invalidtoken"
        assert made["token"] not in refused.text

        # a disabled account: every key of it, on every replica
        assert [_whoami(team, "view-data", url) for url in replicas] == [200, 200]
        team.ok("admin", "POST", "/v1/users/view-data/disable")
        assert [_whoami(team, "view-data", url) for url in replicas] == [401, 401]
        team.ok("admin", "POST", "/v1/users/view-data/enable", url=other.url)
        assert [_whoami(team, "view-data", url) for url in replicas] == [200, 200]

        # every refusal is in the audit chain, whichever replica refused it
        entries = team.ok("admin", "GET", "/v1/audit/entries")["entries"]
        refusals = [e for e in entries if e["outcome"] in ("denied", "failed") and e["actor"] is None]
        assert len(refusals) >= 7, entries
        assert team.ok("admin", "GET", "/v1/audit/verify", url=other.url)["ok"] is True
    finally:
        team.close()


# -- a viewer and the mutating endpoints -------------------------------------------------------------------------
READ_ONLY_POSTS = {
    ("POST", "/v1/executions/{execution_id}/wait"): "waits for a run: a read",
    ("POST", "/v1/cost/estimate"): "prices a size: a read",
}
"""Operations that are not GET and change nothing; any other operation counts as mutating."""
PLAYBOOK = "name: pb\nsteps:\n  - name: one\n    run: echo step\n"
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/runs"): {"command": "echo should-not-run"},
    ("POST", "/v1/executions"): {"command": "echo should-not-run"},
    ("POST", "/v1/playbooks/runs"): {"text": PLAYBOOK},
    ("POST", "/v1/locks/{name}/release"): {"force": True},
    ("PUT", "/v1/budgets/{name}"): {"amount": "5"},
    ("POST", "/v1/users"): {"name": "intruder", "role": "admin", "team": "data"},
    ("POST", "/v1/keys"): {"user": "view-data"},
    ("PUT", "/v1/policies/{name}"): {"locks": ["*"]},
    ("POST", "/v1/reconcile"): {"dry_run": False},
    ("POST", "/v1/executions/{execution_id}/kill"): {"force": True},
}


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def example(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """The smallest value a schema accepts (required fields only), for an operation this file does not know:
    a new endpoint is still driven past the body's validation to its permission check."""
    schema = _resolve(schema, spec)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, spec).get("type") != "null"]
            return example(options[0], spec)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example(props[name], spec) for name in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items", {}), spec) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return "x" * max(1, schema.get("minLength", 1))


def _body(method: str, path: str, operation: dict[str, Any], spec: dict[str, Any]) -> Any:
    if (method, path) in BODIES:
        return BODIES[(method, path)]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return None if content is None else example(content["schema"], spec)


def _data_team_world(team: Team, tmp_path: Path) -> dict[str, Any]:
    """Resources of team ``data``: an ended run, a running run holding a lock, a budget, a policy, and another
    account's key; path parameters by name and by the collection they are in."""
    ended = team.ok("op-data", "POST", "/v1/executions", json_body={"command": "echo data-secret-line"})
    team.ok("op-data", "POST", f"/v1/executions/{ended['id']}/wait", json_body={"timeout": 60})
    release = tmp_path / "release-holder"
    holder = team.ok(
        "op-data",
        "POST",
        "/v1/executions",
        json_body={"command": f"echo holder-secret; {gate(release)}", "lock": "etl-data"},
    )
    team.ok("admin", "PUT", "/v1/budgets/data-budget", json_body={"amount": "5"})
    team.ok("admin", "PUT", "/v1/policies/data-any", json_body={"teams": ["data"]})
    other_key = team.ok("admin", "POST", "/v1/keys", json_body={"user": "op-data", "name": "other"})
    return {
        "ended": ended,
        "holder": holder,
        "release": release,
        "params": {
            "execution_id": holder["id"],
            ("locks", "name"): "etl-data",
            ("budgets", "name"): "data-budget",
            ("policies", "name"): "data-any",
            ("users", "name"): "op-data",
            "key_id": other_key["key"]["id"],
        },
    }


def _path(template: str, params: dict[Any, str]) -> str:
    collection = template.split("/")[2]

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return params.get((collection, name)) or params.get(name) or "x"

    return re.sub(r"\{([^}]+)\}", fill, template)


def _snapshot(team: Team) -> dict[str, Any]:
    def without_times(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in i.items() if k not in ("last_used_at",)} for i in items]

    return {
        "users": team.ok("admin", "GET", "/v1/users")["users"],
        "keys": without_times(team.ok("admin", "GET", "/v1/keys")["keys"]),
        "policies": team.ok("admin", "GET", "/v1/policies")["policies"],
        "budgets": team.ok("admin", "GET", "/v1/budgets"),
        "runs": sorted(
            e["id"] for e in team.ok("admin", "GET", "/v1/executions", params={"limit": 1000})["executions"]
        ),
        "locks": [
            (lock["name"], lock["state"], lock["fence"])
            for lock in team.ok("admin", "GET", "/v1/locks")["locks"]
        ],
    }


def test_a_viewer_reaches_no_mutating_endpoint(team: Team, tmp_path: Path) -> None:
    world = _data_team_world(team, tmp_path)
    spec = team.http.get(team.url + "/v1/openapi.json").json()
    before = _snapshot(team)
    tried = []
    try:
        for method, template, operation in operations(team):
            if method == "GET" or (method, template) in READ_ONLY_POSTS:
                continue
            path = _path(template, world["params"])
            response = team.call(
                "view-data", method, path, json_body=_body(method, template, operation, spec)
            )
            got = outcome(response)
            if template.startswith("/v1/keys/{key_id}/"):
                # keys.self: a viewer may revoke and rotate its own keys; another account's key does not exist
                # for it (404), exactly as a key id nobody has
                assert got == (404, "notfound"), (method, template, response.text)
            elif response.headers.get("content-type", "").startswith("text/event-stream"):
                assert got == (200, "accessdenied"), (method, template, response.text)
                assert "started" not in [name for name, _ in sse_events(response)]
            else:
                assert got == (403, "accessdenied"), (method, template, response.text)
            tried.append((method, template))
        assert len(tried) >= 15, tried  # every mutating operation of today's API, at least
        assert _snapshot(team) == before, "a viewer's request changed something"
        holder = team.ok("admin", "GET", f"/v1/executions/{world['holder']['id']}/status")
        assert holder["status"] == "RUNNING"
        denied = [
            e
            for e in team.ok("admin", "GET", "/v1/audit/entries")["entries"]
            if e["actor"] == "view-data" and e["outcome"] == "denied"
        ]
        assert len(denied) >= len(tried), "every refusal is audited"
    finally:
        world["release"].touch()


# -- teams ----------------------------------------------------------------------------------------------------------
def _error(response: httpx.Response, execution_id: str) -> dict[str, Any]:
    body = dict(response.json()["error"])
    body.pop("request_id")
    body["message"] = body["message"].replace(execution_id, "ID")
    return body


def test_one_team_cannot_read_another_team_s_runs_logs_or_locks_even_by_guessing_ids(
    team: Team, tmp_path: Path
) -> None:
    world = _data_team_world(team, tmp_path)
    ended, holder = world["ended"], world["holder"]
    try:
        missing_id = "f" * len(ended["id"])
        reads = [
            ("GET", "/v1/executions/{}"),
            ("GET", "/v1/executions/{}/status"),
            ("GET", "/v1/executions/{}/events"),
            ("GET", "/v1/executions/{}/logs"),
            ("GET", "/v1/executions/{}/logs/stream"),
            ("POST", "/v1/executions/{}/wait"),
        ]
        for who in ("op-web", "view-web"):
            for execution_id in (ended["id"], ended["id"][:6], holder["id"]):
                for method, template in reads:
                    body = {"timeout": 0} if method == "POST" else None
                    hidden = team.call(who, method, template.format(execution_id), json_body=body)
                    absent = team.call(
                        who, method, template.format(missing_id[: len(execution_id)]), json_body=body
                    )
                    assert hidden.status_code == absent.status_code == 404, (who, template, hidden.text)
                    assert _error(hidden, execution_id) == _error(absent, missing_id[: len(execution_id)])
                    assert "secret" not in hidden.text
            listed = team.ok(who, "GET", "/v1/executions", params={"limit": 1000})["executions"]
            assert ended["id"] not in {e["id"] for e in listed} and holder["id"] not in {
                e["id"] for e in listed
            }
            by_label = team.ok(who, "GET", "/v1/executions", params={"label": "runvoy.team=data"})[
                "executions"
            ]
            assert by_label == []

            # the lock its run holds is as unknown as a name nobody used: not listed, 404 by name
            hidden_lock = team.call(who, "GET", "/v1/locks/etl-data")
            unused_lock = team.call(who, "GET", "/v1/locks/etl-nobody")
            assert hidden_lock.status_code == unused_lock.status_code == 404, hidden_lock.text
            assert _error(hidden_lock, "etl-data") == _error(unused_lock, "etl-nobody")
            assert "etl-data" not in {lock["name"] for lock in team.ok(who, "GET", "/v1/locks")["locks"]}
            seen_holder = team.call(who, "GET", f"/v1/executions/{holder['id']}")
            assert seen_holder.status_code == 404
        killed = team.call("op-web", "POST", f"/v1/executions/{holder['id']}/kill", json_body={"force": True})
        assert outcome(killed) == (404, "notfound")
        released = team.call("op-web", "POST", "/v1/locks/etl-data/release", json_body={"force": True})
        assert outcome(released) == (404, "notfound")

        # ...while its own team, and an admin, see all of it
        for who in ("view-data", "admin"):
            assert team.ok(who, "GET", f"/v1/executions/{ended['id']}")["id"] == ended["id"]
            page = team.ok(who, "GET", f"/v1/executions/{ended['id']}/logs")
            assert any("data-secret-line" in event["message"] for event in page["events"])
            assert team.ok(who, "GET", "/v1/locks/etl-data")["holder"]["command"]
        assert team.ok("admin", "GET", f"/v1/executions/{holder['id']}/status")["status"] == "RUNNING"
        assert team.ok("admin", "GET", "/v1/locks/etl-data")["state"] == "held"
    finally:
        world["release"].touch()


# -- limits -----------------------------------------------------------------------------------------------------------
def test_the_body_size_and_rate_limits_hold(start_server: StartServer, runvoy_home: Path) -> None:
    config = '[serve]\nbody_limit = "1KiB"\nrate = 0.5\nburst = 6\n'
    token = new_token()
    server = start_server(
        home=runvoy_home, token=token, env={"RUNVOY_CONFIG": str(write_config(runvoy_home, config))}
    )
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        made = http.post("/v1/keys", json={"user": "admin", "name": "second"})
        assert made.status_code == 201, made.text
        second = {"Authorization": f"Bearer {made.json()['token']}"}
        assert http.put("/v1/policies/small", json={"description": "d" * 200}).status_code == 200
        refused = http.put("/v1/policies/big", json={"description": "d" * 2000})
        assert (refused.status_code, refused.json()["error"]["code"]) == (413, "requesttoolarge")

        def chunks() -> Any:  # no Content-Length: counted as it arrives
            for _ in range(8):
                yield b" " * 256
            yield b"{}"

        streamed = http.put(
            "/v1/policies/big", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert http.get("/v1/policies/big").status_code == 404, "nothing of a refused body was acted on"

        # one key's burst spent: 429 with Retry-After (the refill, one request per 2 s, is far slower than this)
        answers = [http.get("/v1/whoami") for _ in range(12)]
        limited = [r for r in answers if r.status_code == 429]
        assert limited, [r.status_code for r in answers]
        assert int(limited[0].headers["Retry-After"]) >= 1
        assert limited[0].json()["error"]["code"] == "toomanyrequests"
        # another key has a bucket of its own
        assert http.get("/v1/whoami", headers=second).status_code == 200
