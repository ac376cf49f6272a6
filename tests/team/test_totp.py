"""The TOTP second factor (runvoy_core.team.totp, decision 1510): RFC 6238 codes, a window of one step either
side, no code accepted twice (also by two verifiers on one store at once), a lockout after failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core.errors import AlreadyExists, NotFound
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.providers.local.store import LocalStore
from runvoy_core.team.totp import (
    LOCKOUT,
    MAX_FAILURES,
    NAMESPACE,
    STEP,
    SecondFactor,
    check_code,
    code_at,
)
from runvoy_core.team.users import Directory
from runvoy_core.testing.memory_documents import MemoryDocumentStore

T0 = datetime(2026, 6, 1, 12, 0, 10, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "memory":
        yield MemoryDocumentStore()
    else:
        local = LocalStore(tmp_path / "home")
        yield local
        local.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _enrolled(store: DocumentStore, clock: Clock, user: str = "alice") -> tuple[SecondFactor, str]:
    factor = SecondFactor(store, clock=clock)
    return factor, factor.enroll(user).secret


def _wrong(secret: str, now: datetime) -> str:
    """A code that is none of the three accepted now."""
    valid = {code_at(secret, now, steps=s) for s in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def test_codes_are_rfc_6238() -> None:
    # RFC 6238 appendix B, SHA-1, the last six of its eight digits
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    for seconds, code in ((59, "287082"), (1111111109, "081804"), (1234567890, "005924")):
        assert code_at(secret, datetime.fromtimestamp(seconds, UTC)) == code


def test_enrolment_shows_the_secret_once_and_keeps_it_in_the_store(
    store: DocumentStore, clock: Clock
) -> None:
    factor = SecondFactor(store, directory=None, clock=clock)
    enrolment = factor.enroll("alice")
    assert len(enrolment.secret) == 32 and enrolment.secret.isalnum()
    assert (
        enrolment.uri.startswith("otpauth://totp/runvoy:alice?")
        and f"secret={enrolment.secret}" in enrolment.uri
    )
    assert enrolment.secret not in repr(enrolment) and enrolment.secret not in str(enrolment)
    assert factor.is_enrolled("alice") and not factor.is_enrolled("bob")
    with pytest.raises(AlreadyExists):
        factor.enroll("alice")
    replaced = factor.enroll("alice", replace=True)
    assert replaced.secret != enrolment.secret
    assert not factor.verify("alice", code_at(enrolment.secret, clock.now))
    assert factor.verify("alice", code_at(replaced.secret, clock.now))
    factor.remove("alice")
    assert not factor.is_enrolled("alice") and not factor.verify("alice", code_at(replaced.secret, clock.now))
    with pytest.raises(NotFound):
        factor.remove("alice")


def test_enrolment_through_the_directory_needs_an_account(store: DocumentStore, clock: Clock) -> None:
    directory = Directory(store)
    directory.create("root", role="admin", team="ops")
    factor = SecondFactor(store, directory=directory, clock=clock)
    assert factor.enroll("root").user == "root"
    with pytest.raises(NotFound):
        factor.enroll("ghost")


def test_a_code_is_accepted_once(store: DocumentStore, clock: Clock) -> None:
    factor, secret = _enrolled(store, clock)
    code = code_at(secret, clock.now)
    assert factor.verify("alice", code)
    assert not factor.verify("alice", code)  # replayed within its window
    clock.now += timedelta(seconds=STEP)
    assert not factor.verify("alice", code)  # still inside the window one step later: used already
    assert factor.verify("alice", code_at(secret, clock.now))


def test_one_step_either_side_and_no_further(store: DocumentStore, clock: Clock) -> None:
    factor, secret = _enrolled(store, clock)
    assert not factor.verify("alice", code_at(secret, clock.now, steps=-2))
    assert not factor.verify("alice", code_at(secret, clock.now, steps=2))
    assert factor.verify("alice", code_at(secret, clock.now, steps=-1))
    assert factor.verify("alice", code_at(secret, clock.now, steps=1))
    # a code of an earlier step than one accepted is refused, even unused (RFC 6238 section 5.2)
    assert not factor.verify("alice", code_at(secret, clock.now))


def test_anything_but_a_right_code_is_refused(store: DocumentStore, clock: Clock) -> None:
    factor, secret = _enrolled(store, clock)
    right = code_at(secret, clock.now)
    assert not factor.verify("bob", right)  # not enrolled
    assert not factor.verify("Not A Name!", right)
    for attempt in (_wrong(secret, clock.now), right[:5], right + "0", "", None, 123456, "abcdef", "٣" * 6):
        assert not factor.verify("alice", attempt)
        clock.now += timedelta(seconds=LOCKOUT + 1)  # each alone, not a run of failures that locks out
    right = code_at(secret, clock.now)
    assert factor.verify("alice", f"{right[:3]} {right[3:]}")  # as authenticator apps show it


def test_failures_in_a_row_lock_the_codes_out_for_a_while(store: DocumentStore, clock: Clock) -> None:
    factor, secret = _enrolled(store, clock)
    for _ in range(MAX_FAILURES):
        assert not factor.verify("alice", _wrong(secret, clock.now))
    assert not factor.verify("alice", code_at(secret, clock.now))  # right, but locked out
    clock.now += timedelta(seconds=LOCKOUT + 1)
    assert factor.verify("alice", code_at(secret, clock.now))
    doc = store.get_document(NAMESPACE, "alice")
    assert doc is not None and doc.value["failures"] == 0


def test_concurrent_verifiers_accept_a_code_once(store: DocumentStore, clock: Clock) -> None:
    """Eight verifiers (as replicas of a server would be) given one code at once: one accepts it."""
    _, secret = _enrolled(store, clock)
    code = code_at(secret, clock.now)
    verifiers = 8
    barrier = threading.Barrier(verifiers)
    results: list[bool] = []

    def check() -> None:
        factor = SecondFactor(store, clock=clock)
        barrier.wait()
        results.append(factor.verify("alice", code))

    threads = [threading.Thread(target=check) for _ in range(verifiers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * (verifiers - 1) + [True]


@settings(max_examples=200, deadline=None)
@given(code=st.one_of(st.text(max_size=40), st.integers(), st.none(), st.binary(max_size=8)))
def test_check_code_takes_six_ascii_digits_only(code: object) -> None:
    checked = check_code(code)
    if checked is not None:
        assert len(checked) == 6 and checked.isascii() and checked.isdigit()
        assert isinstance(code, str) and code.replace(" ", "") == checked


@settings(max_examples=50, deadline=None)
@given(code=st.text(max_size=12))
def test_a_random_code_never_raises(code: str) -> None:
    store = MemoryDocumentStore()
    clock = Clock()
    factor, secret = _enrolled(store, clock)
    assert factor.verify("alice", code) is (
        check_code(code) is not None
        and check_code(code) in {code_at(secret, clock.now, steps=s) for s in (-1, 0, 1)}
    )


def test_the_module_verify_is_what_a_server_calls(store: DocumentStore, clock: Clock) -> None:
    from runvoy_core.team import totp

    enrolment = SecondFactor(store).enroll("alice")
    code = code_at(enrolment.secret, datetime.now(UTC))
    assert totp.verify(store, "alice", code)  # a step either side covers the moment between the two lines
    assert not totp.verify(store, "alice", code)
    assert not totp.verify(store, "alice", "12345")


def test_the_cli_enrolls_and_removes_on_the_store(runvoy_home: Path) -> None:
    runvoy = str(Path(sys.executable).parent / "runvoy")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [runvoy, "totp", *args], capture_output=True, text=True, timeout=120, env=os.environ.copy()
        )

    local = LocalStore(runvoy_home)
    Directory(local).create("root", role="admin", team="ops")
    done = cli("enroll", "root", "--json")
    assert done.returncode == 0, done.stderr
    secret = json.loads(done.stdout)["secret"]
    assert SecondFactor(local).verify("root", code_at(secret, datetime.now(UTC)))
    again = cli("enroll", "root")
    assert again.returncode == 125 and "--replace" in again.stderr
    replaced = cli("enroll", "root", "--replace")
    assert replaced.returncode == 0 and "otpauth://totp/runvoy:root?" in replaced.stdout
    assert secret not in replaced.stdout
    assert cli("enroll", "nobody").returncode == 125
    assert cli("remove", "root").returncode == 0
    assert not SecondFactor(local).is_enrolled("root")
    gone = cli("remove", "root")
    assert gone.returncode == 125 and "Traceback" not in gone.stderr
    local.close()
