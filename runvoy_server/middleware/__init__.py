"""The server's middleware, as plain ASGI classes (not Starlette's BaseHTTPMiddleware, which runs the route in
another task and breaks streaming responses and context variables). ``runvoy_server.app`` stacks them, outermost
first: request id, errors, body limit, timeout, authentication (+ TOTP, + rate limit) — decision 1513."""

from __future__ import annotations

from runvoy_server.middleware.asgi import header, send_error, send_json

__all__ = ["header", "send_error", "send_json"]
