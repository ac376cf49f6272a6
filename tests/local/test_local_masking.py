"""The local provider masks secrets where it captures output (decision 1901): the log file on disk never holds
a secret's value, whatever chunks the supervisor reads it in."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from runvoy_core.models import new_execution_id
from runvoy_core.ports.compute import TaskSpec
from runvoy_core.providers.local.provider import LocalProvider
from runvoy_core.testing.waiting import DEADLINE

VALUE = "pa55-w0rd-of-the-day"
LINES = ["-----BEGIN KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "-----END KEY-----"]


@pytest.fixture
def provider(runvoy_home: Path) -> Iterator[LocalProvider]:
    local = LocalProvider(runvoy_home)
    yield local
    local.close()


def _run(provider: LocalProvider, command: str, secrets: list[str]) -> list[str]:
    eid = new_execution_id()
    spec = TaskSpec(
        execution_id=eid, argv=["/bin/sh", "-c", command], env={"RUNVOY_EXECUTION_ID": eid}, secrets=secrets
    )
    ref = provider.compute.start(spec, eid)
    assert provider.compute.wait(ref, DEADLINE).ended
    return [event.message for event in provider.logs.read(ref, limit=10_000).events]


def _on_disk(runvoy_home: Path) -> bytes:
    return b"".join(path.read_bytes() for path in runvoy_home.rglob("*") if path.is_file())


def test_the_value_and_its_encodings_are_masked_before_they_are_stored(
    provider: LocalProvider, runvoy_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", VALUE)
    lines = _run(
        provider,
        'echo "token=$API_TOKEN"; printf "user:%s" "$API_TOKEN" | base64; echo "$API_TOKEN" >&2; echo plain',
        ["API_TOKEN"],
    )
    # the base64 line keeps what encodes "user:" and the padding: only the secret's characters go
    assert sorted(lines) == sorted(["token=***", "dXNlcjp***Q==", "***", "plain"])
    provider.close()
    stored = _on_disk(runvoy_home)
    assert VALUE.encode() not in stored
    assert base64.b64encode(f"user:{VALUE}".encode()).rstrip(b"=")[8:20] not in stored


def test_a_secret_split_across_reads_and_lines_is_masked(
    provider: LocalProvider, runvoy_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command writes the value in pieces (each ``printf`` may reach the supervisor as its own read) and
    a secret of several lines: none of it is stored, whatever the reads were."""
    monkeypatch.setenv("API_TOKEN", VALUE)
    monkeypatch.setenv("TLS_KEY", "\n".join(LINES))
    command = (
        'i=0; while [ $i -lt ${#API_TOKEN} ]; do printf "%s" "$(printf "%s" "$API_TOKEN" | cut -c$((i+1)))"; '
        'i=$((i+1)); done; echo; printf "%s\\n" "$TLS_KEY"; echo after'
    )
    lines = _run(provider, command, ["API_TOKEN", "TLS_KEY"])
    assert lines[0] == "***" and lines[-1] == "after"
    provider.close()
    stored = _on_disk(runvoy_home)
    assert VALUE.encode() not in stored
    for line in LINES:
        assert line.encode() not in stored
