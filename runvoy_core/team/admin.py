"""The team service's admin surface, as one Protocol (decision 1506): what ``runvoy users|keys|policies``,
the server's admin routes and the remote client call, whichever side of HTTP they are on.

- ``LocalTeamAdmin`` (here): straight over a ``DocumentStore``, no permission check (the store's owner).
- ``TeamBackend`` (runvoy_core.team.guarded): the same methods for one caller, with the permission checks
  and audit entries; what the server answers a request with.
- the remote client (runvoy_core.remote.admin): the same methods over HTTP.

Every method takes and returns JSON-friendly values: the records here are msgspec Structs
(``model_dump_json``/``model_validate``), so the remote side rebuilds exactly what the server returned.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from runvoy_core.models import utcnow
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.records import Record
from runvoy_core.team import roles
from runvoy_core.team.context import Caller, current_caller
from runvoy_core.team.keys import KeyInfo, KeyRing, NewKey
from runvoy_core.team.policy import Policy, PolicyBook
from runvoy_core.team.users import Directory, User

if TYPE_CHECKING:
    from runvoy_core.team.audit import AuditEntry, AuditReport
    from runvoy_core.team.totp import TotpEnrolment

__all__ = ["Identity", "KeyInfo", "LocalTeamAdmin", "NewKey", "Policy", "TeamAdmin", "User"]


class Identity(Record, kw_only=True):
    """Who the caller is (``runvoy whoami``)."""

    name: str
    kind: str
    role: str
    team: str
    key_id: str | None = None
    second_factor: bool = False
    actions: list[str] = []
    """What the role allows (runvoy_core.team.roles), sorted; policies may narrow ``runs.start``."""

    @classmethod
    def of(cls, caller: Caller) -> Identity:
        return cls(
            name=caller.name,
            kind=caller.kind,
            role=caller.role,
            team=caller.team,
            key_id=caller.key_id,
            second_factor=caller.second_factor,
            actions=sorted(roles.GRANTS.get(caller.role, frozenset())),
        )


@runtime_checkable
class TeamAdmin(Protocol):
    """Users, service accounts, API keys and policies. Durations are seconds; names in their documented forms
    (runvoy_core.inputs: USER_NAME, TEAM, ROLE, ACCOUNT_KIND, KEY_NAME, KEY_ID, KEY_EXPIRY, KEY_OVERLAP,
    POLICY_NAME, POLICY_PATTERN). Raises ValidationFailed for a bad value, NotFound, AlreadyExists,
    AccessDenied (a guarded implementation), never anything that shows a key's secret but ``NewKey.token``."""

    def whoami(self) -> Identity: ...

    # -- users and service accounts
    def create_user(self, name: str, *, role: str, team: str, kind: str = "user") -> User: ...
    def list_users(self, *, team: str | None = None) -> builtins.list[User]: ...
    def show_user(self, name: str) -> User: ...
    def disable_user(self, name: str) -> User:
        """Its keys are refused from the next request on (they are kept, and work again after enable)."""
        ...

    def enable_user(self, name: str) -> User: ...

    # -- API keys
    def create_key(self, user: str, *, name: str = "default", expires_in: float | None = None) -> NewKey:
        """A new key; ``NewKey.token`` is the only time its secret is shown. ``expires_in`` default 90 days."""
        ...

    def list_keys(self, *, user: str | None = None) -> builtins.list[KeyInfo]: ...
    def revoke_key(self, key_id: str) -> KeyInfo: ...
    def rotate_key(
        self, key_id: str, *, overlap: float | None = None, expires_in: float | None = None
    ) -> NewKey:
        """A new key for the same user and name; the old one works ``overlap`` seconds more (default a day)."""
        ...

    # -- policies
    def set_policy(self, policy: Policy | dict[str, Any]) -> Policy:
        """Create or replace the policy of that name."""
        ...

    def list_policies(self) -> builtins.list[Policy]: ...
    def show_policy(self, name: str) -> Policy: ...
    def remove_policy(self, name: str) -> Policy:
        """The policy as it was before it was removed."""
        ...

    # -- audit (runvoy_core.team.audit, decision 1509); its values travel as ``as_dict``/``from_dict``
    def audit_verify(self, *, anchor: tuple[int, str] | None = None) -> AuditReport:
        """Walk the audit chain; the report names the first edited, removed, inserted or reordered entry
        (nothing is raised for a broken chain). ``anchor``: (seq, hash) kept from an earlier report."""
        ...

    def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 1000,
    ) -> builtins.list[AuditEntry]:
        """One page of entries in chain order with ``since <= at < until``; pass the last one's ``seq`` as
        ``after_seq`` for the next page (a short page is the last). ``limit`` 1-1000."""
        ...


def _actor() -> str | None:
    caller = current_caller()
    return caller.name if caller is not None else None


class LocalTeamAdmin:
    """``TeamAdmin`` straight over a store: no permission check, no audit (whoever holds the store's
    credentials may write it anyway). ``whoami`` answers with the bound caller, else a local admin."""

    def __init__(self, store: DocumentStore, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.directory = Directory(store, clock=clock)
        self.keys = KeyRing(store, directory=self.directory, clock=clock)
        self.policies = PolicyBook(store, clock=clock)

    def whoami(self) -> Identity:
        caller = current_caller()
        if caller is None:
            import getpass

            caller = Caller(name=getpass.getuser(), kind="user", role="admin", team="local")
        return Identity.of(caller)

    def create_user(self, name: str, *, role: str, team: str, kind: str = "user") -> User:
        return self.directory.create(name, role=role, team=team, kind=kind, created_by=_actor())

    def list_users(self, *, team: str | None = None) -> builtins.list[User]:
        return self.directory.list(team=team)

    def show_user(self, name: str) -> User:
        return self.directory.show(name)

    def disable_user(self, name: str) -> User:
        return self.directory.disable(name)

    def enable_user(self, name: str) -> User:
        return self.directory.enable(name)

    def create_key(self, user: str, *, name: str = "default", expires_in: float | None = None) -> NewKey:
        return self.keys.create(user, name=name, expires_in=expires_in, created_by=_actor())

    def list_keys(self, *, user: str | None = None) -> builtins.list[KeyInfo]:
        return self.keys.list(user=user)

    def revoke_key(self, key_id: str) -> KeyInfo:
        return self.keys.revoke(key_id)

    def rotate_key(
        self, key_id: str, *, overlap: float | None = None, expires_in: float | None = None
    ) -> NewKey:
        return self.keys.rotate(key_id, overlap=overlap, expires_in=expires_in, created_by=_actor())

    def set_policy(self, policy: Policy | dict[str, Any]) -> Policy:
        return self.policies.set(policy, updated_by=_actor())

    def list_policies(self) -> builtins.list[Policy]:
        return self.policies.list()

    def show_policy(self, name: str) -> Policy:
        return self.policies.show(name)

    def remove_policy(self, name: str) -> Policy:
        return self.policies.remove(name)

    def audit_verify(self, *, anchor: tuple[int, str] | None = None) -> AuditReport:
        from runvoy_core.team.audit import AuditLog

        return AuditLog(self.store).verify(anchor=anchor)

    def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 1000,
    ) -> builtins.list[AuditEntry]:
        from runvoy_core.team.audit import AuditLog, check_page

        after_seq, limit = check_page(after_seq, limit)
        return AuditLog(self.store).page(since=since, until=until, after_seq=after_seq, limit=limit)

    # the second factor (decision 1510): on the store only, as the bootstrap key is, until the TeamAdmin
    # Protocol (and so TeamBackend and the remote client) carries it
    def enroll_totp(self, user: str, *, replace: bool = False) -> TotpEnrolment:
        """A new TOTP secret for ``user``, shown this once; AlreadyExists when enrolled unless ``replace``."""
        from runvoy_core.team.totp import SecondFactor

        return SecondFactor(self.store, directory=self.directory).enroll(user, replace=replace)

    def remove_totp(self, user: str) -> None:
        from runvoy_core.team.totp import SecondFactor

        SecondFactor(self.store, directory=self.directory).remove(self.directory.show(user).name)
