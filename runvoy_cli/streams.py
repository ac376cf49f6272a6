"""Writing a run's output to the terminal: the command's stdout to our stdout, its stderr to our stderr.

Bytes go straight to the binary buffers (no text re-encoding, one flush per batch), and ranges of a local
log file go from the file to our stdout inside the kernel (``sendfile``): that is what keeps `runvoy run`
within reach of the bare command's throughput.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runvoy_core.models import LogEvent
    from runvoy_core.ports.logs import FileRange

SENDFILE_MAX = 1 << 30


def _binary(stream: Any) -> IO[bytes] | None:
    return getattr(stream, "buffer", None)


class TerminalOutput:
    """Two byte sinks, stdout and stderr (both stderr with ``merge_to_stderr``, as `run --json` wants).

    A closed pipe (``runvoy run "yes" | head``) stops the writes to that stream and calls ``on_broken_pipe``
    once (`runvoy run` then stops the run, as a shell pipeline's SIGPIPE would); the output is stored anyway.
    """

    def __init__(
        self, *, merge_to_stderr: bool = False, on_broken_pipe: Callable[[str], None] | None = None
    ) -> None:
        self.merge_to_stderr = merge_to_stderr
        self.on_broken_pipe = on_broken_pipe
        self._broken: set[str] = set()
        self._source: tuple[Path, int] | None = None

    def _stream(self, name: str) -> Any:
        if name == "stdout" and not self.merge_to_stderr:
            return sys.stdout
        return sys.stderr

    def write(self, name: str, data: bytes) -> None:
        self._copy(name, data=data)

    def write_range(self, chunk: FileRange) -> None:
        self._copy(chunk.stream, chunk=chunk)

    def _copy(self, name: str, *, data: bytes | None = None, chunk: FileRange | None = None) -> None:
        target_name = "stdout" if name == "stdout" and not self.merge_to_stderr else "stderr"
        if target_name in self._broken or not (data or chunk):
            return
        stream = self._stream(name)
        try:
            binary = _binary(stream)
            if chunk is not None and binary is not None and self._sendfile(stream, binary, chunk):
                return
            if data is None:
                assert chunk is not None
                data = chunk.read()
            if binary is not None:
                stream.flush()  # text written earlier (click.echo) must come first
                binary.write(data)
                binary.flush()
            else:
                stream.write(data.decode("utf-8", "replace"))
                stream.flush()
        except BrokenPipeError:
            self._broken.add(target_name)
            self._silence(stream)
            if self.on_broken_pipe is not None:
                self.on_broken_pipe(target_name)

    def _sendfile(self, stream: Any, binary: Any, chunk: FileRange) -> bool:
        """Copy the range file-to-fd in the kernel; False (nothing written) where that cannot work: no
        real file descriptor (a test's captured stream), or a platform or target without sendfile."""
        try:
            out_fd = binary.fileno()
        except (AttributeError, OSError, ValueError):
            return False
        stream.flush()
        binary.flush()
        source = self._source_fd(chunk.path)
        offset, end = chunk.offset, chunk.offset + chunk.length
        while offset < end:
            try:
                sent = os.sendfile(out_fd, source, offset, min(end - offset, SENDFILE_MAX))
            except (BlockingIOError, InterruptedError):
                if offset == chunk.offset:
                    return False
                os.set_blocking(out_fd, True)  # a non-blocking terminal: finish this range blocking
                continue
            except OSError as exc:
                if isinstance(exc, BrokenPipeError) or offset != chunk.offset:
                    raise
                return False  # EINVAL/ENOSYS: this target or platform has no sendfile
            if sent == 0:  # the file is shorter than its index says: show what there is
                break
            offset += sent
        return True

    def _source_fd(self, path: Path) -> int:
        """The log file, kept open across ranges: a flood of output comes as hundreds of them."""
        if self._source is None or self._source[0] != path:
            self.close()
            self._source = (path, os.open(path, os.O_RDONLY))  # not inherited by children (PEP 446)
        return self._source[1]

    def close(self) -> None:
        if self._source is not None:
            with contextlib.suppress(OSError):
                os.close(self._source[1])
            self._source = None

    @staticmethod
    def _silence(stream: Any) -> None:
        # point the fd at /dev/null so that the interpreter's final flush does not complain
        with contextlib.suppress(Exception):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)


class RunSink:
    """The LogSink of an attached `runvoy run` (see runvoy_core.runner.LogSink)."""

    def __init__(
        self, *, merge_to_stderr: bool = False, on_broken_pipe: Callable[[str], None] | None = None
    ) -> None:
        self.out = TerminalOutput(merge_to_stderr=merge_to_stderr, on_broken_pipe=on_broken_pipe)
        self.lines = 0

    def write_events(self, events: list[LogEvent]) -> None:
        # consecutive events of one stream become one write
        batch: list[str] = []
        current: str | None = None
        for event in events:
            stream = "stdout" if event.stream == "stdout" else "stderr"
            if stream != current and batch:
                self.out.write(current or "stdout", "".join(batch).encode("utf-8", "replace"))
                batch = []
            current = stream
            batch.append(event.message + "\n")
        if batch:
            self.out.write(current or "stdout", "".join(batch).encode("utf-8", "replace"))
        self.lines += len(events)

    def write_raw(self, stream: str, data: bytes) -> None:
        self.out.write("stdout" if stream == "stdout" else "stderr", data)

    def write_range(self, chunk: FileRange) -> None:
        self.out.write_range(chunk)

    def close(self) -> None:
        self.out.close()


def format_event(event: LogEvent, *, timestamps: bool) -> str:
    if timestamps:
        stamp = event.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return f"{stamp} {event.message}\n"
    return event.message + "\n"
