"""``runvoy audit verify|export`` on the local provider's store (the state.db a laptop server uses), through the
real console script, and the accepted forms of their options (runvoy_core.inputs: AUDIT_TIME, AUDIT_ANCHOR)."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core import inputs
from runvoy_core.providers.local.store import LocalStore
from runvoy_core.team.audit import COLUMNS, NAMESPACE, AuditLog, entry_hash, entry_key
from runvoy_core.team.context import Caller

RUNVOY = str(Path(sys.executable).parent / "runvoy")
ALICE = Caller("alice", "user", "admin", "ops")
BASE = datetime(2026, 11, 1, tzinfo=UTC)


def runvoy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNVOY, *args], capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=False
    )


@pytest.fixture
def store(runvoy_home: Path) -> Iterator[LocalStore]:
    local = LocalStore(runvoy_home)
    moments = iter(BASE + timedelta(days=d) for d in range(10))
    log = AuditLog(local, clock=lambda: next(moments))
    for day in range(10):
        log.append("run", f"execution/d{day}", "allowed", caller=ALICE, request_id=f"req-{day}")
    yield local
    local.close()


def test_verify_an_intact_chain(store: LocalStore) -> None:
    done = runvoy("audit", "verify")
    assert done.returncode == 0, done.stderr
    assert "intact" in done.stdout and "entries:    10" in done.stdout
    last = AuditLog(store).verify()
    assert last.last_hash in done.stdout and f"--anchor 10:{last.last_hash}" in done.stderr
    as_json = json.loads(runvoy("audit", "verify", "--json").stdout)
    assert as_json["ok"] is True and as_json["entries"] == 10 and as_json["problem"] is None
    anchored = runvoy("audit", "verify", "--anchor", f"10:{last.last_hash}")
    assert anchored.returncode == 0, anchored.stderr


def test_verify_reports_a_tampered_chain_with_exit_1(store: LocalStore) -> None:
    doc = store.get_document(NAMESPACE, entry_key(4))
    assert doc is not None
    store.put_document(NAMESPACE, entry_key(4), dict(doc.value, outcome="denied"), version=doc.version)
    done = runvoy("audit", "verify")
    assert done.returncode == 1
    assert "BROKEN (edited)" in done.stdout
    assert "error: audit log broken at entry 4" in done.stderr and "Traceback" not in done.stderr
    report = json.loads(runvoy("audit", "verify", "--json").stdout)
    assert report["ok"] is False and report["problem"]["kind"] == "edited" and report["problem"]["seq"] == 4


def test_a_rewritten_chain_fails_its_anchor(store: LocalStore) -> None:
    kept = AuditLog(store).verify()
    doc = store.get_document(NAMESPACE, entry_key(10))
    head = store.get_document(NAMESPACE, "head")
    assert doc is not None and head is not None
    value = dict(doc.value, actor="mallory")
    value["hash"] = entry_hash(value)
    store.put_document(NAMESPACE, entry_key(10), value, version=doc.version)
    store.put_document(NAMESPACE, "head", dict(head.value, hash=value["hash"]), version=head.version)
    assert runvoy("audit", "verify").returncode == 0  # rewritten with the head: what an anchor is for
    done = runvoy("audit", "verify", "--anchor", f"10:{kept.last_hash}")
    assert done.returncode == 1 and "entry 10" in done.stderr


def test_export_a_range_as_jsonl_and_csv(store: LocalStore, tmp_path: Path) -> None:
    done = runvoy("audit", "export", "--since", "2026-11-03", "--until", "2026-11-06T00:00:00Z")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["resource"] for line in lines] == ["execution/d2", "execution/d3", "execution/d4"]
    assert all(entry_hash(line) == line["hash"] for line in lines)
    target = tmp_path / "audit.csv"
    done = runvoy("audit", "export", "--format", "csv", "--output", str(target))
    assert done.returncode == 0, done.stderr
    assert "exported 10 audit entries" in done.stderr and done.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    rows = list(csv.reader(io.StringIO(target.read_text())))
    assert rows[0] == list(COLUMNS) and len(rows) == 11
    assert runvoy("audit", "export", "--since", "3650d").stdout.count("\n") == 10
    assert runvoy("audit", "export", "--since", "1s").stdout == ""  # the entries are of 2026-11


@pytest.mark.parametrize(
    "args",
    [
        ["export", "--since", "2026-11-05", "--until", "2026-11-01"],
        ["export", "--since", "yesterday"],
        ["export", "--until", "2026-02-30"],
        ["export", "--format", "xml"],
        ["verify", "--anchor", "10:abc"],
        ["verify", "--anchor", "0:" + "0" * 64],
        ["export", "--output", "/nonexistent-runvoy/audit.jsonl"],
    ],
)
def test_bad_options_are_refused_by_name(store: LocalStore, args: list[str]) -> None:
    done = runvoy("audit", *args)
    assert done.returncode in (2, 125), done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith(("error:", "Usage:"))


# -- the accepted forms (properties) ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31)))
def test_any_date_in_range_is_an_audit_time(moment: datetime) -> None:
    for text in (
        moment.strftime("%Y-%m-%d"),
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
    ):
        parsed = inputs.AUDIT_TIME.parse(text)
        assert isinstance(parsed, datetime) and parsed.tzinfo is not None
    assert inputs.AUDIT_TIME.parse(moment.strftime("%Y-%m-%dT%H:%M:%S")) == moment.replace(
        microsecond=0, tzinfo=UTC
    )


@settings(max_examples=200, deadline=None)
@given(seconds=st.integers(1, 3650 * 86400))
def test_a_duration_is_back_from_now(seconds: int) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert inputs.audit_time(f"{seconds}s", now) == now - timedelta(seconds=seconds)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_an_audit_time_is_a_bounded_duration_or_date(text: str) -> None:
    try:
        parsed = inputs.AUDIT_TIME.parse(text)
    except ValueError as exc:
        assert text not in ("1s", "7d")
        assert str(exc)
        return
    if isinstance(parsed, float):
        assert 1 <= parsed <= 3650 * 86400
    else:
        assert isinstance(parsed, datetime) and 2000 <= parsed.year <= 2999


@settings(max_examples=300, deadline=None)
@given(seq=st.integers(-5, 10**13), digest=st.text("0123456789abcdefABCDEF", min_size=60, max_size=68))
def test_an_anchor_is_a_seq_and_a_lowercase_sha256(seq: int, digest: str) -> None:
    text = f"{seq}:{digest}"
    accepted = 1 <= seq <= 10**12 - 1 and len(digest) == 64 and digest == digest.lower()
    if accepted:
        assert inputs.AUDIT_ANCHOR.parse(text) == (seq, digest)
    else:
        with pytest.raises(ValueError):
            inputs.AUDIT_ANCHOR.parse(text)


@settings(max_examples=200, deadline=None)
@given(code=st.one_of(st.text(max_size=12), st.from_regex(r"[0-9 ]{6,9}", fullmatch=True)))
def test_a_totp_code_is_six_digits_and_never_echoed(code: str) -> None:
    try:
        parsed = inputs.TOTP_CODE.parse(code)
    except ValueError as exc:
        assert str(exc) == "this is not a one-time password (6 digits)"
        return
    assert len(parsed) == 6 and parsed.isascii() and parsed.isdigit()
