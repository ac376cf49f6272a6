"""The bounds of the document store (``ports.optional.DocumentStore``), checked in one place by every
implementation before it calls its cloud: a bad namespace, key or value is refused the same way everywhere."""

from __future__ import annotations

import json
import re
from typing import Any

from runvoy_core.errors import ValidationFailed

MAX_KEY_CHARS = 256
MAX_VALUE_BYTES = 32 * 1024
"""Azure Table's largest string property is 64 KiB of UTF-16, i.e. 32 Ki characters: the tightest store."""
MAX_LIST_LIMIT = 1000
MAX_VALUE_DEPTH = 32
"""Objects and arrays nested at most this deep (DynamoDB's limit for a native map; deeper JSON would also
reach Python's recursion limit in json, a crash instead of a refusal)."""

_NAMESPACE = re.compile(r"[a-z][a-z0-9-]{0,31}")
_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_CHARS}}}")


def check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ValidationFailed(
            f"invalid document namespace {namespace!r}: lowercase letters, digits and -, "
            "1-32 characters, starting with a letter"
        )
    return namespace


def check_key(key: object, *, what: str = "key") -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValidationFailed(
            f"invalid document {what}: 1-{MAX_KEY_CHARS} printable ASCII characters without spaces"
        )
    return key


def check_prefix(prefix: object) -> str:
    if prefix == "":
        return ""
    return check_key(prefix, what="prefix")


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValidationFailed(
            f"invalid document list limit {limit!r}: a whole number from 1 to {MAX_LIST_LIMIT}"
        )
    return limit


def encode_value(value: object) -> str:
    """The value as compact JSON text (sorted keys), refused unless it is a JSON object of at most
    MAX_VALUE_BYTES bytes encoded."""
    if not isinstance(value, dict):
        raise ValidationFailed("invalid document value: a JSON object (a dict with string keys)")
    _check_nesting(value, 1)
    try:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)
        size = len(text.encode())
    except UnicodeEncodeError:
        raise ValidationFailed(
            "invalid document value: a string is not valid Unicode (a lone surrogate)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"invalid document value: not JSON ({exc})") from None
    if size > MAX_VALUE_BYTES:
        raise ValidationFailed(f"invalid document value: larger than {MAX_VALUE_BYTES} bytes as JSON")
    return text


def _check_nesting(value: object, depth: int) -> None:
    # json.dumps would turn a non-string key into text ({1: x} read back as {"1": x}): refused instead
    if isinstance(value, dict | list | tuple) and depth > MAX_VALUE_DEPTH:
        raise ValidationFailed(f"invalid document value: nested more than {MAX_VALUE_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationFailed(f"invalid document value: an object key is not a string ({key!r})")
            _check_nesting(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_nesting(item, depth + 1)


def decode_value(text: str | bytes) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("a stored document is not a JSON object")
    return value
