"""Fixtures of the server tests (H7's and H8's reuse them):

- ``start_server(...)``: a real ``runvoy server --host 127.0.0.1 --port 0`` process on this test's RUNVOY_HOME,
  returned once it printed its ready line (the stderr line it prints when it serves, never a sleep);
- ``server``: one such server, bootstrapped with a known admin key (RUNVOY_BOOTSTRAP_TOKEN);
- ``app_client``: the same app in this process under FastAPI's TestClient (faster; middleware and routes are
  the same code), with its admin key.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

RUNVOY = str(Path(sys.executable).parent / "runvoy")
READY = re.compile(r"^runvoy server listening on (http://\S+)$")
BOOTSTRAP = re.compile(r"^runvoy server: bootstrap admin key \(shown once\): (rvk_\S+)$")
START_TIMEOUT = 120.0
"""Generous: a loaded 2-core machine may take a while to import FastAPI and wire the provider."""


def new_token() -> str:
    """A well-formed API key (what RUNVOY_BOOTSTRAP_TOKEN takes)."""
    return f"rvk_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    url: str
    token: str | None
    """The admin key: the one printed at bootstrap, or the one given in RUNVOY_BOOTSTRAP_TOKEN."""
    lines: list[str]
    """Every stderr line so far (the reader thread keeps appending)."""
    printed_token: str | None = None
    _reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        assert self.token is not None
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=timeout)
        return code


def _env(home: Path, token: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNVOY_BOOTSTRAP_TOKEN"}
    env.update(RUNVOY_HOME=str(home), RUNVOY_WARM="0")
    env.setdefault("RUNVOY_CONFIG", str(home / "no-config.toml"))
    if token is not None:
        env["RUNVOY_BOOTSTRAP_TOKEN"] = token
    env.update(extra or {})
    return env


def launch(
    home: Path, *, token: str | None = None, args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], queue.Queue[str | None], list[str], threading.Thread]:
    process = subprocess.Popen(
        [RUNVOY, "server", "--host", "127.0.0.1", "--port", "0", *args],
        env=_env(home, token, env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    seen: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            seen.put(line.rstrip("\n"))
        seen.put(None)  # end of stderr: the process exited

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return process, seen, lines, reader


def wait_ready(
    process: subprocess.Popen[str],
    seen: queue.Queue[str | None],
    lines: list[str],
    reader: threading.Thread,
    token: str | None,
) -> RunningServer:
    printed = None
    while True:
        try:
            line = seen.get(timeout=START_TIMEOUT)
        except queue.Empty:
            process.kill()
            raise AssertionError(f"runvoy server printed no ready line: {lines}") from None
        if line is None:
            raise AssertionError(f"runvoy server exited ({process.wait()}) before it was ready: {lines}")
        if found := BOOTSTRAP.match(line):
            printed = found.group(1)
        if found := READY.match(line):
            return RunningServer(process, found.group(1), token or printed, lines, printed, reader)


StartServer = Callable[..., RunningServer]


@pytest.fixture
def start_server(runvoy_home: Path) -> Iterator[StartServer]:
    """Start ``runvoy server`` processes (on this test's RUNVOY_HOME unless ``home=``); each is stopped at the end."""
    started: list[RunningServer] = []

    def start(
        *,
        home: Path | None = None,
        token: str | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> RunningServer:
        process, seen, lines, reader = launch(home or runvoy_home, token=token, args=args, env=env)
        try:
            running = wait_ready(process, seen, lines, reader, token)
        except BaseException:
            process.kill()
            process.wait()
            raise
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


@pytest.fixture
def server(start_server: StartServer) -> RunningServer:
    """A running server with a known bootstrap admin key."""
    return start_server(token=new_token())


# -- in process ----------------------------------------------------------------------------------------------


@dataclass
class AppClient:
    client: Any
    """A fastapi.testclient.TestClient."""
    app: Any
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakeApp = Callable[..., AppClient]


@pytest.fixture
def make_app() -> Iterator[MakeApp]:
    """``make_app(**serve)``: the app on this test's home with ``[serve]`` keys set, under a TestClient, and
    its bootstrapped admin key; ``routers=`` adds test routers (before the app starts)."""
    from fastapi.testclient import TestClient

    from runvoy_core.config import load_settings
    from runvoy_core.team.bootstrap import ensure_bootstrap
    from runvoy_server.app import create_app

    clients: list[Any] = []

    def make(routers: tuple[Any, ...] = (), **serve: Any) -> AppClient:
        settings = load_settings(serve=serve) if serve else load_settings()
        app = create_app(settings)
        for router in routers:
            app.include_router(router)
        token = new_token()
        ensure_bootstrap(app.state.runvoy.documents, token)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return AppClient(client, app, token)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def app_client(make_app: MakeApp) -> AppClient:
    return make_app()
