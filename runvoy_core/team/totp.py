"""The second factor of admin-only operations: time-based one-time passwords, RFC 6238 (decision 1510).

An account is enrolled with a random secret (160 bits, base32) kept in the document store, namespace ``totp``,
one document per account: the secret, the number of the last 30-second step a code was accepted for, and a
count of failures in a row. A code is accepted for the current step or one step either side (a phone's clock a
little off, a code typed as it changed), once: a code of a step at or before the last accepted one is refused,
and the last step moves by compare-and-swap, so two server replicas cannot both accept one code. After
MAX_FAILURES wrong codes in a row the account's codes are refused for LOCKOUT seconds (a million codes, three
valid at a time: guessing is what this slows down).

The codes are computed by pyotp (in the ``runvoy[server]`` extra: only a server verifies codes), imported
when first needed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from runvoy_core.errors import AlreadyExists, NotFound, UsageError, VersionConflict
from runvoy_core.models import utcnow
from runvoy_core.records import Record

if TYPE_CHECKING:
    from runvoy_core.ports.optional import DocumentStore
    from runvoy_core.team.users import Directory

NAMESPACE = "totp"
HEADER = "X-Runvoy-TOTP"
"""The HTTP header that carries a code to a runvoy server."""
DIGITS = 6
STEP = 30
"""Seconds per code (RFC 6238's default, what every authenticator app uses)."""
WINDOW = 1
"""Steps accepted either side of the current one."""
MAX_FAILURES = 5
LOCKOUT = 300.0
CAS_ATTEMPTS = 20
ISSUER = "runvoy"


class TotpEnrolment(Record, kw_only=True):
    """What enrolling returns, once: the secret and the ``otpauth://`` URI an authenticator app takes (as a
    QR code or typed). Its repr hides both."""

    user: str
    secret: str
    uri: str
    created_at: datetime

    def __repr__(self) -> str:
        return f"TotpEnrolment(user={self.user!r}, secret='***')"

    __str__ = __repr__


def _pyotp() -> Any:
    try:
        import pyotp
    except ImportError:
        raise UsageError(
            "one-time passwords need the runvoy server's extra",
            hint="install it: pip install 'runvoy[server]'",
        ) from None
    return pyotp


def check_code(code: object) -> str | None:
    """The code as 6 ASCII digits (spaces removed: apps show "123 456"), or None when it is not one
    (``runvoy_core.inputs.TOTP_CODE``)."""
    from runvoy_core.inputs import TOTP_CODE

    try:
        digits: str = TOTP_CODE.parse(code)
    except ValueError:
        return None
    return digits


class SecondFactor:
    """Enrolment and verification of TOTP codes over a ``DocumentStore``; no state of its own, so every
    replica of a server sees the same last step and the same failures."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        directory: Directory | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.directory = directory
        self.clock = clock

    def enroll(self, user: str, *, replace: bool = False) -> TotpEnrolment:
        """A new secret for ``user`` (an existing account when a directory is given). An enrolled account
        is refused unless ``replace``: a new secret makes the old authenticator entry useless."""
        if self.directory is not None:
            user = self.directory.show(user).name
        pyotp = _pyotp()
        secret = pyotp.random_base32()
        now = self.clock()
        value = {"secret": secret, "created_at": now.isoformat(), "last_step": None, "failures": 0}
        current = self.store.get_document(NAMESPACE, user)
        if current is None:
            try:
                self.store.put_document(NAMESPACE, user, value)
            except AlreadyExists:
                current = self.store.get_document(NAMESPACE, user)
        if current is not None:
            if not replace:
                raise AlreadyExists(
                    f"{user!r} has a one-time password already",
                    hint="enroll again with --replace (the old authenticator entry stops working)",
                )
            self.store.put_document(NAMESPACE, user, value, version=current.version)
        uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(name=user, issuer_name=ISSUER)
        return TotpEnrolment(user=user, secret=secret, uri=uri, created_at=now)

    def is_enrolled(self, user: str) -> bool:
        return self.store.get_document(NAMESPACE, user) is not None

    def remove(self, user: str) -> None:
        for _ in range(CAS_ATTEMPTS):
            doc = self.store.get_document(NAMESPACE, user)
            if doc is None:
                raise NotFound(
                    f"{user!r} has no one-time password", hint="enroll with: runvoy totp enroll USER"
                )
            try:
                self.store.delete_document(NAMESPACE, user, version=doc.version)
                return
            except VersionConflict:
                continue
        raise VersionConflict(f"the one-time password of {user!r} kept changing while it was being removed")

    def verify(self, user: str, code: object, *, key_id: str | None = None) -> bool:
        """True for a right code of the current step or one step either side, once — or again for the API key
        that used it first (``key_id``: one CLI command sends several requests with one code, and an
        eavesdropper replaying it would also need that key); False for anything else (not enrolled, not 6
        digits, wrong, used already by another key, or too many failures in a row), never raised."""
        given = check_code(code)
        for _ in range(CAS_ATTEMPTS):
            try:
                doc = self.store.get_document(NAMESPACE, user)
            except UsageError:  # a name no document can have (ValidationFailed): no such enrolment
                return False
            if doc is None:
                return False
            state = dict(doc.value)
            now = self.clock()
            failures = int(state.get("failures") or 0)
            if failures >= MAX_FAILURES and _since(state.get("failed_at"), now) < LOCKOUT:
                return False
            step = _matching_step(str(state.get("secret", "")), given, now) if given else None
            last = state.get("last_step")
            if step is not None and key_id is not None and step == last and state.get("last_key") == key_id:
                return True  # the same code again from the key that used it: nothing to record
            if step is not None and (not isinstance(last, int) or step > last):
                state.update(last_step=step, last_key=key_id, failures=0, failed_at=None)
                accepted = True
            else:
                if failures >= MAX_FAILURES:  # the lockout is over: a new run of attempts
                    failures = 0
                state.update(failures=failures + 1, failed_at=now.isoformat())
                accepted = False
            try:
                self.store.put_document(NAMESPACE, user, state, version=doc.version)
            except VersionConflict:
                continue  # another request (maybe another replica) used a code or failed: decide again
            return accepted
        return False


def _since(text: object, now: datetime) -> float:
    if not isinstance(text, str):
        return float("inf")
    try:
        return (now - datetime.fromisoformat(text)).total_seconds()
    except (TypeError, ValueError):
        return float("inf")


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The step of ``now`` (±WINDOW) whose code is ``code``, compared in constant time; None if none."""
    pyotp = _pyotp()
    try:
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
        current = totp.timecode(now)
    except (ValueError, TypeError):
        return None
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            found = step
    return found


def code_at(secret: str, moment: datetime, *, steps: int = 0) -> str:
    """The code of ``secret`` at ``moment`` (shifted by ``steps``), what an authenticator app would show."""
    totp = _pyotp().TOTP(secret, digits=DIGITS, interval=STEP)
    return str(totp.at(moment + timedelta(seconds=STEP * steps)))


def verify(store: DocumentStore, user: str, code: object, *, key_id: str | None = None) -> bool:
    """``SecondFactor(store).verify(user, code, key_id=...)``: what a server checks ``X-Runvoy-TOTP`` with."""
    return SecondFactor(store).verify(user, code, key_id=key_id)
