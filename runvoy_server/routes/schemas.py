"""Responses as records: a route answers with a record's own msgspec JSON (what ``model_dump_json`` writes,
the same bytes a store keeps), and the OpenAPI schema describes it with the JSON Schema msgspec derives from
the same classes, so the schema cannot drift from what is sent (decision 1516)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec
from fastapi import Response

from runvoy_core.models import Execution, LockRecord, LogEvent, LogPage, StatusChange
from runvoy_core.records import _PARSERS, Record

REF = "#/$defs/{name}"
RECORDS: tuple[type[Record], ...] = (Execution, StatusChange, LogEvent, LogPage, LockRecord)
_STORED = {
    float: {"type": "number"},
    int: {"type": "integer"},
    Decimal: {"type": "string", "format": "decimal"},
}


def _schema_hook(kind: type) -> dict[str, Any]:
    # a field with a parsed form ("10m", "2GiB") is stored, and sent, as its parsed value
    entry = _PARSERS.get(kind)
    if entry is None:
        raise NotImplementedError(kind)
    return dict(_STORED[entry[0]])


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every reference replaced by what it names: the records nest without cycles, and a
    self-contained schema needs nothing added to the app's ``components`` (FastAPI builds those from
    pydantic models only)."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    target = node.get("$ref")
    if isinstance(target, str) and target.startswith("#/$defs/"):
        merged = {**defs[target.removeprefix("#/$defs/")], **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs)
    return {key: _inline(value, defs) for key, value in node.items()}


@cache
def schema_of(record: type[Record]) -> dict[str, Any]:
    """The JSON Schema of ``record`` as sent, self-contained."""
    (top,), defs = msgspec.json.schema_components((record,), schema_hook=_schema_hook, ref_template=REF)
    result: dict[str, Any] = _inline(top, defs)
    return result


def ref(name: str) -> dict[str, Any]:
    return schema_of(next(r for r in RECORDS if r.__name__ == name))


def json_answer(
    description: str, schema: dict[str, Any], status: int = 200
) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


def record_answer(
    record: type[Record], description: str, status: int = 200
) -> dict[int | str, dict[str, Any]]:
    return json_answer(description, ref(record.__name__), status)


def list_answer(
    key: str, record: type[Record], description: str, extra: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    properties: dict[str, Any] = {key: {"type": "array", "items": ref(record.__name__)}, **(extra or {})}
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return json_answer(description, schema)


def record_response(record: Record, status: int = 200) -> Response:
    return Response(record.model_dump_json(), status_code=status, media_type="application/json")


def records_response(key: str, records: Iterable[Record], **extra: Any) -> Response:
    import json

    parts = ",".join(r.model_dump_json() for r in records)
    tail = "".join(f",{json.dumps(k)}:{json.dumps(v)}" for k, v in extra.items())
    return Response(f'{{"{key}":[{parts}]{tail}}}', media_type="application/json")


def array_response(records: Iterable[Record]) -> Response:
    return Response("[" + ",".join(r.model_dump_json() for r in records) + "]", media_type="application/json")
