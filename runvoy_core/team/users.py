"""The directory of users and service accounts, kept as documents of the ``users`` namespace (decision 1506).

A user and a service account are the same record with another ``kind``: both hold API keys; a service
account is meant for a program (CI, a scheduler) and never signs in interactively. Deleting is not offered:
an account is disabled, so the audit log's names keep meaning something.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from runvoy_core import inputs
from runvoy_core.errors import AlreadyExists, NotFound, ValidationFailed, VersionConflict
from runvoy_core.models import utcnow
from runvoy_core.ports.optional import Document, DocumentStore
from runvoy_core.records import Record

NAMESPACE = "users"
CAS_ATTEMPTS = 20
"""A compare-and-swap lost this many times in a row means something is writing in a loop: give up loudly."""


class User(Record, kw_only=True):
    name: str
    kind: str = "user"
    """``user`` or ``service``."""
    role: str
    """``viewer``, ``operator`` or ``admin`` (runvoy_core.team.roles)."""
    team: str
    disabled: bool = False
    created_at: datetime
    created_by: str | None = None
    updated_at: datetime | None = None


def check_form(form: inputs.Form, value: object, what: str) -> str:
    """``value`` in its documented form, or ValidationFailed naming what was wrong (never a traceback)."""
    try:
        checked: str = form.check(value)
    except ValueError as exc:
        raise ValidationFailed(f"invalid {what}: {exc}", hint=f"expected {form.text}") from None
    return checked


def read_all(store: DocumentStore, namespace: str, *, prefix: str = "") -> Iterator[Document]:
    """Every document of a namespace (under ``prefix``), page by page in key order."""
    after: str | None = None
    while True:
        page = store.list_documents(namespace, prefix=prefix, after=after, limit=1000)
        yield from page
        if len(page) < 1000:
            return
        after = page[-1].key


class Directory:
    """Users and service accounts over a ``DocumentStore``. Holds no state of its own: every replica of a
    server reads the same documents, so a disabled account is refused everywhere at once."""

    def __init__(self, store: DocumentStore, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def create(
        self, name: str, *, role: str, team: str, kind: str = "user", created_by: str | None = None
    ) -> User:
        user = User(
            name=check_form(inputs.USER_NAME, name, "user name"),
            kind=check_form(inputs.ACCOUNT_KIND, kind, "account kind"),
            role=check_form(inputs.ROLE, role, "role"),
            team=check_form(inputs.TEAM, team, "team"),
            created_at=self.clock(),
            created_by=created_by,
        )
        try:
            self.store.put_document(NAMESPACE, user.name, user.model_dump(mode="json"))
        except AlreadyExists:
            raise AlreadyExists(
                f"user {user.name!r} exists already", hint=f"see it with: runvoy users show {user.name}"
            ) from None
        return user

    def find(self, name: str) -> User | None:
        """The account, or None (also for a name that is not in the accepted form: no such account)."""
        try:
            inputs.USER_NAME.check(name)
        except ValueError:
            return None
        doc = self.store.get_document(NAMESPACE, name)
        return None if doc is None else User.model_validate(doc.value)

    def show(self, name: str) -> User:
        check_form(inputs.USER_NAME, name, "user name")
        user = self.find(name)
        if user is None:
            raise NotFound(f"no user {name!r}", hint="list them with: runvoy users list")
        return user

    def list(self, *, team: str | None = None) -> list[User]:
        if team is not None:
            check_form(inputs.TEAM, team, "team")
        users = [User.model_validate(doc.value) for doc in read_all(self.store, NAMESPACE)]
        return [u for u in users if team is None or u.team == team]

    def is_empty(self) -> bool:
        return not self.store.list_documents(NAMESPACE, limit=1)

    def disable(self, name: str) -> User:
        return self._set_disabled(name, True)

    def enable(self, name: str) -> User:
        return self._set_disabled(name, False)

    def _set_disabled(self, name: str, disabled: bool) -> User:
        check_form(inputs.USER_NAME, name, "user name")
        for _ in range(CAS_ATTEMPTS):
            doc = self.store.get_document(NAMESPACE, name)
            if doc is None:
                raise NotFound(f"no user {name!r}", hint="list them with: runvoy users list")
            user = User.model_validate(doc.value)
            if user.disabled == disabled:
                return user
            user = user.model_copy(update={"disabled": disabled, "updated_at": self.clock()})
            try:
                self.store.put_document(NAMESPACE, name, user.model_dump(mode="json"), version=doc.version)
            except VersionConflict:
                continue
            return user
        raise VersionConflict(f"user {name!r} kept changing while it was being updated")
