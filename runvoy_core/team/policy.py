"""Policies, and the one function that decides whether a caller may do something (decision 1507).

A policy is a document of the ``policies`` namespace. It applies to the teams its ``teams`` patterns match,
and allows an operator of such a team to start (``actions``: ``runs.start``, ``playbooks.run``) what every
other field matches: the provider, the lock name, the playbook name, the image and each ``KEY=VALUE`` label
of the run. Patterns are shell-style (``fnmatch.fnmatchcase``: ``*``, ``?``, ``[seq]``; case-sensitive). A
run without a lock, image or playbook is matched as the empty text, which ``*`` matches and ``etl-*`` does
not. A team that no policy applies to may run anything (no policy at all = no restriction); once one
applies, at least one of the team's policies must allow the run. Admins are never narrowed by policies.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from runvoy_core import inputs
from runvoy_core.errors import AlreadyExists, NotFound, ValidationFailed, VersionConflict
from runvoy_core.models import utcnow
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.records import Record, RecordError
from runvoy_core.team import roles
from runvoy_core.team.context import Caller
from runvoy_core.team.users import CAS_ATTEMPTS, check_form, read_all

NAMESPACE = "policies"
MAX_DESCRIPTION_CHARS = 256
PATTERN_FIELDS = ("teams", "actions", "providers", "locks", "playbooks", "images", "labels")


def _everything() -> list[str]:
    return ["*"]


class Policy(Record, kw_only=True):
    name: str
    description: str = ""
    teams: list[str] = msgspec.field(default_factory=_everything)
    actions: list[str] = msgspec.field(default_factory=_everything)
    providers: list[str] = msgspec.field(default_factory=_everything)
    locks: list[str] = msgspec.field(default_factory=_everything)
    playbooks: list[str] = msgspec.field(default_factory=_everything)
    images: list[str] = msgspec.field(default_factory=_everything)
    labels: list[str] = msgspec.field(default_factory=_everything)
    """Patterns over ``KEY=VALUE``: every label of a run must match one of them."""
    updated_at: datetime | None = None
    updated_by: str | None = None


def check_policy(data: Policy | dict[str, Any]) -> Policy:
    """A policy from outside (a dict of JSON values, or a Policy built in Python), checked field by field."""
    if isinstance(data, Policy):
        data = data.model_dump(mode="json")
    try:
        policy = Policy.model_validate(data)
    except RecordError as exc:
        raise ValidationFailed(f"invalid policy: {exc}") from None
    check_form(inputs.POLICY_NAME, policy.name, "policy name")
    problem = inputs.text_problem(policy.description)
    if problem or len(policy.description) > MAX_DESCRIPTION_CHARS:
        raise ValidationFailed(
            f"invalid policy description: {problem or f'longer than {MAX_DESCRIPTION_CHARS} characters'}"
        )
    for name in PATTERN_FIELDS:
        patterns = getattr(policy, name)
        if not 1 <= len(patterns) <= inputs.MAX_POLICY_PATTERNS:
            raise ValidationFailed(
                f"invalid policy {name}: from 1 to {inputs.MAX_POLICY_PATTERNS} patterns, got {len(patterns)}",
                hint='leave it out (or give ["*"]) to match everything',
            )
        for pattern in patterns:
            check_form(inputs.POLICY_PATTERN, pattern, f"policy {name} pattern")
    return policy


@dataclass(frozen=True)
class Target:
    """What a start would run, as a policy sees it."""

    provider: str
    lock: str | None = None
    playbook: str | None = None
    image: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def _matches(value: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def mismatch(policy: Policy, action: str, target: Target) -> str | None:
    """Why ``policy`` does not allow ``action`` on ``target`` (None when it does)."""
    checks = (
        ("action", action, policy.actions),
        ("provider", target.provider, policy.providers),
        ("lock", target.lock or "", policy.locks),
        ("playbook", target.playbook or "", policy.playbooks),
        ("image", target.image or "", policy.images),
    )
    for what, value, patterns in checks:
        if not _matches(value, patterns):
            shown = repr(value) if value else "(none)"
            return f"{what} {shown} matches none of {', '.join(patterns)}"
    for key, value in sorted(target.labels.items()):
        if not _matches(f"{key}={value}", policy.labels):
            return f"label {key}={value!r} matches none of {', '.join(policy.labels)}"
    return None


def decide(
    caller: Caller,
    action: str,
    *,
    team: str | None = None,
    target: Target | None = None,
    policies: Iterable[Policy] = (),
) -> Decision:
    """Whether ``caller`` may do ``action``, and why.

    ``team``: the team the resource belongs to (a run's ``runvoy.team`` label, the team of a lock's holder,
    an account's team); only an admin acts on another team's, or on one that belongs to none.
    ``target``: what a start would run, checked against the policies that apply to the caller's team."""
    if not roles.grants(caller.role, action):
        return Decision(False, f"role {caller.role} does not allow {action}")
    if caller.role == "admin":
        return Decision(True, f"role admin allows {action}")
    if team is not None and team != caller.team:
        return Decision(False, f"it belongs to another team than {caller.team}")
    if action not in roles.POLICY_ACTIONS or target is None:
        return Decision(True, f"role {caller.role} allows {action}")
    applying = [p for p in policies if _matches(caller.team, p.teams)]
    if not applying:
        return Decision(
            True, f"role {caller.role} allows {action} and no policy applies to team {caller.team}"
        )
    reasons = []
    for policy in applying:
        why = mismatch(policy, action, target)
        if why is None:
            return Decision(True, f"policy {policy.name} allows it")
        reasons.append(f"policy {policy.name}: {why}")
    shown = "; ".join(reasons[:5]) + ("; ..." if len(reasons) > 5 else "")
    return Decision(False, f"no policy of team {caller.team} allows it ({shown})")


class PolicyBook:
    """The policies, over a ``DocumentStore``."""

    def __init__(self, store: DocumentStore, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def set(self, policy: Policy | dict[str, Any], *, updated_by: str | None = None) -> Policy:
        """Create or replace the policy of that name."""
        checked = check_policy(policy)
        checked = checked.model_copy(update={"updated_at": self.clock(), "updated_by": updated_by})
        value = checked.model_dump(mode="json")
        for _ in range(CAS_ATTEMPTS):
            doc = self.store.get_document(NAMESPACE, checked.name)
            try:
                self.store.put_document(
                    NAMESPACE, checked.name, value, version=None if doc is None else doc.version
                )
            except (VersionConflict, AlreadyExists):
                continue
            return checked
        raise VersionConflict(f"policy {checked.name!r} kept changing while it was being set")

    def show(self, name: str) -> Policy:
        check_form(inputs.POLICY_NAME, name, "policy name")
        doc = self.store.get_document(NAMESPACE, name)
        if doc is None:
            raise NotFound(f"no policy {name!r}", hint="list them with: runvoy policies list")
        return Policy.model_validate(doc.value)

    def list(self) -> list[Policy]:
        return [Policy.model_validate(doc.value) for doc in read_all(self.store, NAMESPACE)]

    def remove(self, name: str) -> Policy:
        check_form(inputs.POLICY_NAME, name, "policy name")
        for _ in range(CAS_ATTEMPTS):
            doc = self.store.get_document(NAMESPACE, name)
            if doc is None:
                raise NotFound(f"no policy {name!r}", hint="list them with: runvoy policies list")
            try:
                self.store.delete_document(NAMESPACE, name, version=doc.version)
            except VersionConflict:
                continue
            return Policy.model_validate(doc.value)
        raise VersionConflict(f"policy {name!r} kept changing while it was being removed")
