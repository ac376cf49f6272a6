"""Every test gets its own RUNVOY_HOME and config file (the kit's ``runvoy_home`` fixture, from its pytest
plugin), so nothing leaks between tests or from the user. CLI subprocesses start cold unless a test asks for
``warm_process``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runvoy_core.testing.waiting import wait_for


@pytest.fixture(autouse=True)
def _isolated(runvoy_home: Path) -> Path:
    return runvoy_home


@pytest.fixture
def warm_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The `runvoy` commands of this test go through a warm process of their own (runvoy_cli.warm, decision
    1414), already up when the test starts. Yields the trace file its children append to: one line per
    command served warm (the command line, the exit status, and the modules the child had to import)."""
    runtime = Path(tempfile.mkdtemp(prefix="rvw"))  # short: a socket's path has room for ~100 bytes
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("RUNVOY_WARM", "1")
    trace = runtime / "trace"
    monkeypatch.setenv("RUNVOY_WARM_TRACE", str(trace))
    runvoy = str(Path(sys.executable).parent / "runvoy")
    # the first command runs cold and starts the server; its socket appears once everything is imported
    subprocess.run([runvoy, "list"], env=os.environ.copy(), capture_output=True, timeout=120, check=True)
    folder = runtime / "runvoy"
    wait_for(lambda: any(folder.glob("*.sock")) or None, what="the warm process is listening")
    try:
        yield trace
    finally:
        for lock in folder.glob("*.lock"):
            text = lock.read_text().strip()
            if text.isdigit():
                try:
                    os.kill(int(text), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(runtime, ignore_errors=True)


def served_warm(trace: Path) -> list[list[str]]:
    """The trace's lines: [command line, exit status, modules imported by the child, its CPU time in ms]."""
    if not trace.exists():
        return []
    return [line.split("\t") for line in trace.read_text().splitlines()]
