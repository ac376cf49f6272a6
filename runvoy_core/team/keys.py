"""API keys, kept as documents of the ``keys`` namespace (decision 1506).

A key is ``rvk_<key id: 16 lowercase hex>_<secret: secrets.token_urlsafe(32)>``. Only the sha256 of the
whole token is stored; the token itself exists once, in what ``create``/``rotate`` return. Every
``authenticate`` reads the key's and the user's documents again (no cache), so a revoked key or a disabled
user is refused by every replica from the next request on.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from runvoy_core import inputs
from runvoy_core.errors import InvalidToken, NotFound, ValidationFailed, VersionConflict
from runvoy_core.logging import get_logger
from runvoy_core.models import utcnow
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.records import Record
from runvoy_core.team.context import Caller
from runvoy_core.team.users import CAS_ATTEMPTS, Directory, check_form, read_all

log = get_logger("runvoy.team")

NAMESPACE = "keys"
PREFIX = "rvk_"
TOKEN = re.compile(r"rvk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})", re.ASCII)
"""``secrets.token_urlsafe(32)`` is 32 random bytes as 43 characters of unpadded URL-safe base64."""
DEFAULT_LIFETIME = 90 * 86400.0
DEFAULT_OVERLAP = 86400.0
LAST_USED_EVERY = 60.0
"""``last_used_at`` is written at most this often per key: an authenticated read costs no write."""
_DUMMY_HASH = hashlib.sha256(b"runvoy: no such key").hexdigest()
INVALID = "invalid API key"
"""The one message of every refusal: which check failed would tell a guesser what to try next."""


class KeyInfo(Record, kw_only=True):
    """What is kept and shown of a key: never its secret, nor its hash."""

    id: str
    user: str
    name: str
    created_at: datetime
    expires_at: datetime
    created_by: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    replaced_by: str | None = None
    """Set by ``rotate``: the key that replaces this one (this one then expires at the end of the overlap)."""

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"


class NewKey(Record, kw_only=True):
    """A key just made: ``token`` is shown once and never stored. Its repr hides the token."""

    key: KeyInfo
    token: str

    def __repr__(self) -> str:
        return f"NewKey(key={self.key!r}, token='rvk_{self.key.id}_***')"

    __str__ = __repr__


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """``(key id, token)`` with a fresh random key id and 256-bit secret."""
    key_id = secrets.token_hex(8)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_token(token: object) -> str | None:
    """The key id of a well-formed token, None otherwise."""
    if not isinstance(token, str):
        return None
    match = TOKEN.fullmatch(token)
    return match.group(1) if match else None


def check_token(token: object, what: str = "API key") -> str:
    """A token given from outside (``RUNVOY_BOOTSTRAP_TOKEN``), in its form; the error never repeats it."""
    if parse_token(token) is None:
        raise ValidationFailed(
            f"invalid {what}: not of the form rvk_<16 hex digits>_<43 characters of A-Z a-z 0-9 _ ->",
            hint="make one with: python -c \"import secrets; print('rvk_' + secrets.token_hex(8) + '_' + "
            'secrets.token_urlsafe(32))"',
        )
    assert isinstance(token, str)
    return token


class KeyRing:
    """Create, list, revoke, rotate and check API keys over a ``DocumentStore``."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        directory: Directory | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.clock = clock
        self.directory = directory or Directory(store, clock=clock)

    # -- making keys -----------------------------------------------------------------------------------------
    def create(
        self,
        user: str,
        *,
        name: str = "default",
        expires_in: float | None = None,
        created_by: str | None = None,
        token: str | None = None,
    ) -> NewKey:
        """A new key for ``user``, valid ``expires_in`` seconds (KEY_EXPIRY; default 90 days). ``token``:
        store this given token (the bootstrap key from the environment) instead of a fresh one."""
        check_form(inputs.USER_NAME, user, "user name")
        check_form(inputs.KEY_NAME, name, "key name")
        lifetime = DEFAULT_LIFETIME if expires_in is None else self._lifetime(expires_in)
        if self.directory.find(user) is None:
            raise NotFound(
                f"no user {user!r}", hint="create it first: runvoy users create NAME --role ROLE --team TEAM"
            )
        if token is None:
            key_id, token = new_token()
        else:
            key_id = parse_token(check_token(token))  # type: ignore[assignment]
        now = self.clock()
        info = KeyInfo(
            id=key_id,
            user=user,
            name=name,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime),
            created_by=created_by,
        )
        self.store.put_document(
            NAMESPACE, key_id, {**info.model_dump(mode="json"), "hash": token_hash(token)}
        )
        log.info("team.key_created", key_id=key_id, user=user)
        return NewKey(key=info, token=token)

    @staticmethod
    def _lifetime(seconds: object) -> float:
        try:
            return float(inputs.KEY_EXPIRY.check(seconds))
        except ValueError as exc:
            raise ValidationFailed(
                f"invalid key lifetime: {exc}", hint=f"expected {inputs.KEY_EXPIRY.text}"
            ) from None

    # -- reading ---------------------------------------------------------------------------------------------
    def show(self, key_id: str) -> KeyInfo:
        check_form(inputs.KEY_ID, key_id, "key id")
        doc = self.store.get_document(NAMESPACE, key_id)
        if doc is None:
            raise NotFound(f"no key {key_id!r}", hint="list them with: runvoy keys list")
        return _info(doc.value)

    def list(self, *, user: str | None = None) -> list[KeyInfo]:
        if user is not None:
            check_form(inputs.USER_NAME, user, "user name")
        keys = [_info(doc.value) for doc in read_all(self.store, NAMESPACE)]
        return [k for k in keys if user is None or k.user == user]

    # -- ending keys -----------------------------------------------------------------------------------------
    def revoke(self, key_id: str) -> KeyInfo:
        """Refused from the next request on, on every replica."""
        check_form(inputs.KEY_ID, key_id, "key id")
        now = self.clock()
        info = self._update(key_id, lambda k: k if k.revoked_at else k.model_copy(update={"revoked_at": now}))
        log.info("team.key_revoked", key_id=key_id, user=info.user)
        return info

    def rotate(
        self,
        key_id: str,
        *,
        overlap: float | None = None,
        expires_in: float | None = None,
        created_by: str | None = None,
    ) -> NewKey:
        """A new key for the same user and name; the old one keeps working ``overlap`` seconds more
        (KEY_OVERLAP, default a day; never longer than it had left), then is refused."""
        check_form(inputs.KEY_ID, key_id, "key id")
        if overlap is None:
            window = DEFAULT_OVERLAP
        else:
            try:
                window = float(inputs.KEY_OVERLAP.check(overlap))
            except ValueError as exc:
                raise ValidationFailed(
                    f"invalid key overlap: {exc}", hint=f"expected {inputs.KEY_OVERLAP.text}"
                ) from None
        old = self.show(key_id)
        now = self.clock()
        state = old.state(now)
        if state == "active" and old.replaced_by is not None:
            state = "already rotated"
        if state != "active":
            raise ValidationFailed(
                f"key {key_id!r} is {state}: only an active key that was not rotated yet can be rotated",
                hint=f"create a new one: runvoy keys create {old.user}",
            )
        new = self.create(old.user, name=old.name, expires_in=expires_in, created_by=created_by)
        end = min(old.expires_at, now + timedelta(seconds=window))

        def shorten(k: KeyInfo) -> KeyInfo:
            return k.model_copy(update={"replaced_by": new.key.id, "expires_at": min(k.expires_at, end)})

        self._update(key_id, shorten)
        log.info("team.key_rotated", key_id=key_id, new_key_id=new.key.id, user=old.user)
        return new

    def _update(self, key_id: str, change: Callable[[KeyInfo], KeyInfo]) -> KeyInfo:
        for _ in range(CAS_ATTEMPTS):
            doc = self.store.get_document(NAMESPACE, key_id)
            if doc is None:
                raise NotFound(f"no key {key_id!r}", hint="list them with: runvoy keys list")
            info = _info(doc.value)
            changed = change(info)
            if changed == info:
                return info
            try:
                self.store.put_document(
                    NAMESPACE, key_id, {**doc.value, **changed.model_dump(mode="json")}, version=doc.version
                )
            except VersionConflict:
                continue
            return changed
        raise VersionConflict(f"key {key_id!r} kept changing while it was being updated")

    # -- checking keys ---------------------------------------------------------------------------------------
    def authenticate(self, token: object) -> Caller:
        """The caller this token stands for; InvalidToken (always the same message) when it is malformed,
        unknown, revoked, expired, or its user is missing or disabled."""
        key_id = parse_token(token)
        doc = self.store.get_document(NAMESPACE, key_id) if key_id is not None else None
        stored = doc.value.get("hash") if doc is not None else None
        given = token_hash(token) if isinstance(token, str) else _DUMMY_HASH
        # compared even when there is no such key, so an unknown id costs what a wrong secret costs
        matches = hmac.compare_digest(given, stored if isinstance(stored, str) else _DUMMY_HASH)
        if doc is None or not matches:
            log.info(
                "team.auth_refused", key_id=key_id, reason="unknown key" if doc is None else "wrong secret"
            )
            raise InvalidToken(INVALID)
        try:
            info = _info(doc.value)
            user = self.directory.find(info.user)
        except ValueError:  # a document edited by hand into something unreadable: no key to trust
            log.warning("team.auth_refused", key_id=key_id, reason="unreadable key or user document")
            raise InvalidToken(INVALID) from None
        now = self.clock()
        if info.state(now) != "active":
            log.info("team.auth_refused", key_id=key_id, reason=info.state(now))
            raise InvalidToken(INVALID)
        if user is None or user.disabled:
            log.info("team.auth_refused", key_id=key_id, reason="user missing or disabled")
            raise InvalidToken(INVALID)
        if info.last_used_at is None or (now - info.last_used_at).total_seconds() >= LAST_USED_EVERY:
            try:
                self.store.put_document(
                    NAMESPACE,
                    info.id,
                    {**doc.value, **info.model_copy(update={"last_used_at": now}).model_dump(mode="json")},
                    version=doc.version,
                )
            except VersionConflict:
                pass  # another request of this key wrote it a moment ago, or it was revoked: checked next time
        return Caller(name=user.name, kind=user.kind, role=user.role, team=user.team, key_id=info.id)


def _info(value: dict[str, object]) -> KeyInfo:
    return KeyInfo.model_validate({k: v for k, v in value.items() if k != "hash"})
