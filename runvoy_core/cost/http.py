"""A small JSON GET over urllib for the public price endpoints."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def get_json(url: str, *, timeout: float = 60.0) -> dict[str, Any]:  # pragma: no cover - network
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "runvoy"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: dict[str, Any] = json.loads(response.read().decode("utf-8"))
    return data
