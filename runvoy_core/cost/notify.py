"""The built-in webhook notifier: POST an alert as JSON to a configured URL.

It never raises: a notifier that is down must not stop a run; failures are logged and reported as False.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from runvoy_core.logging import get_logger

log = get_logger(__name__)

DEFAULT_TIMEOUT = 5.0
USER_AGENT = "runvoy-budget-notifier"


def post_json(url: str, payload: dict[str, Any], *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Send ``payload``; True when the server answered 2xx."""
    if not url.startswith(("http://", "https://")):
        log.warning("notify.bad_url", reason="webhook_url must start with http:// or https://")
        return False
    body = json.dumps(payload, default=str).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        log.warning("notify.rejected", status=exc.code)
        return False
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # the URL may embed a token: log the failure's kind, never the URL
        log.warning("notify.failed", error=type(exc).__name__)
        return False
    return 200 <= status < 300
