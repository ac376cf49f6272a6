"""``runvoy server``: the app under uvicorn in this process (decision 1515).

On start: the provider is wired and checked for a document store, the first admin is made on an empty store
(its key printed once, unless ``RUNVOY_BOOTSTRAP_TOKEN`` gave it), then the socket is bound and ONE line says
where it listens — what a supervisor, a test or a person waits for. SIGTERM and SIGINT stop it gracefully:
no new connection, requests in flight finish (streams get ``SHUTDOWN_GRACE`` seconds), exit status 0."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from runvoy_server.app import create_app

if TYPE_CHECKING:
    import socket

    from runvoy_core.config import Settings

BOOTSTRAP_ENV = "RUNVOY_BOOTSTRAP_TOKEN"
SHUTDOWN_GRACE = 10
"""Seconds open streams (runs attached, logs followed) get to end after SIGTERM; then they are closed."""


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, host: str) -> None:
        super().__init__(config)
        self.host = host

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            port = self.servers[0].sockets[0].getsockname()[1]
            print(f"runvoy server listening on {url_of(self.host, port)}", file=sys.stderr, flush=True)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn's own handler also re-raises the signal once stopped (the process would then die of it):
        # a stop asked for is a clean exit here
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def bootstrap(app: Any) -> None:
    """Make the first admin on an empty store; print its key once (to stderr, before the ready line)."""
    from runvoy_core.team.bootstrap import ensure_bootstrap

    given = os.environ.get(BOOTSTRAP_ENV) or None
    token = ensure_bootstrap(app.state.runvoy.documents, given)
    if token is not None:
        print(f"runvoy server: bootstrap admin key (shown once): {token}", file=sys.stderr, flush=True)


def serve(settings: Settings, *, host: str, port: int) -> None:
    app = create_app(settings)
    bootstrap(app)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",  # uvicorn's own lines; runvoy logs requests itself, with their request id
        access_log=False,
        proxy_headers=False,  # the app believes forwarded headers from [serve] trusted_proxies only
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )
    _Server(config, host).run()
