"""The first admin of an empty directory (decision 1506): user ``admin`` (role admin, team ``admins``) and a
key for it, made once however many server replicas start at the same moment.

The document ``server/bootstrap`` is the point where one replica wins: created only if absent (CAS), it
names the key the winner is about to make. The winner then writes the user and the key and marks the
document done. A replica that died between the two leaves it "started"; after ``STALE_AFTER`` seconds the
next start takes it over (by CAS on its version again) and makes a new key, since the first one's token
was never shown to anybody.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from runvoy_core.errors import AlreadyExists, VersionConflict
from runvoy_core.logging import get_logger
from runvoy_core.models import utcnow
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.team.keys import KeyRing, check_token, new_token, parse_token
from runvoy_core.team.users import Directory

log = get_logger("runvoy.team")

NAMESPACE = "server"
KEY = "bootstrap"
ADMIN = "admin"
ADMIN_TEAM = "admins"
STALE_AFTER = 300.0
"""A bootstrap started this long ago and never finished was left by a replica that died."""


def ensure_bootstrap(
    store: DocumentStore, env_token: str | None, *, clock: Callable[[], datetime] = utcnow
) -> str | None:
    """Make the first admin and its key when nobody has bootstrapped this store yet.

    Returns the new key's token, to be printed once; None when ``env_token`` (RUNVOY_BOOTSTRAP_TOKEN)
    gave it (it is stored hashed), when the store was bootstrapped already, or when another replica is
    doing it now. A malformed ``env_token`` raises ValidationFailed, which never repeats it."""
    if env_token is not None:
        check_token(env_token, "RUNVOY_BOOTSTRAP_TOKEN")
    directory = Directory(store, clock=clock)
    marker = store.get_document(NAMESPACE, KEY)
    if marker is None and not directory.is_empty():
        # accounts made before there was a marker (by hand, over the store): this store is bootstrapped
        _claim(store, {"state": "done", "at": _text(clock()), "key_id": None})
        return None
    if marker is not None:
        state = marker.value.get("state")
        started = marker.value.get("at")
        if state != "started" or not isinstance(started, str) or not _stale(started, clock()):
            return None
    if env_token is not None:
        key_id, token = parse_token(env_token), env_token
    else:
        key_id, token = new_token()
    value = {"state": "started", "at": _text(clock()), "key_id": key_id}
    try:
        claimed = store.put_document(
            NAMESPACE, KEY, value, version=None if marker is None else marker.version
        )
    except (AlreadyExists, VersionConflict):
        return None  # another replica won: it makes the admin and prints its key
    try:
        directory.create(ADMIN, role="admin", team=ADMIN_TEAM, created_by="bootstrap")
    except AlreadyExists:
        pass  # a replica that died after making the user: only its key is missing
    try:
        KeyRing(store, directory=directory, clock=clock).create(
            ADMIN, name="bootstrap", created_by="bootstrap", token=token
        )
    except AlreadyExists:
        pass  # the same RUNVOY_BOOTSTRAP_TOKEN, stored by a replica that died before marking it done
    store.put_document(NAMESPACE, KEY, {**value, "state": "done"}, version=claimed.version)
    log.info("team.bootstrapped", user=ADMIN, key_id=key_id, from_env=env_token is not None)
    return None if env_token is not None else token


def _claim(store: DocumentStore, value: dict[str, object]) -> None:
    try:
        store.put_document(NAMESPACE, KEY, value)
    except AlreadyExists:
        pass


def _text(moment: datetime) -> str:
    return moment.isoformat()


def _stale(started: str, now: datetime) -> bool:
    try:
        at = datetime.fromisoformat(started)
    except ValueError:
        return True
    return now - at > timedelta(seconds=STALE_AFTER)
