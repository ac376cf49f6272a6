"""The audit log: an append-only hash chain of entries in the provider's document store (decision 1509).

Each entry is one document of the namespace ``audit``, keyed ``e/`` + its sequence number in 12 digits, so
keys sort in chain order. An entry carries the hash of the one before it and its own hash, a sha256 over the
canonical JSON of all its other fields: editing, removing, inserting or reordering an entry breaks the chain.

Many writers (threads, processes, server replicas) append to one chain with no lock: creating the entry
document *if absent* is the point where an entry takes its place, and a writer that finds its number taken
reads on to the new end and tries the next one. A ``head`` document (compare-and-swap, only ever moved
forward) names the last entry: a writer starts from it instead of reading the whole chain, and ``verify``
compares it with the chain's end to notice a removed tail. A writer that crashed between its entry and the
head leaves the head one entry behind; the next writer reads past it and moves it on.

What ``verify`` cannot see: somebody with write access to the store who rewrites the whole chain from some
entry on, with fresh hashes, and the head with it (the hashes use no secret). Keeping the last hash outside
the store (``runvoy audit verify`` prints it; ``--anchor`` checks a kept one) turns that into a detected edit.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from runvoy_core.errors import AlreadyExists, ValidationFailed, VersionConflict
from runvoy_core.logging import current_request_id, get_logger

if TYPE_CHECKING:
    from runvoy_core.ports.optional import Document, DocumentStore
    from runvoy_core.team.context import Caller

log = get_logger("runvoy.audit")

NAMESPACE = "audit"
HEAD_KEY = "head"
ENTRY_PREFIX = "e/"
SEQ_DIGITS = 12
MAX_SEQ = 10**SEQ_DIGITS - 1
GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry."""
OUTCOMES = ("allowed", "denied", "failed", "error")
COLUMNS = (
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
)
"""Every field of an entry, in the order of an export (csv columns, jsonl keys)."""
FORMATS = ("jsonl", "csv")

PAGE = 1000
MAX_ATTEMPTS = 1000
"""Appends that lose the race this many times in a row give up (each loss means another writer appended)."""

# bounds of each field, in characters: an entry stays far below the store's 32 KiB per document
_LIMITS = {
    "actor": 128,
    "actor_kind": 16,
    "role": 16,
    "team": 128,
    "action": 64,
    "resource": 512,
    "request_id": 128,
    "address": 256,
}
MAX_DETAIL_KEYS = 16
MAX_DETAIL_KEY_CHARS = 64
MAX_DETAIL_VALUE_CHARS = 256
MAX_DETAIL_BYTES = 4096

_SECRET_NAME = re.compile(
    r"token|secret|passw|credential|authori[sz]ation|cookie|api.?key|access.?key|(^|[^a-z])t?otp([^a-z]|$)",
    re.I,
)
_API_KEY = re.compile(r"(rvk_[0-9a-f]{16}_)[A-Za-z0-9_-]+")
_HASH = re.compile(r"[0-9a-f]{64}")
REDACTED = "[redacted]"

_UNSET: Any = object()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def entry_key(seq: int) -> str:
    return f"{ENTRY_PREFIX}{seq:0{SEQ_DIGITS}d}"


def _key_seq(key: str) -> int | None:
    digits = key.removeprefix(ENTRY_PREFIX)
    if len(digits) != SEQ_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


def check_page(after_seq: object, limit: object) -> tuple[int, int]:
    """``after_seq`` 0 to MAX_SEQ and ``limit`` 1 to PAGE, or ValidationFailed naming the bad one."""
    if isinstance(after_seq, bool) or not isinstance(after_seq, int) or not 0 <= after_seq <= MAX_SEQ:
        raise ValidationFailed(f"invalid audit position {after_seq!r}: a whole number from 0 to {MAX_SEQ}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE:
        raise ValidationFailed(f"invalid audit page size {limit!r}: a whole number from 1 to {PAGE}")
    return after_seq, limit


def _utc(moment: datetime | None) -> datetime | None:
    # a time without a zone is UTC, as every time runvoy stores
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def entry_hash(value: dict[str, Any]) -> str:
    """The sha256 (hex) of an entry's canonical JSON: every field but ``hash`` itself, keys sorted."""
    return hashlib.sha256(_canonical({k: v for k, v in value.items() if k != "hash"})).hexdigest()


def _clean(text: str, limit: int) -> str:
    """Text that encodes as UTF-8 (a lone surrogate would not) with API keys masked, cut to ``limit``."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _API_KEY.sub(lambda m: m.group(1) + REDACTED, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded(name: str, value: object) -> str | None:
    if value is None:
        return None
    return _clean(str(value), _LIMITS[name])


def bound_detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    """At most MAX_DETAIL_KEYS scalar values, each bounded, MAX_DETAIL_BYTES in all; a value under a name
    that looks secret is replaced, and anything that looks like an API key masked. Numbers other than
    whole ones are kept as text, so that no store's number type can change what was hashed."""
    bounded: dict[str, Any] = {}
    size = 2
    for raw_key, raw in (detail or {}).items():
        if len(bounded) == MAX_DETAIL_KEYS:
            bounded["truncated"] = True
            break
        key = _clean(str(raw_key), MAX_DETAIL_KEY_CHARS)
        value: Any
        if _SECRET_NAME.search(key):
            value = REDACTED
        elif raw is None or isinstance(raw, bool):
            value = raw
        elif isinstance(raw, int):
            value = raw if abs(raw) < 2**53 else str(raw)
        elif isinstance(raw, float):
            value = repr(raw) if math.isfinite(raw) else str(raw)
        else:
            value = _clean(str(raw), MAX_DETAIL_VALUE_CHARS)
        cost = len(_canonical({key: value})) + 1
        if size + cost > MAX_DETAIL_BYTES:
            bounded["truncated"] = True
            break
        bounded[key] = value
        size += cost
    return bounded


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the chain, as stored (and as exported)."""

    seq: int
    at: datetime
    actor: str | None
    actor_kind: str | None
    role: str | None
    team: str | None
    action: str
    resource: str
    outcome: str
    request_id: str | None
    address: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The stored form, keys in COLUMNS order: what the hash covers (less ``hash``)."""
        return {
            "seq": self.seq,
            "at": format_time(self.at),
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "role": self.role,
            "team": self.team,
            "action": self.action,
            "resource": self.resource,
            "outcome": self.outcome,
            "request_id": self.request_id,
            "address": self.address,
            "detail": dict(self.detail),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> AuditEntry:
        """The entry a stored (or exported) dict describes; ValueError when it is not one."""
        problem = _shape_problem(value)
        if problem:
            raise ValueError(problem)
        return cls(
            seq=value["seq"],
            at=parse_time(value["at"]),
            actor=value["actor"],
            actor_kind=value["actor_kind"],
            role=value["role"],
            team=value["team"],
            action=value["action"],
            resource=value["resource"],
            outcome=value["outcome"],
            request_id=value["request_id"],
            address=value["address"],
            detail=dict(value["detail"]),
            prev_hash=value["prev_hash"],
            hash=value["hash"],
        )


def _shape_problem(value: dict[str, Any]) -> str | None:
    """What makes ``value`` something other than an entry (None when it is one)."""
    if set(value) != set(COLUMNS):
        return "its fields are not an entry's"
    seq = value["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
        return "its seq is not a number"
    for name in ("at", "action", "resource", "outcome", "prev_hash", "hash"):
        if not isinstance(value[name], str):
            return f"its {name} is not text"
    for name in ("actor", "actor_kind", "role", "team", "request_id", "address"):
        if value[name] is not None and not isinstance(value[name], str):
            return f"its {name} is not text"
    if not isinstance(value["detail"], dict):
        return "its detail is not an object"
    if not _HASH.fullmatch(value["prev_hash"]) or not _HASH.fullmatch(value["hash"]):
        return "its hashes are not sha256 hex digests"
    try:
        parse_time(value["at"])
    except ValueError:
        return "its time is not a time"
    return None


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """Where the chain first breaks."""

    kind: str
    """``edited`` (an entry's content no longer matches its hash, or the head's), ``removed`` (entries
    missing inside the chain), ``truncated`` (entries missing at its end), ``reordered`` (an entry under
    another entry's number), ``inserted`` (an entry that does not follow the one before it: added,
    replaced or moved), ``head`` (the head document is missing or unreadable)."""
    seq: int
    """The number of the first entry concerned (for ``removed``/``truncated``: the first one missing)."""
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "message": self.message}


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What ``verify`` found. ``ok`` False with the first problem; nothing is raised for a broken chain."""

    entries: int
    """Entries read."""
    last_seq: int
    last_hash: str
    """The hash of the last entry: keep it outside the store, and check it later with ``anchor``."""
    head_seq: int | None
    problem: AuditProblem | None = None
    first_at: datetime | None = None
    last_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "head_seq": self.head_seq,
            "first_at": format_time(self.first_at) if self.first_at else None,
            "last_at": format_time(self.last_at) if self.last_at else None,
            "problem": self.problem.as_dict() if self.problem else None,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> AuditReport:
        problem = value.get("problem")
        return cls(
            entries=int(value["entries"]),
            last_seq=int(value["last_seq"]),
            last_hash=str(value["last_hash"]),
            head_seq=None if value.get("head_seq") is None else int(value["head_seq"]),
            problem=AuditProblem(str(problem["kind"]), int(problem["seq"]), str(problem["message"]))
            if problem
            else None,
            first_at=parse_time(value["first_at"]) if value.get("first_at") else None,
            last_at=parse_time(value["last_at"]) if value.get("last_at") else None,
        )


@dataclass(slots=True)
class _Tip:
    """The last entry a writer knows of."""

    seq: int = 0
    hash: str = GENESIS_HASH
    at: datetime | None = None

    @classmethod
    def from_value(cls, value: dict[str, Any], seq: int) -> _Tip:
        # trusts what it reads only as far as it must: a damaged entry is verify's to report, and the chain
        # goes on from its hash as stored (or as computed, when even that is unreadable)
        stored = value.get("hash")
        digest = stored if isinstance(stored, str) and _HASH.fullmatch(stored) else entry_hash(value)
        try:
            at: datetime | None = parse_time(value["at"])
        except (KeyError, TypeError, ValueError):
            at = None
        return cls(seq, digest, at)


@dataclass
class AuditLog:
    """The audit chain in ``store`` (any ``DocumentStore``: the local SQLite store, DynamoDB, GCS, Azure)."""

    store: DocumentStore
    clock: Callable[[], datetime] = field(default=_utcnow)

    # -- writing ---------------------------------------------------------------------------------------------

    def append(
        self,
        action: str,
        resource: str,
        outcome: str,
        *,
        caller: Caller | None = None,
        request_id: str | None = _UNSET,
        address: str | None = _UNSET,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry and return it as stored. ``request_id`` defaults to the bound request id,
        ``address`` to the caller's; ``detail`` is bounded and secrets in it masked (``bound_detail``)."""
        if outcome not in OUTCOMES:
            raise ValidationFailed(f"invalid audit outcome {outcome!r}: one of {', '.join(OUTCOMES)}")
        if request_id is _UNSET:
            request_id = current_request_id()
        if address is _UNSET:
            address = caller.address if caller is not None else None
        fields: dict[str, Any] = {
            "actor": _bounded("actor", caller.name if caller else None),
            "actor_kind": _bounded("actor_kind", caller.kind if caller else None),
            "role": _bounded("role", caller.role if caller else None),
            "team": _bounded("team", caller.team if caller else None),
            "action": _bounded("action", action),
            "resource": _bounded("resource", resource),
            "outcome": outcome,
            "request_id": _bounded("request_id", request_id),
            "address": _bounded("address", address),
            "detail": bound_detail(detail),
        }
        head = self.store.get_document(NAMESPACE, HEAD_KEY)
        tip = self._tip_from_head(head)
        for _ in range(MAX_ATTEMPTS):
            tip = self._read_to_end(tip)
            if tip.seq >= MAX_SEQ:
                raise ValidationFailed("the audit chain is full (10^12 entries)")
            now = self.clock().astimezone(UTC)
            # entries' times never go back along the chain (replicas' clocks differ a little), so a
            # reader can look for a time by bisection
            at = max(now, tip.at) if tip.at is not None else now
            value = {"seq": tip.seq + 1, "at": format_time(at), **fields, "prev_hash": tip.hash}
            value["hash"] = entry_hash(value)
            try:
                self.store.put_document(NAMESPACE, entry_key(tip.seq + 1), value)
            except AlreadyExists:
                continue  # another writer took this number: read on to the new end
            entry = AuditEntry.from_dict(value)
            self._move_head(head, entry)
            return entry
        raise VersionConflict(
            f"could not append to the audit log after {MAX_ATTEMPTS} attempts: other writers kept winning"
        )

    def _tip_from_head(self, head: Document | None) -> _Tip:
        if head is None:
            return _Tip()
        seq = head.value.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
            return _Tip()  # an unreadable head: read the chain from the start
        tip = _Tip.from_value(head.value, seq)
        if seq == 0:
            tip.hash = GENESIS_HASH
        return tip

    def _read_to_end(self, tip: _Tip) -> _Tip:
        """The last entry at or after ``tip``: the head lags when a writer crashed before moving it, or
        while another writer is between its entry and the head."""
        while True:
            page = self.store.list_documents(
                NAMESPACE, prefix=ENTRY_PREFIX, after=entry_key(tip.seq) if tip.seq else None, limit=PAGE
            )
            for doc in page:
                seq = _key_seq(doc.key)
                if seq is not None and seq > tip.seq:
                    tip = _Tip.from_value(doc.value, seq)
            if len(page) < PAGE:
                return tip

    def _move_head(self, head: Document | None, entry: AuditEntry) -> None:
        """Move the head forward to ``entry`` unless another writer moved it further. Best effort: the
        entry is written and the next writer reads past a lagging head, so a failure here is only logged."""
        value = {"seq": entry.seq, "hash": entry.hash, "at": format_time(entry.at)}
        try:
            for _ in range(MAX_ATTEMPTS):
                if head is None:
                    try:
                        self.store.put_document(NAMESPACE, HEAD_KEY, value)
                        return
                    except AlreadyExists:
                        pass
                else:
                    seq = head.value.get("seq")
                    if isinstance(seq, int) and not isinstance(seq, bool) and seq >= entry.seq:
                        return
                    try:
                        self.store.put_document(NAMESPACE, HEAD_KEY, value, version=head.version)
                        return
                    except VersionConflict:
                        pass
                head = self.store.get_document(NAMESPACE, HEAD_KEY)
        except Exception as exc:  # the entry is stored: a store failure here must not fail the append
            log.warning("audit head not moved", seq=entry.seq, error=type(exc).__name__)

    # -- reading ---------------------------------------------------------------------------------------------

    def _documents(self, after_seq: int = 0) -> Iterator[Document]:
        after = entry_key(after_seq) if after_seq > 0 else None
        while True:
            page = self.store.list_documents(NAMESPACE, prefix=ENTRY_PREFIX, after=after, limit=PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].key

    def _start_for(self, since: datetime) -> int:
        """A seq after which no entry is at or after ``since`` is missed: entries' times never decrease,
        so bisect over the numbers up to the head; 0 (read from the start) when a probe finds a gap."""
        head = self.store.get_document(NAMESPACE, HEAD_KEY)
        high = self._tip_from_head(head).seq
        low = 0  # invariant: entries up to `low` are before `since`
        while low < high:
            middle = (low + high + 1) // 2
            doc = self.store.get_document(NAMESPACE, entry_key(middle))
            try:
                at = parse_time(doc.value["at"]) if doc is not None else None
            except (KeyError, TypeError, ValueError):
                at = None
            if at is None:
                return 0
            if at < since:
                low = middle
            else:
                high = middle - 1
        return low

    def entries(
        self, *, since: datetime | None = None, until: datetime | None = None, after_seq: int = 0
    ) -> Iterator[AuditEntry]:
        """Entries in chain order with ``since <= at < until`` and a number above ``after_seq``. An
        entry that is not readable as one is skipped (``verify`` reports it)."""
        since, until = _utc(since), _utc(until)
        start = after_seq
        if since is not None:
            start = max(start, self._start_for(since))
        for doc in self._documents(start):
            try:
                entry = AuditEntry.from_dict(doc.value)
            except ValueError:
                log.warning("unreadable audit entry skipped", key=doc.key)
                continue
            if since is not None and entry.at < since:
                continue
            if until is not None and entry.at >= until:
                return
            yield entry

    def page(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = PAGE,
    ) -> list[AuditEntry]:
        """Up to ``limit`` entries of ``entries``: pass the last one's seq as ``after_seq`` for the next."""
        found: list[AuditEntry] = []
        for entry in self.entries(since=since, until=until, after_seq=after_seq):
            found.append(entry)
            if len(found) >= limit:
                break
        return found

    # -- checking --------------------------------------------------------------------------------------------

    def verify(self, *, anchor: tuple[int, str] | None = None) -> AuditReport:
        """Walk the whole chain and report the first entry edited, removed, inserted or reordered, and a
        tail removed (the head names a later entry than the last one). ``anchor`` (seq, hash): a hash kept
        outside the store from an earlier verify or export, which that entry must still have."""
        # the head first: entries appended while the walk runs are then after it, never a false truncation
        head = self.store.get_document(NAMESPACE, HEAD_KEY)
        prev_seq, prev_hash = 0, GENESIS_HASH
        count = 0
        first_at: datetime | None = None
        last_at: datetime | None = None
        hashes: dict[int, str] = {}
        head_seq = self._head_seq(head)
        wanted = {s for s in (head_seq, anchor[0] if anchor else None) if s}

        def report(problem: AuditProblem | None) -> AuditReport:
            return AuditReport(count, prev_seq, prev_hash, head_seq, problem, first_at, last_at)

        for doc in self._documents():
            key_seq = _key_seq(doc.key)
            if key_seq is None:
                return report(AuditProblem("inserted", prev_seq + 1, f"{doc.key!r} is not an entry's key"))
            value = doc.value
            shape = _shape_problem(value)
            if shape:
                return report(AuditProblem("edited", key_seq, f"entry {key_seq} was edited: {shape}"))
            if entry_hash(value) != value["hash"]:
                return report(
                    AuditProblem(
                        "edited", key_seq, f"entry {key_seq} was edited: its content does not match its hash"
                    )
                )
            if value["seq"] != key_seq:
                return report(
                    AuditProblem(
                        "reordered",
                        key_seq,
                        f"entry {value['seq']} is stored as entry {key_seq}: entries were moved",
                    )
                )
            if key_seq != prev_seq + 1:
                missing = (
                    f"entry {prev_seq + 1} was"
                    if key_seq == prev_seq + 2
                    else f"entries {prev_seq + 1} to {key_seq - 1} were"
                )
                return report(AuditProblem("removed", prev_seq + 1, f"{missing} removed"))
            if value["prev_hash"] != prev_hash:
                return report(
                    AuditProblem(
                        "inserted",
                        key_seq,
                        f"entry {key_seq} does not follow entry {prev_seq} (its prev_hash is not that entry's "
                        "hash): an entry was inserted, replaced or moved",
                    )
                )
            prev_seq, prev_hash = key_seq, value["hash"]
            at = parse_time(value["at"])
            first_at = first_at or at
            last_at = at
            count += 1
            if key_seq in wanted:
                hashes[key_seq] = prev_hash
        if head is None:
            if count:
                return report(
                    AuditProblem(
                        "head",
                        prev_seq,
                        "the head document is missing, so a removed tail cannot be seen (a writer that "
                        "crashed right after the first entry leaves this; the next append writes it)",
                    )
                )
        elif head_seq is None:
            return report(AuditProblem("head", prev_seq, "the head document was edited: it names no entry"))
        elif head_seq > prev_seq:
            return report(
                AuditProblem(
                    "truncated",
                    prev_seq + 1,
                    f"the chain ends at entry {prev_seq} but the head names entry {head_seq}: "
                    "entries at the end were removed",
                )
            )
        elif head_seq and hashes.get(head_seq) != head.value.get("hash"):
            return report(
                AuditProblem(
                    "edited", head_seq, f"entry {head_seq} is not the one the head names: it was rewritten"
                )
            )
        if anchor is not None:
            seq, digest = anchor
            if seq > prev_seq:
                return report(
                    AuditProblem(
                        "truncated",
                        prev_seq + 1,
                        f"the chain ends at entry {prev_seq}, before the anchor {seq}",
                    )
                )
            if hashes.get(seq) != digest:
                return report(
                    AuditProblem(
                        "edited",
                        seq,
                        f"entry {seq} does not have the anchor's hash: the chain was rewritten from there on "
                        "or before",
                    )
                )
        return report(None)

    @staticmethod
    def _head_seq(head: Document | None) -> int | None:
        if head is None:
            return 0
        seq = head.value.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
            return None
        return seq


# -- export ----------------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    # a spreadsheet would run a cell starting with one of these as a formula (CSV injection); jsonl is the
    # faithful export
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_export(entries: Iterable[AuditEntry], out: TextIO, fmt: str) -> int:
    """Write ``entries`` to ``out`` as jsonl (one stored entry per line, keys in COLUMNS order) or csv
    (a header of COLUMNS; ``detail`` as JSON text); the number written."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"invalid export format {fmt!r}: one of {', '.join(FORMATS)}")
    count = 0
    if fmt == "jsonl":
        for entry in entries:
            out.write(json.dumps(entry.as_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
        return count
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for entry in entries:
        row = entry.as_dict()
        writer.writerow([_csv_cell(row[name]) for name in COLUMNS])
        count += 1
    return count
