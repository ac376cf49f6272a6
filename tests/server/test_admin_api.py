"""The admin routes (runvoy_server/routes/admin.py, decision 1519), in process over the real app: users, service
accounts, keys (the token in the creating answer only), policies and the audit log, each as the TeamAdmin
Protocol answers it; the refusals are the TeamBackend's, carried as JSON errors."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_core import inputs
from runvoy_server.routes import admin as admin_routes

from .conftest import AppClient, MakeApp


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_accounts_keys_and_who_is_calling(app_client: AppClient) -> None:
    c, admin = app_client.client, app_client.headers
    me = _ok(c.get("/v1/whoami", headers=admin))
    assert (me["role"], me["kind"]) == ("admin", "user") and "users.write" in me["actions"]

    alice = _ok(
        c.post("/v1/users", json={"name": "alice", "role": "operator", "team": "data"}, headers=admin), 201
    )
    assert (alice["name"], alice["kind"], alice["disabled"], alice["created_by"]) == (
        "alice",
        "user",
        False,
        me["name"],
    )
    ci = _ok(
        c.post(
            "/v1/users",
            json={"name": "ci", "role": "operator", "team": "data", "kind": "service"},
            headers=admin,
        ),
        201,
    )
    assert ci["kind"] == "service"
    again = c.post("/v1/users", json={"name": "alice", "role": "viewer", "team": "data"}, headers=admin)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "alreadyexists")
    assert [
        u["name"] for u in _ok(c.get("/v1/users", params={"kind": "service"}, headers=admin))["users"]
    ] == ["ci"]
    assert _ok(c.get("/v1/users/alice", headers=admin)) == alice

    made = c.post("/v1/keys", json={"user": "alice", "name": "laptop", "expires_in": 7200}, headers=admin)
    created = _ok(made, 201)
    assert made.headers["cache-control"] == "no-store"
    token, key_id = created["token"], created["key"]["id"]
    assert token.startswith(f"rvk_{key_id}_")
    listed = c.get("/v1/keys", headers=admin)
    assert (
        token not in listed.text and token.split("_", 2)[2] not in listed.text and '"hash"' not in listed.text
    )
    assert key_id in {k["id"] for k in _ok(listed)["keys"]}

    # alice: herself, her team, her own keys only
    assert _ok(c.get("/v1/whoami", headers=_as(token)))["name"] == "alice"
    assert {k["user"] for k in _ok(c.get("/v1/keys", headers=_as(token)))["keys"]} == {"alice"}
    refused = c.post(
        "/v1/users", json={"name": "mallory", "role": "admin", "team": "data"}, headers=_as(token)
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "accessdenied")

    rotated = _ok(c.post(f"/v1/keys/{key_id}/rotate", json={"overlap": 60}, headers=admin), 201)
    assert rotated["key"]["user"] == "alice" and rotated["token"] != token
    old = next(k for k in _ok(c.get("/v1/keys", headers=admin))["keys"] if k["id"] == key_id)
    assert old["replaced_by"] == rotated["key"]["id"]
    assert c.get("/v1/whoami", headers=_as(token)).status_code == 200, "the old key works during the overlap"

    revoked = _ok(c.post(f"/v1/keys/{key_id}/revoke", headers=admin))
    assert revoked["revoked_at"] is not None
    assert c.get("/v1/whoami", headers=_as(token)).status_code == 401
    new_token = rotated["token"]
    assert _ok(c.post("/v1/users/alice/disable", headers=admin))["disabled"] is True
    assert c.get("/v1/whoami", headers=_as(new_token)).status_code == 401
    assert _ok(c.post("/v1/users/alice/enable", headers=admin))["disabled"] is False
    assert c.get("/v1/whoami", headers=_as(new_token)).status_code == 200

    missing = c.get("/v1/users/nobody", headers=admin)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "notfound")
    assert c.post("/v1/keys/0123456789abcdef/revoke", headers=admin).status_code == 404
    assert c.get("/v1/users/Not%20A%20Name", headers=admin).status_code == 422


def test_bounds_of_the_bodies_are_refused_before_anything_is_done(app_client: AppClient) -> None:
    c, admin = app_client.client, app_client.headers
    bad = [
        ("/v1/users", {"name": "x", "role": "root", "team": "data"}),
        ("/v1/users", {"name": "x", "role": "admin", "team": "Data"}),
        ("/v1/users", {"name": "x" * 65, "role": "admin", "team": "data"}),
        ("/v1/users", {"name": "x", "role": "admin", "team": "data", "extra": 1}),
        ("/v1/keys", {"user": "admin", "expires_in": 60}),
        ("/v1/keys", {"user": "admin", "expires_in": 10**12}),
        ("/v1/keys", {"user": "admin", "name": " spaced"}),
    ]
    for path, body in bad:
        response = c.post(path, json=body, headers=admin)
        assert (response.status_code, response.json()["error"]["code"]) == (422, "validationfailed"), body
    too_many = c.put("/v1/policies/p", json={"locks": ["x"] * 33}, headers=admin)
    assert too_many.status_code == 422
    spaced = c.put("/v1/policies/p", json={"images": ["has space"]}, headers=admin)
    assert spaced.status_code == 422
    assert _ok(c.get("/v1/users", headers=admin))["users"][0]["name"] == "admin", "nothing was made"


def test_policies(app_client: AppClient) -> None:
    c, admin = app_client.client, app_client.headers
    assert _ok(c.get("/v1/policies", headers=admin)) == {"policies": []}
    body = {"description": "ETL on aws", "teams": ["data"], "providers": ["aws"], "locks": ["etl-*"]}
    policy = _ok(c.put("/v1/policies/data-etl", json=body, headers=admin))
    assert (policy["name"], policy["locks"], policy["images"]) == ("data-etl", ["etl-*"], ["*"])
    assert _ok(c.get("/v1/policies/data-etl", headers=admin)) == policy
    assert [p["name"] for p in _ok(c.get("/v1/policies", headers=admin))["policies"]] == ["data-etl"]
    assert _ok(c.delete("/v1/policies/data-etl", headers=admin))["name"] == "data-etl"
    assert c.get("/v1/policies/data-etl", headers=admin).status_code == 404


def test_audit_verify_entries_and_export(app_client: AppClient, monkeypatch: pytest.MonkeyPatch) -> None:
    c, admin = app_client.client, app_client.headers
    for n in range(5):
        _ok(c.post("/v1/users", json={"name": f"u{n}", "role": "viewer", "team": "data"}, headers=admin), 201)
    report = _ok(c.get("/v1/audit/verify", headers=admin))
    assert report["ok"] is True and report["entries"] >= 5 and report["problem"] is None
    anchored = c.get(
        "/v1/audit/verify",
        params={"anchor_seq": report["last_seq"], "anchor_hash": report["last_hash"]},
        headers=admin,
    )
    assert _ok(anchored)["ok"] is True
    assert c.get("/v1/audit/verify", params={"anchor_seq": 1}, headers=admin).status_code == 422

    page = _ok(c.get("/v1/audit/entries", params={"limit": 2}, headers=admin))["entries"]
    assert [e["seq"] for e in page] == [1, 2]
    after = _ok(c.get("/v1/audit/entries", params={"after_seq": 2, "limit": 2}, headers=admin))["entries"]
    assert [e["seq"] for e in after] == [3, 4]

    # pages of 2 entries: the export stitches them into one stream, with one CSV header
    monkeypatch.setattr(admin_routes, "AUDIT_PAGE", 2)
    lines = c.get("/v1/audit/export", headers=admin).text.splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == list(range(1, report["last_seq"] + 1))
    assert {e["action"] for e in entries} >= {"create_user"}
    exported = c.get("/v1/audit/export", params={"format": "csv"}, headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:2] == ["seq", "at"] and [r[0] for r in rows[1:]] == [str(e["seq"]) for e in entries]


def test_a_viewer_reads_its_team_and_changes_nothing(app_client: AppClient) -> None:
    c, admin = app_client.client, app_client.headers
    for name, team in (("vic", "data"), ("olga", "web")):
        _ok(c.post("/v1/users", json={"name": name, "role": "viewer", "team": team}, headers=admin), 201)
    token = _ok(c.post("/v1/keys", json={"user": "vic"}, headers=admin), 201)["token"]
    viewer = _as(token)
    assert {u["team"] for u in _ok(c.get("/v1/users", headers=viewer))["users"]} == {"data"}
    hidden = c.get("/v1/users/olga", headers=viewer)
    assert (hidden.status_code, hidden.json()["error"]["message"]) == (404, "no user 'olga'")
    for method, path, body in (
        ("POST", "/v1/users", {"name": "x", "role": "admin", "team": "data"}),
        ("POST", "/v1/users/olga/disable", None),
        ("PUT", "/v1/policies/p", {}),
        ("GET", "/v1/audit/verify", None),
        ("GET", "/v1/audit/export", None),
    ):
        response = c.request(method, path, json=body, headers=viewer)
        assert response.status_code == 403, (method, path, response.text)


# -- one rule wherever a value comes from ------------------------------------------------------------------------
NAMES = st.one_of(
    st.from_regex(r"[a-z][a-z0-9._@-]{0,70}", fullmatch=True),
    st.text(max_size=70),
    st.sampled_from(["", "a\n", "A", "a b", "é", "a" * 64, "a" * 65, "1abc", "ab\x00"]),
)


@pytest.fixture
def unlimited(make_app: MakeApp) -> AppClient:
    return make_app(rate=100000, burst=1000000)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(name=NAMES, team=NAMES)
def test_the_api_accepts_exactly_the_documented_forms(unlimited: AppClient, name: str, team: str) -> None:
    """A user the API makes is one `runvoy users create` accepts, and the other way round (runvoy_core.inputs)."""

    def accepted(form: inputs.Form, value: str) -> bool:
        try:
            form.parse(value)
        except ValueError:
            return False
        return True

    c, admin = unlimited.client, unlimited.headers
    response = c.post("/v1/users", json={"name": name, "role": "viewer", "team": team}, headers=admin)
    assert response.status_code < 500, response.text
    valid = accepted(inputs.USER_NAME, name) and accepted(inputs.TEAM, team)
    if valid:
        assert response.status_code in (201, 409), response.text
    else:
        assert (response.status_code, response.json()["error"]["code"]) == (422, "validationfailed")
