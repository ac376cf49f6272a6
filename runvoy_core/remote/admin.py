"""``RemoteTeamAdmin``: the ``TeamAdmin`` Protocol (runvoy_core.team.admin) over a runvoy server's admin routes
(runvoy_server/routes/admin.py, decision 1519).

Each method is one request and returns the records the server's TeamBackend returned (sent as their msgspec
JSON, decoded into the same classes). Names that go into a URL path are checked here in their documented
forms first, so a malformed one is refused with the same message as a local call, and never builds another
path. The token of a new key is only ever in the ``NewKey`` returned.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from runvoy_core import inputs
from runvoy_core.team.admin import Identity
from runvoy_core.team.keys import KeyInfo, NewKey
from runvoy_core.team.policy import Policy
from runvoy_core.team.users import User, check_form

if TYPE_CHECKING:
    from runvoy_core.remote.client import Client
    from runvoy_core.team.admin import TeamAdmin
    from runvoy_core.team.audit import AuditEntry, AuditReport

AUDIT_PAGE = 1000
_POLICY_BODY_KEYS = ("description", "teams", "actions", "providers", "locks", "playbooks", "images", "labels")


def _segment(form: inputs.Form, value: str, what: str) -> str:
    return quote(check_form(form, value, what), safe="")


class RemoteTeamAdmin:
    """Users, keys, policies and the audit log of the server ``client`` talks to, as its key's owner may."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"RemoteTeamAdmin({self.client.server!r})"

    def whoami(self) -> Identity:
        return Identity.model_validate(self.client.request("GET", "/v1/whoami"))

    # -- users and service accounts
    def create_user(self, name: str, *, role: str, team: str, kind: str = "user") -> User:
        body = {
            "name": check_form(inputs.USER_NAME, name, "user name"),
            "role": check_form(inputs.ROLE, role, "role"),
            "team": check_form(inputs.TEAM, team, "team"),
            "kind": check_form(inputs.ACCOUNT_KIND, kind, "account kind"),
        }
        return User.model_validate(self.client.request("POST", "/v1/users", body=body))

    def list_users(self, *, team: str | None = None) -> builtins.list[User]:
        query = {"team": None if team is None else check_form(inputs.TEAM, team, "team")}
        data = self.client.request("GET", "/v1/users", query=query)
        return [User.model_validate(item) for item in data["users"]]

    def show_user(self, name: str) -> User:
        path = "/v1/users/" + _segment(inputs.USER_NAME, name, "user name")
        return User.model_validate(self.client.request("GET", path))

    def disable_user(self, name: str) -> User:
        path = "/v1/users/" + _segment(inputs.USER_NAME, name, "user name") + "/disable"
        return User.model_validate(self.client.request("POST", path))

    def enable_user(self, name: str) -> User:
        path = "/v1/users/" + _segment(inputs.USER_NAME, name, "user name") + "/enable"
        return User.model_validate(self.client.request("POST", path))

    # -- API keys
    def create_key(self, user: str, *, name: str = "default", expires_in: float | None = None) -> NewKey:
        body: dict[str, Any] = {
            "user": check_form(inputs.USER_NAME, user, "user name"),
            "name": check_form(inputs.KEY_NAME, name, "key name"),
        }
        if expires_in is not None:
            body["expires_in"] = _seconds(inputs.KEY_EXPIRY, expires_in, "key lifetime")
        return NewKey.model_validate(self.client.request("POST", "/v1/keys", body=body))

    def list_keys(self, *, user: str | None = None) -> builtins.list[KeyInfo]:
        query = {"user": None if user is None else check_form(inputs.USER_NAME, user, "user name")}
        data = self.client.request("GET", "/v1/keys", query=query)
        return [KeyInfo.model_validate(item) for item in data["keys"]]

    def revoke_key(self, key_id: str) -> KeyInfo:
        path = "/v1/keys/" + _segment(inputs.KEY_ID, key_id, "key id") + "/revoke"
        return KeyInfo.model_validate(self.client.request("POST", path))

    def rotate_key(
        self, key_id: str, *, overlap: float | None = None, expires_in: float | None = None
    ) -> NewKey:
        path = "/v1/keys/" + _segment(inputs.KEY_ID, key_id, "key id") + "/rotate"
        body: dict[str, Any] = {}
        if overlap is not None:
            body["overlap"] = _seconds(inputs.KEY_OVERLAP, overlap, "key overlap")
        if expires_in is not None:
            body["expires_in"] = _seconds(inputs.KEY_EXPIRY, expires_in, "key lifetime")
        return NewKey.model_validate(self.client.request("POST", path, body=body))

    # -- policies
    def set_policy(self, policy: Policy | dict[str, Any]) -> Policy:
        from runvoy_core.team.policy import check_policy

        checked = check_policy(policy)
        data = checked.model_dump(mode="json")
        body = {key: data[key] for key in _POLICY_BODY_KEYS}
        path = "/v1/policies/" + quote(checked.name, safe="")
        return Policy.model_validate(self.client.request("PUT", path, body=body))

    def list_policies(self) -> builtins.list[Policy]:
        data = self.client.request("GET", "/v1/policies")
        return [Policy.model_validate(item) for item in data["policies"]]

    def show_policy(self, name: str) -> Policy:
        path = "/v1/policies/" + _segment(inputs.POLICY_NAME, name, "policy name")
        return Policy.model_validate(self.client.request("GET", path))

    def remove_policy(self, name: str) -> Policy:
        path = "/v1/policies/" + _segment(inputs.POLICY_NAME, name, "policy name")
        return Policy.model_validate(self.client.request("DELETE", path))

    # -- audit
    def audit_verify(self, *, anchor: tuple[int, str] | None = None) -> AuditReport:
        from runvoy_core.team.audit import AuditReport

        query: dict[str, Any] = {}
        if anchor is not None:
            query = {"anchor_seq": anchor[0], "anchor_hash": anchor[1]}
        return AuditReport.from_dict(self.client.request("GET", "/v1/audit/verify", query=query))

    def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 1000,
    ) -> builtins.list[AuditEntry]:
        from runvoy_core.team.audit import AuditEntry, check_page

        after_seq, limit = check_page(after_seq, limit)
        query = {"since": _utc(since), "until": _utc(until), "after_seq": after_seq, "limit": limit}
        data = self.client.request("GET", "/v1/audit/entries", query=query)
        return [AuditEntry.from_dict(item) for item in data["entries"]]

    def close(self) -> None:
        self.client.close()


def _utc(moment: datetime | None) -> datetime | None:
    """The server takes RFC 3339 times, which carry their offset: a naive time is UTC, as in the core."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _seconds(form: inputs.Form, value: object, what: str) -> float:
    from runvoy_core.errors import ValidationFailed

    try:
        return float(form.check(value))
    except ValueError as exc:
        raise ValidationFailed(f"invalid {what}: {exc}", hint=f"expected {form.text}") from None


if TYPE_CHECKING:

    def _conforms(admin: RemoteTeamAdmin) -> TeamAdmin:
        """mypy checks here that RemoteTeamAdmin implements the Protocol, signature by signature."""
        return admin
