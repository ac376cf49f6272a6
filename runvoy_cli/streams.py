"""Writing a run's output to the terminal: the command's stdout to our stdout, its stderr to our stderr.

Bytes go straight to the binary buffers (no text re-encoding, one flush per batch), which is what keeps
`runvoy run` within reach of the bare command's throughput.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runvoy_core.models import LogEvent


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

    def _stream(self, name: str) -> Any:
        if name == "stdout" and not self.merge_to_stderr:
            return sys.stdout
        return sys.stderr

    def write(self, name: str, data: bytes) -> None:
        target_name = "stdout" if name == "stdout" and not self.merge_to_stderr else "stderr"
        if target_name in self._broken or not data:
            return
        stream = self._stream(name)
        try:
            binary = _binary(stream)
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


def format_event(event: LogEvent, *, timestamps: bool) -> str:
    if timestamps:
        stamp = event.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return f"{stamp} {event.message}\n"
    return event.message + "\n"
