"""The tests' handshake helpers: they return as soon as the state is reached and fail with what they waited for."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from runvoy_core.testing.waiting import gate, wait_for, wait_for_file


def test_wait_for_returns_the_first_true_value() -> None:
    answers = iter([None, 0, [], "found"])
    assert wait_for(lambda: next(answers), what="an answer", interval=0) == "found"


def test_wait_for_fails_with_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.1s waiting for the moon; last seen: \[\]"):
        wait_for(lambda: [], what="the moon", timeout=0.1, interval=0.01)


def test_wait_for_file_waits_for_its_content(tmp_path: Path) -> None:
    path = tmp_path / "pid"
    path.write_text("")
    writer = threading.Timer(0.1, lambda: path.write_text("123\n"))
    writer.start()
    try:
        assert wait_for_file(path, containing="\n") == "123\n"
    finally:
        writer.join()
    (tmp_path / "empty").touch()
    assert wait_for_file(tmp_path / "empty") == ""


def test_a_gated_command_runs_on_only_once_the_file_exists(tmp_path: Path) -> None:
    release = tmp_path / "release"
    proc = subprocess.Popen(
        ["/bin/sh", "-c", f"{gate(release)}; echo through"], stdout=subprocess.PIPE, text=True
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(0.3)  # held: this is the negative check, a longer hold proves nothing more
        release.touch()
        out, _ = proc.communicate(timeout=60)
        assert out == "through\n" and proc.returncode == 0
    finally:
        proc.kill()
        proc.wait()
