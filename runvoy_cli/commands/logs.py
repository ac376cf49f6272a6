"""``runvoy logs ID``: the command's output, stdout lines on stdout and stderr lines on stderr."""

from __future__ import annotations

import json
import sys

import click

from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option

EXIT_INTERRUPTED = 130


@click.command("logs")
@click.argument("execution_id", metavar="ID")
@provider_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option(
    "--tail", "-n", type=click.IntRange(min=0), default=None, metavar="N", help="Only the last N lines."
)
@click.option("--grep", "pattern", metavar="TEXT", help="Only lines containing TEXT.")
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
    from runvoy_cli.streams import TerminalOutput, format_event

    rv = state().runvoy(provider)
    events = rv.logs(execution_id, follow=follow, tail=tail, pattern=pattern)
    out = TerminalOutput(merge_to_stderr=False)
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
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
