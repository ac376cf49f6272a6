"""The fakes themselves: requests that do not match the official discovery documents are refused the way a
Google API refuses them, and the real clients' requests are accepted."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from google.api_core import exceptions as gexc
from google.cloud import run_v2
from runvoy_gcp_testfakes.discovery import DiscoveryValidator, RequestRejected
from runvoy_gcp_testfakes.logging_filter import compile_filter


def raw(endpoint: str, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(endpoint + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


JOB = {"template": {"template": {"containers": [{"image": "python:3.12-slim"}]}}}


def test_valid_raw_request_is_accepted(fake_run, project) -> None:
    status, body = raw(
        fake_run.endpoint, "POST", f"/v2/projects/{project}/locations/r/jobs?jobId=ok-job", JOB
    )
    assert status == 200 and body["done"] is True


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "needle"),
    [
        (
            "POST",
            "/v2/projects/P/locations/r/jobs?jobId=j1",
            {"template": {"bogus": 1}},
            400,
            'Unknown name "bogus"',
        ),
        (
            "POST",
            "/v2/projects/P/locations/r/jobs?jobId=j1",
            {"template": {"taskCount": "many"}},
            400,
            "taskCount",
        ),
        (
            "POST",
            "/v2/projects/P/locations/r/jobs?jobId=j1",
            {"template": {"template": {"timeout": "ten minutes", "containers": []}}},
            400,
            "timeout",
        ),
        ("POST", "/v2/projects/P/locations/r/jobs?jobId=j1", {"launchStage": "SHINY"}, 400, "launchStage"),
        ("POST", "/v2/projects/P/locations/r/jobs?jobId=j1&colour=blue", JOB, 400, "colour"),
        (
            "POST",
            "/v2/projects/P/locations/r/jobs/j1:run",
            {"overrides": {"containerOverrides": [{"argz": []}]}},
            400,
            "argz",
        ),
        ("GET", "/v2/projects/P/locations/r/jobs/j1/frobnicate", None, 404, "not found"),
        ("PUT", "/v2/projects/P/locations/r/jobs/j1", JOB, 405, "not allowed"),
        ("DELETE", "/v2/projects/P/locations/r/jobs", None, 405, "not allowed"),
        ("GET", "/v2/projects/P/locations/r/jobs/j1/executions/e1/tasks?pageSize=ten", None, 400, "pageSize"),
    ],
)
def test_requests_outside_the_discovery_document_are_refused(
    fake_run, method, path, body, code, needle
) -> None:
    status, answer = raw(fake_run.endpoint, method, path, body)
    assert status == code, answer
    error = answer["error"]
    assert error["code"] == code and error["status"] and needle.lower() in error["message"].lower()


def test_logging_request_outside_the_document_is_refused(fake_logging) -> None:
    status, answer = raw(
        fake_logging.endpoint, "POST", "/v2/entries:list", {"resourceNames": ["projects/p"], "sort": 1}
    )
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    status, answer = raw(
        fake_logging.endpoint,
        "POST",
        "/v2/entries:list",
        {"resourceNames": ["projects/p"], "pageSize": "lots"},
    )
    assert status == 400


def test_invalid_filter_is_refused(fake_logging) -> None:
    status, answer = raw(
        fake_logging.endpoint,
        "POST",
        "/v2/entries:list",
        {"resourceNames": ["projects/p"], "filter": 'timestamp>="yesterday"'},
    )
    assert status == 400 and "timestamp" in answer["error"]["message"]


def test_errors_map_to_api_core_exceptions_through_the_real_client(fake_run, project) -> None:
    client = run_v2.JobsClient(
        transport="rest",
        client_options={"api_endpoint": fake_run.endpoint},
        credentials=__import__("google.auth.credentials").auth.credentials.AnonymousCredentials(),
    )
    with pytest.raises(gexc.NotFound):
        client.get_job(name=f"projects/{project}/locations/r/jobs/none")
    bad = run_v2.Job(template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(containers=[])))
    with pytest.raises(gexc.BadRequest):
        client.create_job(parent=f"projects/{project}/locations/r", job=bad, job_id="j")


def test_validator_knows_integer_enums_and_int64_strings() -> None:
    v = DiscoveryValidator("run.v2.json")
    method = v.match("POST", "/v2/projects/p/locations/r/jobs")
    v.check_body(method, {"launchStage": 6, "template": {"taskCount": 1}})
    with pytest.raises(RequestRejected):
        v.check_body(method, {"launchStage": 99})
    get = v.match("GET", "/v2/projects/p/locations/r/jobs/j/executions/e")
    assert get.id == "run.projects.locations.jobs.executions.get"
    assert get.params == {"name": "projects/p/locations/r/jobs/j/executions/e"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('resource.type="cloud_run_job"', True),
        ('resource.type="gce_instance"', False),
        ('labels."run.googleapis.com/execution_name"="e1" AND textPayload:"HELLO"', True),
        ('timestamp>"2026-01-01T00:00:00.000000001Z"', True),
        ('timestamp>"2026-01-01T00:00:00.000000002Z"', False),
        ('timestamp="2026-01-01T00:00:00.000000002Z" AND insertId>"a"', True),
        ('(timestamp>"2027-01-01T00:00:00Z" OR insertId>"a") AND NOT severity="ERROR"', True),
        ('-resource.type="cloud_run_job"', False),
    ],
)
def test_filter_subset(expression: str, expected: bool) -> None:
    entry = {
        "resource": {"type": "cloud_run_job", "labels": {"job_name": "j"}},
        "labels": {"run.googleapis.com/execution_name": "e1"},
        "textPayload": "say hello",
        "timestamp": "2026-01-01T00:00:00.000000002Z",
        "insertId": "b",
        "severity": "DEFAULT",
    }
    assert compile_filter(expression)(entry) is expected
