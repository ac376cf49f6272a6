"""Container group names and tags: how a run is found again from its execution id."""

from __future__ import annotations

import hashlib
import re

PREFIX = "runvoy-"
MAX_NAME = 63
TAG_MARKER = "runvoy"
TAG_EXECUTION = "runvoy-execution"
TAG_REQUEST = "runvoy-request"
_VALID = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def group_name(execution_id: str) -> str:
    """A valid ACI group name (``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63) derived only from the id, so
    the same execution always maps to the same group (that is what makes a retried start safe)."""
    candidate = PREFIX + execution_id.lower()
    if len(candidate) <= MAX_NAME and _VALID.match(candidate):
        return candidate
    cleaned = re.sub(r"[^a-z0-9-]+", "-", execution_id.lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-")
    digest = hashlib.sha256(execution_id.encode()).hexdigest()[:8]
    room = MAX_NAME - len(PREFIX) - len(digest) - 1
    return f"{PREFIX}{cleaned[:room].rstrip('-')}-{digest}".replace("--", "-")


def is_valid_group_name(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_VALID.match(name))


def make_ref(resource_group: str, name: str) -> str:
    return f"{resource_group}/{name}"


def split_ref(ref: str, default_group: str) -> tuple[str, str]:
    group, sep, name = ref.rpartition("/")
    return (group, name) if sep else (default_group, ref)
