"""``runvoy logs ID``: the command's output, stdout lines on stdout and stderr lines on stderr."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option

if TYPE_CHECKING:
    from runvoy_cli.streams import TerminalOutput

EXIT_INTERRUPTED = 130


@click.command("logs")
@click.argument("execution_id", metavar="ID", type=forms.EXECUTION_ID)
@provider_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option(
    "--tail",
    "-n",
    type=forms.IntRange(0, 1_000_000),
    default=None,
    metavar="N",
    help="Only the last N lines (0 to 1000000).",
)
@click.option("--grep", "pattern", metavar="TEXT", type=forms.GREP, help="Only lines containing TEXT.")
@click.option("--timestamps", "-t", is_flag=True, help="Prefix each line with its UTC timestamp.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line on stdout: timestamp, stream, message."
)
@handle_errors
def cli(
    execution_id: str,
    provider: str | None,
    follow: bool,
    tail: int | None,
    pattern: str | None,
    timestamps: bool,
    as_json: bool,
) -> None:
    """Print an execution's logs (ID may be any unique prefix).

    The command's stdout goes to stdout and its stderr to stderr, as when it ran; with --json every line
    is a JSON object on stdout (JSON Lines, also while following).
    """
    from runvoy_cli.streams import RunSink, TerminalOutput, format_event

    rv = state().runvoy(provider)
    if tail is None and pattern is None and not timestamps and not as_json:
        # the output as it was: copied in bulk (file ranges or raw chunks), not one event per line
        sink = RunSink()
        try:
            rv.copy_logs(execution_id, sink, follow=follow)
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)
        finally:
            sink.close()
        return
    events = rv.logs(execution_id, follow=follow, tail=tail, pattern=pattern)
    # without --follow, lines are gathered into large writes; while following, each is shown at once
    out = _Batched(TerminalOutput(merge_to_stderr=False), limit=0 if follow else 1 << 16)
    try:
        for event in events:
            if as_json:
                line = json.dumps(
                    {
                        "timestamp": event.timestamp.isoformat(),
                        "stream": event.stream,
                        "message": event.message,
                    }
                )
                out.write("stdout", (line + "\n").encode())
            else:
                stream = "stdout" if event.stream == "stdout" else "stderr"
                out.write(stream, format_event(event, timestamps=timestamps).encode("utf-8", "replace"))
        out.flush()
    except KeyboardInterrupt:
        out.flush()
        sys.exit(EXIT_INTERRUPTED)


class _Batched:
    """Consecutive writes to one stream, joined until ``limit`` bytes (0: every write goes out at once)."""

    def __init__(self, out: TerminalOutput, *, limit: int) -> None:
        self.out = out
        self.limit = limit
        self.stream: str | None = None
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, stream: str, data: bytes) -> None:
        if stream != self.stream:
            self.flush()
            self.stream = stream
        self.parts.append(data)
        self.size += len(data)
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self.parts and self.stream is not None:
            self.out.write(self.stream, b"".join(self.parts))
        self.parts, self.size = [], 0
