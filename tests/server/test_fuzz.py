"""Every operation of ``/v1/openapi.json`` fuzzed against a running ``runvoy server`` with an admin key
(schemathesis, decision 1520): valid and invalid inputs alike, no answer is a 5xx, and every answer conforms
to the schema (its body to the documented schema of its status, its content type to the documented one).

Deterministic and bounded: hypothesis derandomized, a fixed number of examples per operation. A command the
fuzz would run is replaced by ``true`` first: the fuzz exercises the API, not this machine's shell.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from tests.server._team import OPEN, write_config
from tests.server.conftest import RunningServer, launch, new_token, wait_ready

EXAMPLES = 25
"""Per operation and generation mode (valid, invalid): about 2,000 requests, a few minutes at most on a
loaded 2-core machine."""
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]
"""Invalid input (outside the schema) must also be refused with a 4xx, not acted on: checked on the admin
operations. The run routes' bodies are strict too (tests/server/test_routes_schema.py checks that they do not
coerce), but schemathesis generates run bodies over the 1 MiB body limit whose 413 its check does not count as
a refusal."""


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("fuzz-home")
    token = new_token()
    process, seen, lines, reader = launch(
        home, token=token, env={"RUNVOY_CONFIG": str(write_config(home, OPEN))}
    )
    try:
        server = wait_ready(process, seen, lines, reader, token)
        yield server
        assert not [line for line in server.lines if "Traceback" in line], server.lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _harmless(case: Any) -> None:
    """What a generated run would run is ``true``; everything else about the request stays as generated."""
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("command"), str):
        body["command"] = "true"
    if isinstance(body.get("argv"), list) and body["argv"]:
        body["argv"] = ["true"]
    if isinstance(body.get("text"), str) and "steps" in body["text"]:
        body["text"] = "steps:\n  - run: 'true'\n"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_operation_answers_a_5xx_or_off_its_schema(
    fuzzed_server: RunningServer, mode: GenerationMode
) -> None:
    # one test looping over the operations (not schemathesis' pytest loader, which does not follow pytest 9's
    # node ids): a failing operation is reported with its failing request, and the others still run
    api = schemathesis.openapi.from_url(fuzzed_server.url + "/v1/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 40, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded in time, the failing case shown
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            _harmless(case)
            checks = NEGATIVE_CHECKS if case.operation.definition.raw.get("tags") == ["admin"] else CHECKS
            case.call_and_validate(headers=fuzzed_server.headers, checks=checks, timeout=120)

        try:
            fuzz()
        except Unsatisfiable:
            # nothing of this operation can be made invalid (no parameters, no body): the valid run covers it
            if mode is not GenerationMode.NEGATIVE:
                failures.append(f"{operation.label}: no request could be generated")
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports its findings as a group
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
