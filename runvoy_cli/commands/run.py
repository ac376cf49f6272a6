"""``runvoy run``: run a command (or a playbook) and stream its logs; exit with its exit code.

Only click is imported at module level: the API, pydantic and the provider load when the command runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import parse_pairs
from runvoy_cli.output import message, print_json, warn

if TYPE_CHECKING:
    from collections.abc import Callable

    from runvoy_core.models import Execution
    from runvoy_core.runner import RunHandle

    Starter = Callable[..., Execution]
    """``Runvoy.run``/``submit`` (or their playbook forms) with the command or playbook already given."""

EXIT_INTERRUPTED = 130
LOCK_WAIT_EVERY = 10.0  # seconds between two "still waiting for the lock" lines


@click.command("run")
@click.argument("command", nargs=-1, metavar="COMMAND...", type=forms.COMMAND_WORD)
@click.option(
    "--provider",
    "-p",
    metavar="NAME",
    type=forms.PROVIDER,
    help="Provider to run on (default: the config's, else local).",
)
@click.option(
    "--image",
    metavar="IMAGE",
    type=forms.IMAGE,
    help="Container image (cloud providers; local needs a runtime).",
)
@click.option(
    "--no-image-check",
    is_flag=True,
    default=None,
    help="Do not ask the image's registry before starting (the [images] policy still applies).",
)
@click.option("--cpu", metavar="VCPU", type=forms.CPU, help="vCPU, e.g. 0.25, 1, 2 or 500m (at most 16).")
@click.option(
    "--memory", metavar="SIZE", type=forms.MEMORY, help="Memory, e.g. 512MiB, 2GiB (at most 120GiB)."
)
@click.option(
    "--env",
    "-e",
    "env",
    multiple=True,
    metavar="NAME=VALUE",
    type=forms.ENV_PAIR,
    help="Environment variable (repeatable).",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="NAME",
    type=forms.SECRET_NAME,
    help="Secret to expose, by name (repeatable).",
)
@click.option(
    "--timeout",
    metavar="DURATION",
    type=forms.DURATION_TIMEOUT,
    help="Stop the run after this long, e.g. 90s, 10m, 2h (0.1s to 30d; exit 124).",
)
@click.option(
    "--stop-grace",
    metavar="DURATION",
    type=forms.STOP_GRACE,
    help="Between the graceful stop and the kill (default 10s; 0.1s to 1h).",
)
@click.option("--detach", "-d", is_flag=True, help="Start and print the execution id; do not wait.")
@click.option(
    "--label",
    "-l",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    type=forms.LABEL_PAIR,
    help="Label (repeatable).",
)
@click.option("--lock", metavar="NAME", type=forms.LOCK_NAME, help="Hold this named lock for the whole run.")
@click.option(
    "--on-conflict",
    type=click.Choice(["fail", "wait", "cancel", "queue"]),
    default=None,
    help="When the lock is held: fail at once (exit 75, the default), wait, queue (wait in line: first "
    "come, first served), or cancel the run holding it and then wait for it to end.",
)
@click.option(
    "--lock-timeout",
    metavar="DURATION",
    type=forms.LOCK_TIMEOUT,
    help="How long --on-conflict wait, queue or cancel waits (default 10m; 0.1s to 7d).",
)
@click.option(
    "--lock-slots",
    type=forms.IntRange(1, 100),
    default=None,
    metavar="N",
    help="Let up to N runs hold the lock at once (each holds one slot, NAME#1..NAME#N).",
)
@click.option("--region", metavar="REGION", type=forms.REGION, help="Cloud region (default: the provider's).")
@click.option(
    "--arch",
    type=click.Choice(["x86_64", "arm64", "amd64", "aarch64"]),
    default=None,
    help="CPU architecture.",
)
@click.option("--spot", is_flag=True, default=None, help="Use spot/preemptible capacity where supported.")
@click.option("--workdir", metavar="DIR", type=forms.PATH, help="Working directory of the command.")
@click.option(
    "--file",
    "-f",
    "playbook",
    metavar="PLAYBOOK",
    type=forms.PLAYBOOK,
    help="Run a YAML playbook (its steps as one execution; see docs/playbooks.md).",
)
@click.option("--quiet", "-q", is_flag=True, help="No summary line at the end.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the final execution as JSON on stdout (the command's output goes to stderr).",
)
@handle_errors
def cli(
    command: tuple[str, ...],
    provider: str | None,
    image: str | None,
    no_image_check: bool | None,
    cpu: str | None,
    memory: str | None,
    env: tuple[str, ...],
    secrets: tuple[str, ...],
    timeout: str | None,
    stop_grace: str | None,
    detach: bool,
    labels: tuple[str, ...],
    lock: str | None,
    on_conflict: str | None,
    lock_timeout: str | None,
    lock_slots: int | None,
    region: str | None,
    arch: str | None,
    spot: bool | None,
    workdir: str | None,
    playbook: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Run COMMAND and stream its output; exit with its exit code.

    One argument is a shell string; several arguments (after --) are the argv to run, without a shell.

    \b
      runvoy run "echo hello"
      runvoy run --cpu 1 --memory 2GiB --timeout 30m "pytest -x"
      runvoy run -- python -c 'print(42)'
      runvoy run --lock deploy --on-conflict wait "./deploy.sh"
      runvoy run -f nightly.yaml

    Exit codes: the command's own; 124 after --timeout; 75 when the lock is held; 125 when runvoy fails;
    2 for bad usage.
    Ctrl-C once stops the run gracefully, twice kills it.
    """
    if playbook and command:
        raise click.UsageError("give a COMMAND or -f PLAYBOOK, not both")
    if not playbook and not command:
        raise click.UsageError('missing COMMAND (for example: runvoy run "echo hello")')
    options: dict[str, Any] = {
        "image": image,
        "image_check": False if no_image_check else None,
        "cpu": cpu,
        "memory": memory,
        "env": parse_pairs("--env", env, "STAGE=prod") or None,
        "secrets": list(secrets) or None,
        "timeout": timeout,
        "stop_grace": stop_grace,
        "labels": parse_pairs("--label", labels, "team=data") or None,
        "lock": lock,
        "on_conflict": on_conflict,
        "lock_timeout": lock_timeout,
        "lock_slots": lock_slots,
        "region": region,
        "arch": arch,
        "spot": spot,
        "workdir": workdir,
    }
    run: Starter
    if playbook:
        from pathlib import Path

        from runvoy_core.playbook import read_playbook_file

        # the playbook travels as its text, so a server sees it too; one without a name: its file's
        text = read_playbook_file(playbook)
        name, source = Path(playbook).expanduser().stem, str(playbook)
        options = {k: v for k, v in options.items() if v is not None}
        rv = state().runvoy(provider)
        if detach:
            run = functools.partial(rv.submit_playbook, text, name=name, source=source)
        else:
            run = functools.partial(rv.run_playbook, text, name=name, source=source)
    else:
        target = command[0] if len(command) == 1 else list(command)
        _check_lock_options(options)
        options = {k: v for k, v in options.items() if v is not None}
        rv = state().runvoy(provider)
        run = functools.partial(rv.submit if detach else rv.run, target)
    if detach:
        _detached(run, options, as_json=as_json)
        return
    code = _attached(run, options, as_json=as_json, quiet=quiet)
    sys.exit(code)


def _check_lock_options(options: dict[str, Any]) -> None:
    """--on-conflict, --lock-timeout and --lock-slots mean nothing without a lock: refuse rather than ignore."""
    from runvoy_core.engine import check_lock_options

    check_lock_options(options)


def _detached(submit: Starter, options: dict[str, Any], *, as_json: bool) -> None:
    execution = submit(on_message=_budget_message, on_lock_wait=_LockWaitPrinter(), **options)
    if as_json:
        from runvoy_cli.views import execution_json

        print_json(execution_json(execution))
    else:
        click.echo(execution.id)


def _attached(run: Starter, options: dict[str, Any], *, as_json: bool, quiet: bool) -> int:
    from runvoy_cli.streams import RunSink
    from runvoy_core.lifecycle import cli_exit_code
    from runvoy_core.models import StopReason

    watched: dict[str, RunHandle] = {}

    def pipe_closed(stream: str) -> None:
        # like a shell pipeline (`yes | head`): the reader is gone, so the writer stops
        handle = watched.get("handle")
        if handle is not None and handle.cancel is None:
            handle.cancel = StopReason.CANCEL
            _say(f"runvoy: {stream} was closed; stopping {handle.execution.id}")

    sink = RunSink(merge_to_stderr=as_json, on_broken_pipe=pipe_closed)
    with _interrupts(watched):
        try:
            execution = run(
                log_sink=sink,
                on_message=_budget_message,
                on_lock_wait=_LockWaitPrinter(),
                on_start=lambda handle: watched.__setitem__("handle", handle),
                **options,
            )
        except KeyboardInterrupt:
            handle = watched.get("handle")
            if handle is not None:
                message(
                    f"runvoy: stopped watching {handle.execution.id}; it may still be stopping "
                    f"(see: runvoy status {handle.execution.id})"
                )
            else:
                message("runvoy: interrupted")
            return EXIT_INTERRUPTED
        finally:
            sink.close()
    if as_json:
        from runvoy_cli.views import execution_json

        print_json(execution_json(execution))
    elif not quiet:
        from runvoy_cli.views import summary_line

        message(summary_line(execution))
    return cli_exit_code(execution)


def _budget_message(text: str) -> None:
    warn(text)


class _LockWaitPrinter:
    """Prints the first "waiting for lock" line at once, then one every LOCK_WAIT_EVERY seconds."""

    def __init__(self) -> None:
        self._last: float | None = None

    def __call__(self, record: Any, waited: float) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < LOCK_WAIT_EVERY:
            return
        self._last = now
        holder = getattr(record, "holder", None)
        who = ""
        if holder is not None:
            parts = [
                f"execution {holder.execution_id}" if holder.execution_id else None,
                f"by {holder.user}@{holder.host}" if holder.user else None,
            ]
            who = " held by " + " ".join(p for p in parts if p)
        message(f"runvoy: waiting for lock {record.name!r}{who} ({waited:.0f}s so far)")


def _say(text: str) -> None:
    """Write from a signal handler: one unbuffered syscall, no re-entry into a buffered stream."""
    with contextlib.suppress(OSError):
        os.write(2, (text + "\n").encode())


@contextlib.contextmanager
def _interrupts(watched: dict[str, RunHandle]) -> Iterator[None]:
    """Ctrl-C once: graceful stop; twice: kill; three times: stop watching. The runner's watch loop acts on
    ``handle.cancel``, so the stop is recorded as CANCELLED like a `runvoy kill`."""
    from runvoy_core.models import StopReason

    presses = 0

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal presses
        handle = watched.get("handle")
        if handle is None:
            raise KeyboardInterrupt
        presses += 1
        if presses == 1:
            handle.cancel = StopReason.CANCEL
            _say(f"runvoy: stopping {handle.execution.id} (Ctrl-C again to kill it)")
        elif presses == 2:
            handle.cancel = StopReason.KILL
            _say(f"runvoy: killing {handle.execution.id} (Ctrl-C again to stop watching)")
        else:
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread (embedded use): leave signals alone
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
