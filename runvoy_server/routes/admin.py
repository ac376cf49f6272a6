"""``/v1/whoami``, ``/v1/users``, ``/v1/keys``, ``/v1/policies``, ``/v1/audit``: the team's admin surface over
HTTP (decision 1519).

Each route is one call of the ``TeamAdmin`` Protocol (runvoy_core.team.admin) on the request's TeamBackend:
who may do what is decided there (roles, teams, the second factor, the audit entry), never here. Answers are
the records' own msgspec JSON, described in the OpenAPI schema by the JSON Schema msgspec derives from the
same classes. A key's secret appears in exactly one place: the answer to the request that made it (create,
rotate), sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from runvoy_core import inputs
from runvoy_core.team.admin import Identity, TeamAdmin
from runvoy_core.team.keys import KeyInfo, NewKey
from runvoy_core.team.policy import MAX_DESCRIPTION_CHARS, Policy
from runvoy_core.team.users import User
from runvoy_server.deps import team_backend
from runvoy_server.routes.schemas import json_answer, schema_of

if TYPE_CHECKING:
    from runvoy_core.records import Record
    from runvoy_core.team.audit import AuditEntry

router = APIRouter(prefix="/v1", tags=["admin"])

CallerAdmin = Annotated[TeamAdmin, Depends(team_backend)]
"""The request's TeamBackend, typed as the admin Protocol: a route can do nothing TeamAdmin does not offer."""

# path parameters: the forms of runvoy_core.inputs, so a malformed name is a 422 before anything is read
UserName = Annotated[
    str,
    Path(
        min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9._@-]{0,63}$", description=inputs.USER_NAME.text
    ),
]
KeyId = Annotated[
    str, Path(min_length=16, max_length=16, pattern=r"^[0-9a-f]{16}$", description=inputs.KEY_ID.text)
]
PolicyName = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9-]{0,63}$", description=inputs.POLICY_NAME.text),
]
TeamName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9-]{0,31}$")]
Pattern = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]{1,128}$")]
Patterns = Annotated[
    list[Pattern],
    Field(min_length=1, max_length=inputs.MAX_POLICY_PATTERNS, description=inputs.POLICY_PATTERN.text),
]
KEY_EXPIRY_MIN, KEY_EXPIRY_MAX = 3600.0, 730 * 86400.0
KEY_OVERLAP_MIN, KEY_OVERLAP_MAX = 60.0, 7 * 86400.0
AUDIT_PAGE = 1000
MAX_SEQ = 10**12 - 1
NO_STORE = {"Cache-Control": "no-store"}


# -- request bodies ----------------------------------------------------------------------------------------------
class UserBody(BaseModel):
    """A user (a person) or a service account (a program: CI, a scheduler), with its role and team."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            pattern=r"^[a-z][a-z0-9._@-]{0,63}$",
            description=inputs.USER_NAME.text,
        ),
    ]
    role: Literal["viewer", "operator", "admin"]
    team: Annotated[TeamName, Field(description=inputs.TEAM.text)]
    kind: Literal["user", "service"] = "user"


class KeyBody(BaseModel):
    """A new API key for ``user``; its token is in the answer and nowhere else, ever."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            pattern=r"^[a-z][a-z0-9._@-]{0,63}$",
            description=inputs.USER_NAME.text,
        ),
    ]
    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
            description=inputs.KEY_NAME.text,
        ),
    ] = "default"
    expires_in: Annotated[
        float | None,
        Field(
            ge=KEY_EXPIRY_MIN,
            le=KEY_EXPIRY_MAX,
            allow_inf_nan=False,
            description="seconds the key is valid, 1 hour to 730 days (default 90 days)",
        ),
    ] = None


class RotateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    overlap: Annotated[
        float | None,
        Field(
            ge=KEY_OVERLAP_MIN,
            le=KEY_OVERLAP_MAX,
            allow_inf_nan=False,
            description="seconds the old key keeps working, 1 minute to 7 days (default a day)",
        ),
    ] = None
    expires_in: Annotated[
        float | None,
        Field(
            ge=KEY_EXPIRY_MIN,
            le=KEY_EXPIRY_MAX,
            allow_inf_nan=False,
            description="seconds the new key is valid, 1 hour to 730 days (default 90 days)",
        ),
    ] = None


class PolicyBody(BaseModel):
    """A policy (docs/server.md): what operators of the teams it matches may start. A field left out matches
    everything."""

    model_config = ConfigDict(extra="forbid", strict=True)

    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)] = ""
    teams: Patterns = ["*"]
    actions: Patterns = ["*"]
    providers: Patterns = ["*"]
    locks: Patterns = ["*"]
    playbooks: Patterns = ["*"]
    images: Patterns = ["*"]
    labels: Annotated[
        Patterns, Field(description="patterns over KEY=VALUE; every label of a run must match one")
    ] = ["*"]


# -- answers -----------------------------------------------------------------------------------------------------
def _record(record: Record, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        record.model_dump_json(), status_code=status, media_type="application/json", headers=headers
    )


def _records(key: str, records: list[Any]) -> Response:
    return Response(
        f'{{"{key}":[' + ",".join(r.model_dump_json() for r in records) + "]}", media_type="application/json"
    )


def _one(record: type[Record], description: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    return json_answer(description, schema_of(record), status)


def _many(key: str, record: type[Record], description: str) -> dict[int | str, dict[str, Any]]:
    schema = {
        "type": "object",
        "properties": {key: {"type": "array", "items": schema_of(record)}},
        "required": [key],
        "additionalProperties": False,
    }
    return json_answer(description, schema)


_TIME = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "entries": {"type": "integer"},
        "last_seq": {"type": "integer"},
        "last_hash": {"type": "string"},
        "head_seq": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "first_at": _TIME,
        "last_at": _TIME,
        "problem": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string"},
                        "seq": {"type": "integer"},
                        "message": {"type": "string"},
                    },
                    "required": ["kind", "seq", "message"],
                },
                {"type": "null"},
            ]
        },
    },
    "required": ["ok", "entries", "last_seq", "last_hash", "head_seq", "first_at", "last_at", "problem"],
}
_TEXT_OR_NULL = {"anyOf": [{"type": "string"}, {"type": "null"}]}
ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer"},
        "at": {"type": "string"},
        "actor": _TEXT_OR_NULL,
        "actor_kind": _TEXT_OR_NULL,
        "role": _TEXT_OR_NULL,
        "team": _TEXT_OR_NULL,
        "action": {"type": "string"},
        "resource": {"type": "string"},
        "outcome": {"type": "string"},
        "request_id": _TEXT_OR_NULL,
        "address": _TEXT_OR_NULL,
        "detail": {"type": "object"},
        "prev_hash": {"type": "string"},
        "hash": {"type": "string"},
    },
    "required": [
        "seq",
        "at",
        "actor",
        "actor_kind",
        "role",
        "team",
        "action",
        "resource",
        "outcome",
        "request_id",
        "address",
        "detail",
        "prev_hash",
        "hash",
    ],
}


# -- who am I ----------------------------------------------------------------------------------------------------
@router.get(
    "/whoami",
    summary="Who the API key belongs to: name, kind, role, team and allowed actions",
    responses=_one(Identity, "the caller"),
)
def whoami(admin: CallerAdmin) -> Any:
    return _record(admin.whoami())


# -- users and service accounts ---------------------------------------------------------------------------------
@router.get(
    "/users",
    summary="List users and service accounts (a non-admin: its own team's)",
    responses=_many("users", User, "the accounts"),
)
def list_users(
    admin: CallerAdmin,
    team: Annotated[
        str | None, Query(max_length=32, pattern=r"^[a-z][a-z0-9-]{0,31}$", description="only this team")
    ] = None,
    kind: Annotated[
        Literal["user", "service"] | None, Query(description="only users, or only service accounts")
    ] = None,
) -> Any:
    users = admin.list_users(team=team)
    return _records("users", [u for u in users if kind is None or u.kind == kind])


@router.post(
    "/users",
    status_code=201,
    summary="Create a user or a service account",
    responses=_one(User, "the new account", 201),
)
def create_user(body: UserBody, admin: CallerAdmin) -> Any:
    return _record(admin.create_user(body.name, role=body.role, team=body.team, kind=body.kind), 201)


@router.get("/users/{name}", summary="Show one account", responses=_one(User, "the account"))
def show_user(name: UserName, admin: CallerAdmin) -> Any:
    return _record(admin.show_user(name))


@router.post(
    "/users/{name}/disable",
    summary="Disable an account: its keys are refused from the next request on",
    responses=_one(User, "the account"),
)
def disable_user(name: UserName, admin: CallerAdmin) -> Any:
    return _record(admin.disable_user(name))


@router.post(
    "/users/{name}/enable", summary="Enable a disabled account again", responses=_one(User, "the account")
)
def enable_user(name: UserName, admin: CallerAdmin) -> Any:
    return _record(admin.enable_user(name))


# -- API keys ------------------------------------------------------------------------------------------------------
@router.get(
    "/keys",
    summary="List API keys (never their secrets; a non-admin: its own)",
    responses=_many("keys", KeyInfo, "the keys"),
)
def list_keys(
    admin: CallerAdmin,
    user: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[a-z][a-z0-9._@-]{0,63}$", description="only this account's keys"),
    ] = None,
) -> Any:
    return _records("keys", admin.list_keys(user=user))


@router.post(
    "/keys",
    status_code=201,
    summary="Create an API key: its token is in this answer only",
    responses=_one(NewKey, "the key and its token (shown this once)", 201),
)
def create_key(body: KeyBody, admin: CallerAdmin) -> Any:
    return _record(admin.create_key(body.user, name=body.name, expires_in=body.expires_in), 201, NO_STORE)


@router.post(
    "/keys/{key_id}/revoke",
    summary="Revoke a key: refused from the next request on, on every replica",
    responses=_one(KeyInfo, "the revoked key"),
)
def revoke_key(key_id: KeyId, admin: CallerAdmin) -> Any:
    return _record(admin.revoke_key(key_id))


@router.post(
    "/keys/{key_id}/rotate",
    status_code=201,
    summary="Replace a key by a new one; the old one works for the overlap, then is refused",
    responses=_one(NewKey, "the new key and its token (shown this once)", 201),
)
def rotate_key(key_id: KeyId, admin: CallerAdmin, body: RotateBody | None = None) -> Any:
    given = body or RotateBody()
    made = admin.rotate_key(key_id, overlap=given.overlap, expires_in=given.expires_in)
    return _record(made, 201, NO_STORE)


# -- policies -------------------------------------------------------------------------------------------------------
@router.get("/policies", summary="List policies", responses=_many("policies", Policy, "the policies"))
def list_policies(admin: CallerAdmin) -> Any:
    return _records("policies", admin.list_policies())


@router.put("/policies/{name}", summary="Create or replace a policy", responses=_one(Policy, "the policy"))
def set_policy(name: PolicyName, body: PolicyBody, admin: CallerAdmin) -> Any:
    return _record(admin.set_policy({"name": name, **body.model_dump()}))


@router.get("/policies/{name}", summary="Show one policy", responses=_one(Policy, "the policy"))
def show_policy(name: PolicyName, admin: CallerAdmin) -> Any:
    return _record(admin.show_policy(name))


@router.delete("/policies/{name}", summary="Remove a policy", responses=_one(Policy, "the policy as it was"))
def remove_policy(name: PolicyName, admin: CallerAdmin) -> Any:
    return _record(admin.remove_policy(name))


# -- audit ---------------------------------------------------------------------------------------------------------
@router.get(
    "/audit/verify",
    summary="Walk the audit chain and report the first broken link, if any",
    responses=json_answer("what the walk found (ok false names the first problem)", REPORT_SCHEMA),
)
def audit_verify(
    admin: CallerAdmin,
    anchor_seq: Annotated[
        int | None,
        Query(ge=1, le=MAX_SEQ, description="with anchor_hash: an entry kept from an earlier report"),
    ] = None,
    anchor_hash: Annotated[
        str | None, Query(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$", description="its hash")
    ] = None,
) -> Any:
    from runvoy_core.errors import ValidationFailed

    if (anchor_seq is None) != (anchor_hash is None):
        raise ValidationFailed("anchor_seq and anchor_hash go together", hint="give both, or neither")
    anchor = None if anchor_seq is None or anchor_hash is None else (anchor_seq, anchor_hash)
    report = admin.audit_verify(anchor=anchor)
    return Response(json.dumps(report.as_dict()), media_type="application/json")


# times as RFC 3339 text only: pydantic would also read a bare number as a Unix time, which no client means
TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
Since = Annotated[
    str | None,
    Query(max_length=64, pattern=TIME_PATTERN, description="only entries at or after this time (RFC 3339)"),
]
Until = Annotated[
    str | None,
    Query(max_length=64, pattern=TIME_PATTERN, description="only entries before this time (RFC 3339)"),
]


def _moment(name: str, text: str | None) -> datetime | None:
    from runvoy_core.errors import ValidationFailed

    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValidationFailed(f"{name}: {text!r} is not a time", hint="e.g. 2026-12-01T00:00:00Z") from None


@router.get(
    "/audit/entries",
    summary="One page of audit entries in chain order",
    responses=json_answer(
        "the page (shorter than limit: the last one)",
        {
            "type": "object",
            "properties": {"entries": {"type": "array", "items": ENTRY_SCHEMA}},
            "required": ["entries"],
            "additionalProperties": False,
        },
    ),
)
def audit_entries(
    admin: CallerAdmin,
    since: Since = None,
    until: Until = None,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ, description="the last seq of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE)] = AUDIT_PAGE,
) -> Any:
    page = admin.audit_entries(
        since=_moment("since", since), until=_moment("until", until), after_seq=after_seq, limit=limit
    )
    return Response(json.dumps({"entries": [e.as_dict() for e in page]}), media_type="application/json")


@router.get(
    "/audit/export",
    summary="Every audit entry in the range, streamed as JSON lines or CSV",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "jsonl: one entry per line; csv: a header row, then one row per entry",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def audit_export(
    admin: CallerAdmin,
    since: Since = None,
    until: Until = None,
    format: Annotated[Literal["jsonl", "csv"], Query(description="jsonl (faithful) or csv")] = "jsonl",
) -> Any:
    from runvoy_core.team.audit import write_export

    start, end = _moment("since", since), _moment("until", until)
    # the first page is read before the answer starts, so a refusal is an HTTP error, not a cut stream
    first = admin.audit_entries(since=start, until=end, limit=AUDIT_PAGE)

    def pages() -> Iterator[list[AuditEntry]]:
        page = first
        while True:
            yield page
            if len(page) < AUDIT_PAGE:
                return
            page = admin.audit_entries(since=start, until=end, after_seq=page[-1].seq, limit=AUDIT_PAGE)

    def chunks() -> Iterator[str]:
        for number, page in enumerate(pages()):
            out = io.StringIO()
            write_export(page, out, format)
            text = out.getvalue()
            if format == "csv" and number:
                text = text.split("\n", 1)[1]  # one header row: the first page's
            yield text

    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    return StreamingResponse(chunks(), media_type=media)
