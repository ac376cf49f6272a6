"""Helpers for the aws tests: wait for a task, inject faults and count API calls through botocore events."""

from __future__ import annotations

import collections
import json
from typing import Any

import botocore.awsrequest
import botocore.exceptions
import requests

from runvoy_core.ports import TaskState
from runvoy_core.testing.waiting import DEADLINE, wait_for

REGION = "us-east-1"


def reset_moto(endpoint: str) -> None:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    # tasks advance only when the simulator says so (moto would step them to STOPPED per describe)
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
        timeout=10,
    ).raise_for_status()


def config_dict(endpoint: str, **overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "region": REGION,
        "endpoint_url": endpoint,
        "bucket": "runvoy-test-archive",
        "max_attempts": 3,
        "read_timeout": 10.0,
        "poll_interval_min": 0.05,
        # the suite reads far faster than ECS's and CloudWatch's quotas allow: test_aws_quotas.py keeps to them
        "rate_limits": {
            "ecs.DescribeTasks": 10_000.0,
            "ecs.ListTasks": 10_000.0,
            "logs.GetLogEvents": 10_000.0,
        },
    }
    base.update(overrides)
    return base


def wait_ended(provider: Any, ref: str, timeout: float = DEADLINE) -> TaskState:
    state: TaskState = wait_for(
        lambda: (s := provider.compute.describe(ref)).ended and s, what=f"task {ref} to end", timeout=timeout
    )
    return state


def wait_running(provider: Any, ref: str, timeout: float = DEADLINE) -> TaskState:
    state: TaskState = wait_for(
        lambda: (s := provider.compute.describe(ref)).phase.value in ("RUNNING", "STOPPED") and s,
        what=f"task {ref} to run",
        timeout=timeout,
    )
    return state


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _event_name(client: Any, operation: str) -> str:
    return f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"


def inject_error(
    client: Any,
    operation: str,
    times: int,
    *,
    code: str = "ThrottlingException",
    status: int = 400,
    message: str = "Rate exceeded",
) -> list[int]:
    """Answer the next ``times`` calls of ``operation`` with an AWS error (never reaching moto).
    Returns a one-element list counting the injected answers."""
    injected = [0]

    def handler(request: Any, **_: Any) -> Any:
        if injected[0] >= times:
            return None
        injected[0] += 1
        body = json.dumps({"__type": code, "message": message}).encode()
        return botocore.awsrequest.AWSResponse(
            request.url, status, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body)
        )

    client.meta.events.register(_event_name(client, operation), handler)
    return injected


def timeout_after_success(client: Any, operation: str, times: int = 1) -> list[int]:
    """The next ``times`` calls reach moto (and take effect) but the client sees a read timeout."""
    done = [0]

    def handler(request: Any, **_: Any) -> Any:
        if done[0] >= times:
            return None
        done[0] += 1
        requests.post(request.url, data=request.body, headers=dict(request.headers), timeout=10)
        raise botocore.exceptions.ReadTimeoutError(endpoint_url=request.url)

    client.meta.events.register(_event_name(client, operation), handler)
    return done


class CallCounter:
    """Counts API calls (operation names) made through the given clients, via ``before-call`` events."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()

        def handler(model: Any, **_: Any) -> None:
            self.calls[f"{service}:{model.name}"] += 1

        client.meta.events.register(f"before-call.{service}", handler)

    def attach_provider(self, provider: Any) -> None:
        def handler(model: Any, **_: Any) -> None:
            self.calls[f"{model.service_model.service_id.hyphenize()}:{model.name}"] += 1

        provider.clients.register("before-call", handler)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def of(self, operation: str) -> int:
        return sum(n for name, n in self.calls.items() if name.endswith(":" + operation))


class MissingAnswers:
    """DescribeTasks answered as ECS does while it is not yet consistent after RunTask: no task, a
    ``MISSING`` failure, for the next ``times`` calls (every call when None, until ``stop()``)."""

    def __init__(self, client: Any, times: int | None) -> None:
        self.count = 0
        self._times = times
        self._stopped = False
        client.meta.events.register(_event_name(client, "DescribeTasks"), self._answer)

    def stop(self) -> None:
        self._stopped = True

    def _answer(self, request: Any, **_: Any) -> Any:
        if self._stopped or (self._times is not None and self.count >= self._times):
            return None
        self.count += 1
        arns = json.loads(request.body or b"{}").get("tasks") or []
        body = json.dumps({"tasks": [], "failures": [{"arn": arn, "reason": "MISSING"} for arn in arns]})
        return botocore.awsrequest.AWSResponse(
            request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body.encode())
        )
