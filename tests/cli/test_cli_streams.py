"""The attached CLI's byte path: file ranges copied with sendfile to real descriptors (a file, a pipe), and
the plain copy where sendfile cannot work (no descriptor, or a target that refuses it)."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runvoy_cli.streams import TerminalOutput
from runvoy_core.ports.logs import FileRange
from runvoy_core.testing.waiting import DEADLINE, gate


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "task.log"
    path.write_bytes(b"".join(f"line {i}\n".encode() for i in range(50_000)))
    return path


def test_ranges_reach_a_real_file_byte_for_byte(
    log_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = log_file.read_bytes()
    sent: list[int] = []
    real_sendfile = os.sendfile

    def counting(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        sent.append(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", counting)
    out_path = tmp_path / "stdout"
    with open(out_path, "w") as out:
        original, sys.stdout = sys.stdout, out
        try:
            output = TerminalOutput()
            print("before", file=out)  # text written first stays first
            output.write_range(FileRange("stdout", log_file, 10, 1000))
            output.write_range(FileRange("stdout", log_file, 1010, len(data) - 1010))
        finally:
            sys.stdout = original
    assert out_path.read_bytes() == b"before\n" + data[10:]
    assert sent, "the kernel copy was not used"


def test_a_range_past_the_end_of_the_file_shows_what_there_is(log_file: Path, tmp_path: Path) -> None:
    size = log_file.stat().st_size
    out_path = tmp_path / "stdout"
    with open(out_path, "w") as out:
        original, sys.stdout = sys.stdout, out
        try:
            TerminalOutput().write_range(FileRange("stdout", log_file, size - 5, 100))
        finally:
            sys.stdout = original
    assert out_path.read_bytes() == log_file.read_bytes()[-5:]


def test_without_sendfile_the_bytes_are_copied(
    log_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", refuse)
    out_path = tmp_path / "stdout"
    with open(out_path, "w") as out:
        monkeypatch.setattr(sys, "stdout", out)
        TerminalOutput().write_range(FileRange("stdout", log_file, 0, 100))
    assert out_path.read_bytes() == log_file.read_bytes()[:100]


def test_a_stream_without_a_descriptor_gets_the_bytes(
    log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stderr", captured)
    TerminalOutput().write_range(FileRange("stderr", log_file, 0, 14))
    captured.flush()
    assert captured.buffer.getvalue() == b"line 0\nline 1\n"  # type: ignore[attr-defined]


def test_big_output_through_the_real_cli_is_byte_exact(runvoy_bin: str, tmp_path: Path) -> None:
    expected = subprocess.run(["seq", "1", "400000"], capture_output=True, check=True).stdout
    to_file = tmp_path / "out"
    with open(to_file, "wb") as out:
        done = subprocess.run(
            [runvoy_bin, "run", "seq 1 400000"], stdout=out, stderr=subprocess.PIPE, timeout=60
        )
    assert done.returncode == 0, done.stderr
    assert to_file.read_bytes() == expected
    piped = subprocess.run([runvoy_bin, "run", "seq 1 400000"], capture_output=True, timeout=60)
    assert piped.returncode == 0 and piped.stdout == expected


def test_logs_of_big_output_are_byte_exact_per_stream(runvoy_bin: str, tmp_path: Path) -> None:
    started = subprocess.run(
        [runvoy_bin, "run", "-d", "seq 1 300000; echo done >&2"], capture_output=True, text=True, timeout=60
    )
    execution_id = started.stdout.strip()
    assert subprocess.run([runvoy_bin, "wait", execution_id], capture_output=True, timeout=60).returncode == 0
    out_path = tmp_path / "out"
    with open(out_path, "wb") as out:
        done = subprocess.run(
            [runvoy_bin, "logs", execution_id], stdout=out, stderr=subprocess.PIPE, timeout=60
        )
    assert done.returncode == 0 and done.stderr == b"done\n"
    assert out_path.read_bytes() == subprocess.run(["seq", "1", "300000"], capture_output=True).stdout


def test_logs_follow_with_timestamps_prints_each_line_as_it_comes(runvoy_bin: str, tmp_path: Path) -> None:
    import select

    release = tmp_path / "release"
    # the run cannot end before the test has read the first line from the follower
    started = subprocess.run(
        [runvoy_bin, "run", "-d", f"echo first; {gate(release)}; echo second"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    follower = subprocess.Popen(
        [runvoy_bin, "logs", "-f", "-t", started.stdout.strip()], stdout=subprocess.PIPE, text=True
    )
    try:
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], DEADLINE)
        assert ready, "the first line was held back"
        assert follower.stdout.readline().endswith("Z first\n")
        assert follower.poll() is None
        release.touch()
        rest, _ = follower.communicate(timeout=DEADLINE)
        assert rest.endswith("Z second\n") and follower.returncode == 0
    finally:
        follower.kill()
