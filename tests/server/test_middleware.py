"""The server's middleware and error contract, in process (FastAPI's TestClient over the real app on the
local provider): request ids, authentication and its audit entries, the body limit, rate limits, the request
timeout, JSON errors for every kind of failure, and the health probes (decisions 1513-1515)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, Query

from runvoy_core.errors import BudgetExceeded, LockHeld, NotFound, ValidationFailed
from runvoy_core.logging import configure_logging
from runvoy_core.team.audit import AuditLog
from runvoy_server.errors import STATUS

from .conftest import AppClient, MakeApp, new_token

SECRET_IN_MESSAGE = "hunter2-do-not-show"
LEAKED_KEY = new_token()
release = threading.Event()

probe = APIRouter()


@probe.get("/v1/test/raise/{kind}")
def raise_kind(kind: str) -> dict[str, str]:
    errors = {
        "notfound": NotFound("no execution 'abc'"),
        "lockheld": LockHeld("lock 'etl' is held by 123"),
        "budget": BudgetExceeded("budget 'team' is spent"),
        "invalid": ValidationFailed("invalid request: cpu: too big"),
    }
    if kind in errors:
        raise errors[kind]
    raise RuntimeError(f"a bug, with a secret in its message: {SECRET_IN_MESSAGE} {LEAKED_KEY}")


@probe.get("/v1/test/number")
def number(n: int = Query(ge=1, le=10)) -> dict[str, int]:
    return {"n": n}


@probe.get("/v1/test/block")
def block() -> dict[str, str]:
    # released by the test once it has its answer: the route is abandoned, never interrupted
    release.wait(timeout=120)
    return {"late": "answer"}


@probe.post("/v1/test/echo")
def echo(body: dict[str, str]) -> dict[str, int]:
    return {"keys": len(body)}


@pytest.fixture
def probed(make_app: MakeApp) -> AppClient:
    return make_app(routers=(probe,))


def audit_entries(app: object) -> list[dict[str, object]]:
    log: AuditLog = app.state.runvoy.audit  # type: ignore[attr-defined]
    return [entry.as_dict() for entry in log.entries()]


# -- request ids ---------------------------------------------------------------------------------------------


def test_a_request_id_is_made_when_none_is_given_and_echoed(app_client: AppClient) -> None:
    first = app_client.client.get("/healthz")
    second = app_client.client.get("/healthz")
    assert first.headers["x-request-id"].startswith("req-")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("given", ["trace-42", "0af7651916cd43dd8448eb211c80319c", "a.b:c_d-e"])
def test_a_well_formed_request_id_is_kept(app_client: AppClient, given: str) -> None:
    answer = app_client.client.get("/healthz", headers={"X-Request-ID": given})
    assert answer.headers["x-request-id"] == given


@pytest.mark.parametrize("given", ["has space", "x" * 129, "-starts-with-dash", "semi;colon", "é"])
def test_a_malformed_request_id_is_replaced_never_echoed(app_client: AppClient, given: str) -> None:
    answer = app_client.client.get("/healthz", headers={"X-Request-ID": given.encode("utf-8")})  # type: ignore[dict-item]
    assert answer.headers["x-request-id"].startswith("req-")


@pytest.fixture
def json_logs() -> Iterator[None]:
    configure_logging("json", "info")
    yield
    configure_logging("console", "warning")


def test_the_request_id_is_bound_into_log_lines_errors_and_audit_entries(
    probed: AppClient, json_logs: None, capfd: pytest.CaptureFixture[str]
) -> None:
    refused = probed.client.get("/v1/test/raise/notfound", headers={"X-Request-ID": "trace-refused"})
    assert refused.status_code == 401 and refused.json()["error"]["request_id"] == "trace-refused"
    failed = probed.client.get(
        "/v1/test/raise/notfound", headers={**probed.headers, "X-Request-ID": "trace-notfound"}
    )
    assert failed.json()["error"]["request_id"] == "trace-notfound"
    (entry,) = audit_entries(probed.app)
    assert entry["request_id"] == "trace-refused"
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "server.request"]
    assert {line["request_id"] for line in access} >= {"trace-refused", "trace-notfound"}


# -- authentication --------------------------------------------------------------------------------------------


def test_no_key_and_a_bad_key_are_401_and_audited(probed: AppClient) -> None:
    stranger = new_token()
    key_id = stranger.split("_")[1]
    answers = [
        probed.client.get("/v1/test/number?n=1"),
        probed.client.get("/v1/test/number?n=1", headers={"Authorization": f"Bearer {stranger}"}),
        probed.client.get("/v1/test/number?n=1", headers={"Authorization": "Basic dXNlcjpwYXNz"}),
        probed.client.get("/v1/test/number?n=1", headers={"Authorization": f"Bearer {probed.token}x"}),
    ]
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"].startswith("Bearer")
        error = answer.json()["error"]
        assert error["code"] == "invalidtoken" and error["hint"] and error["request_id"]
        assert stranger not in answer.text and probed.token not in answer.text
    entries = audit_entries(probed.app)
    assert [(e["action"], e["outcome"]) for e in entries] == [("auth.sign_in", "denied")] * 4
    assert entries[1]["resource"] == f"key:{key_id}"
    assert all(e["address"] == "testclient" for e in entries)
    exported = json.dumps(entries)
    assert stranger.split("_", 2)[2] not in exported and probed.token.split("_", 2)[2] not in exported
    assert probed.client.get("/v1/test/number?n=1", headers=probed.headers).json() == {"n": 1}


def test_public_paths_need_no_key(app_client: AppClient) -> None:
    for path in ("/healthz", "/readyz", "/v1/openapi.json", "/v1/docs"):
        assert app_client.client.get(path).status_code == 200, path
    assert audit_entries(app_client.app) == []


def test_the_openapi_document_is_at_v1(app_client: AppClient) -> None:
    document = app_client.client.get("/v1/openapi.json").json()
    assert document["info"]["title"] == "runvoy"
    assert "/healthz" in document["paths"] and "/readyz" in document["paths"]


# -- body size -----------------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_declared_or_streamed(make_app: MakeApp) -> None:
    app = make_app(routers=(probe,), body_limit="1KiB")
    big = json.dumps({"k": "x" * 2000}).encode()
    declared = app.client.post("/v1/test/echo", content=big, headers=app.headers)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    streamed = app.client.post("/v1/test/echo", content=chunks(), headers=app.headers)
    unauthenticated = app.client.post("/v1/test/echo", content=big)
    for answer in (declared, streamed, unauthenticated):
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "requesttoolarge"
    small = app.client.post("/v1/test/echo", json={"k": "x" * 500}, headers=app.headers)
    assert small.status_code == 200 and small.json() == {"keys": 1}


# -- rate limits -----------------------------------------------------------------------------------------------


def test_a_key_over_its_rate_gets_429_with_retry_after(make_app: MakeApp) -> None:
    app = make_app(routers=(probe,), rate=0.01, burst=2)  # one token per 100 s: the third is refused
    codes = [app.client.get("/v1/test/number?n=2", headers=app.headers).status_code for _ in range(2)]
    refused = app.client.get("/v1/test/number?n=2", headers=app.headers)
    assert codes == [200, 200]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "toomanyrequests" and error["retry_after"] > 0
    assert app.client.get("/healthz").status_code == 200  # probes are never limited


def test_failed_sign_ins_from_one_address_are_slowed_before_the_store(make_app: MakeApp) -> None:
    app = make_app(routers=(probe,), rate=0.01, burst=2)
    bad = {"Authorization": f"Bearer {new_token()}"}
    codes = [app.client.get("/v1/test/number?n=1", headers=bad).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    assert len(audit_entries(app.app)) == 2  # the slowed-down attempt never reached the key ring
    # the address is slowed as a whole until its bucket refills, a good key from it too (docs/server.md)
    assert app.client.get("/v1/test/number?n=1", headers=app.headers).status_code == 429


# -- timeout ---------------------------------------------------------------------------------------------------


def test_a_request_that_does_not_answer_in_time_is_504(make_app: MakeApp) -> None:
    app = make_app(routers=(probe,), request_timeout="1s")
    release.clear()
    try:
        answer = app.client.get("/v1/test/block", headers=app.headers)
    finally:
        release.set()
    assert answer.status_code == 504
    error = answer.json()["error"]
    assert error["code"] == "requesttimeout" and error["request_id"] == answer.headers["x-request-id"]
    assert app.client.get("/v1/test/number?n=3", headers=app.headers).json() == {"n": 3}


# -- JSON errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("notfound", 404, "notfound"),
        ("lockheld", 409, "lockheld"),
        ("budget", 402, "budgetexceeded"),
        ("invalid", 422, "validationfailed"),
    ],
)
def test_a_runvoy_error_is_its_status_and_code(probed: AppClient, kind: str, status: int, code: str) -> None:
    answer = probed.client.get(f"/v1/test/raise/{kind}", headers=probed.headers)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == code and error["message"] and error["hint"]
    assert error["request_id"] == answer.headers["x-request-id"]


def test_any_other_failure_is_a_500_with_the_request_id_only(
    probed: AppClient, json_logs: None, capfd: pytest.CaptureFixture[str]
) -> None:
    answer = probed.client.get("/v1/test/raise/bug", headers=probed.headers)
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["code"] == "internal" and error["request_id"] == answer.headers["x-request-id"]
    assert "Traceback" not in answer.text and SECRET_IN_MESSAGE not in answer.text
    assert "RuntimeError" not in answer.text
    logged = capfd.readouterr().err
    assert "Traceback" in logged and error["request_id"] in logged  # the server's log has the details
    assert (
        LEAKED_KEY.split("_", 2)[2] not in logged and LEAKED_KEY[:21] in logged
    )  # an API key's secret never


def test_fastapi_s_own_validation_errors_are_the_same_json_without_the_value(probed: AppClient) -> None:
    answer = probed.client.get("/v1/test/number?n=987654321", headers=probed.headers)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validationfailed" and "query.n" in error["message"]
    assert "987654321" not in answer.text


def test_unknown_endpoints_and_methods_are_json(app_client: AppClient) -> None:
    missing = app_client.client.get("/v1/no-such-thing", headers=app_client.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "notfound"
    wrong = app_client.client.delete("/healthz")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "usageerror"


def test_every_mapped_status_is_an_error_status() -> None:
    assert all(400 <= status < 600 for status in STATUS.values())


# -- health ----------------------------------------------------------------------------------------------------


def test_healthz_and_readyz_answer_with_each_check(app_client: AppClient) -> None:
    assert app_client.client.get("/healthz").json() == {"status": "alive"}
    ready = app_client.client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["provider"] == "local"
    assert set(body["checks"]) == {"store", "provider", "locks"}
    for check in body["checks"].values():
        assert check["status"] == "ok" and check["ms"] >= 0


def test_readyz_is_503_naming_the_failed_check_when_the_store_breaks(
    app_client: AppClient, runvoy_home: Path
) -> None:
    for leftover in runvoy_home.glob("state.db*"):
        leftover.unlink()
    (runvoy_home / "state.db").write_bytes(b"this is not a database" * 100)
    answer = app_client.client.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unready"
    failed = {name: c for name, c in body["checks"].items() if c["status"] == "failed"}
    assert "store" in failed and failed["store"]["error"] == "DatabaseError"
    assert "not a database" not in answer.text  # the message is logged, not shown to an unauthenticated probe


# -- behind a proxy ------------------------------------------------------------------------------------------


def _sign_in_from(app: object, peer: str, forwarded: str) -> int:
    import anyio
    import httpx

    async def call() -> int:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://runvoy") as client:
            answer = await client.get("/v1/test/number?n=1", headers={"X-Forwarded-For": forwarded})
            return answer.status_code

    return anyio.run(call)


def test_forwarded_addresses_are_believed_from_trusted_proxies_only(make_app: MakeApp) -> None:
    app = make_app(routers=(probe,), trusted_proxies=["10.0.0.0/8"])
    assert _sign_in_from(app.app, "10.1.2.3", "203.0.113.7") == 401
    assert _sign_in_from(app.app, "192.0.2.1", "203.0.113.8") == 401
    assert [e["address"] for e in audit_entries(app.app)] == ["203.0.113.7", "192.0.2.1"]


def test_forwarded_headers_are_ignored_without_trusted_proxies(make_app: MakeApp) -> None:
    app = make_app(routers=(probe,))
    assert _sign_in_from(app.app, "127.0.0.1", "203.0.113.9") == 401
    assert [e["address"] for e in audit_entries(app.app)] == ["127.0.0.1"]


def test_a_run_submitted_through_the_server_records_the_request_id(app_client: AppClient) -> None:
    answer = app_client.client.post(
        "/v1/executions",
        json={"command": "true"},
        headers={**app_client.headers, "X-Request-ID": "trace-submit-7"},
    )
    assert answer.status_code == 201, answer.text
    execution_id = answer.json()["id"]
    assert answer.json()["request_id"] == "trace-submit-7"
    stored = app_client.app.state.runvoy.engine.get(execution_id)
    assert stored.request_id == "trace-submit-7" and stored.user == "admin"
    audited = [e for e in audit_entries(app_client.app) if e["request_id"] == "trace-submit-7"]
    assert audited, "the submit's audit entry carries the request id"


def test_a_websocket_is_refused_before_anything(app_client: AppClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as closed, app_client.client.websocket_connect("/v1/info"):
        pass
    assert closed.value.code == 1008


# -- second factor -------------------------------------------------------------------------------------------


def test_require_totp_for_admin_reaches_the_permission_checks(make_app: MakeApp) -> None:
    from runvoy_core.models import utcnow
    from runvoy_core.team.totp import SecondFactor, code_at

    app = make_app(require_totp_for_admin=True)
    user = {"name": "dana", "role": "viewer", "team": "data"}
    without = app.client.post("/v1/users", json=user, headers=app.headers)
    assert without.status_code == 403 and without.json()["error"]["code"] == "accessdenied"
    enrolment = SecondFactor(app.app.state.runvoy.documents).enroll("admin")
    now = utcnow()
    window = {code_at(enrolment.secret, now, steps=step) for step in (-1, 0, 1)}
    wrong_code = next(c for c in ("000000", "111111", "222222", "333333") if c not in window)
    wrong = app.client.post("/v1/users", json=user, headers={**app.headers, "X-Runvoy-TOTP": wrong_code})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalidtoken"
    code = code_at(enrolment.secret, utcnow())
    allowed = app.client.post("/v1/users", json=user, headers={**app.headers, "X-Runvoy-TOTP": code})
    assert allowed.status_code == 201, allowed.text
