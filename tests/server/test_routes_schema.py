"""The run routes answer what their OpenAPI schema says (decision 1516): records as their msgspec JSON,
described by the JSON Schema msgspec derives from the same classes; event streams with the documented names."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from runvoy_core.remote import sse
from tests.server.conftest import AppClient


def _schema(doc: dict[str, Any], method: str, path: str, status: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["paths"][path][method]["responses"][status]["content"]["application/json"][
        "schema"
    ]
    assert "$ref" not in str(schema), "a record's schema is self-contained"
    return schema


def _check(doc: dict[str, Any], method: str, path: str, answer: Any, status: str = "200") -> Any:
    assert str(answer.status_code) == status, answer.text
    body = answer.json()
    Draft202012Validator(_schema(doc, method, path, status)).validate(body)
    return body


def test_answers_match_the_openapi_schema(app_client: AppClient) -> None:
    client, headers = app_client.client, app_client.headers
    doc = client.get("/v1/openapi.json").json()
    one = "/v1/executions/{execution_id}"
    created = _check(
        doc,
        "post",
        "/v1/executions",
        client.post(
            "/v1/executions", json={"command": "echo hi; exit 2", "labels": {"k": "v"}}, headers=headers
        ),
        "201",
    )
    execution_id = created["id"]
    ended = _check(
        doc,
        "post",
        one + "/wait",
        client.post(f"/v1/executions/{execution_id}/wait", json={"timeout": 30}, headers=headers),
    )
    assert (ended["status"], ended["exit_code"]) == ("FAILED", 2)
    _check(doc, "get", one, client.get(f"/v1/executions/{execution_id[:6]}", headers=headers))
    _check(doc, "get", one + "/status", client.get(f"/v1/executions/{execution_id}/status", headers=headers))
    _check(doc, "get", one + "/events", client.get(f"/v1/executions/{execution_id}/events", headers=headers))
    page = _check(
        doc, "get", one + "/logs", client.get(f"/v1/executions/{execution_id}/logs", headers=headers)
    )
    assert [e["message"] for e in page["events"]] == ["hi"]
    listed = _check(
        doc, "get", "/v1/executions", client.get("/v1/executions?label=k=v&status=FAILED", headers=headers)
    )
    assert [e["id"] for e in listed["executions"]] == [execution_id]
    _check(
        doc,
        "post",
        one + "/kill",
        client.post(f"/v1/executions/{execution_id}/kill", json={}, headers=headers),
    )
    _check(
        doc, "post", "/v1/reconcile", client.post("/v1/reconcile", json={"dry_run": True}, headers=headers)
    )
    _check(doc, "get", "/v1/info", client.get("/v1/info", headers=headers))


def test_an_attached_run_streams_the_documented_events(app_client: AppClient) -> None:
    client, headers = app_client.client, app_client.headers
    with client.stream(
        "POST", "/v1/runs", json={"argv": ["sh", "-c", "echo a; exit 4"]}, headers=headers
    ) as answer:
        assert answer.headers["content-type"].startswith(sse.MEDIA_TYPE)
        events = list(sse.read_events(line.encode() for line in answer.iter_lines()))
    assert [e.name for e in events] == ["started", "log", "end"]
    refused = client.post("/v1/runs", json={"command": "true", "memory": "2GiB"}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validationfailed"
    with client.stream(
        "POST", "/v1/runs", json={"command": "true", "resources": {"memory": "lots"}}, headers=headers
    ) as bad:
        errors = list(sse.read_events(line.encode() for line in bad.iter_lines()))
    # a value only the run's own checks refuse: the stream's one event is the JSON error, as a 422 would say
    assert [e.name for e in errors] == ["error"] and '"validationfailed"' in errors[0].data


def test_bodies_take_their_types_as_documented(app_client: AppClient) -> None:
    client, headers = app_client.client, app_client.headers
    # no coercion: a number is not a flag, text is not a number (what the schema says is what is accepted)
    for path, body in (
        ("/v1/reconcile", {"dry_run": 0.0}),
        ("/v1/executions/abc/kill", {"force": "yes"}),
        ("/v1/executions/abc/wait", {"timeout": "5"}),
        ("/v1/executions", {"command": "true", "lock_slots": "2"}),
        ("/v1/executions", {"command": "true", "unknown": 1}),
    ):
        refused = client.post(path, json=body, headers=headers)
        assert refused.status_code == 422, (path, body, refused.text)
        assert refused.json()["error"]["code"] == "validationfailed"
