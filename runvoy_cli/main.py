"""The ``runvoy`` entry point. Subcommands are imported only when invoked, so ``runvoy --help`` loads click
and nothing else (no pydantic, no cloud SDK)."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from runvoy_cli import forms
from runvoy_cli.context import CliState

# name -> (module, one-line help). The help text lives here so that listing commands imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("runvoy_cli.commands.init", "Set runvoy up: provider, credentials, region, sizes, a first run."),
    "run": ("runvoy_cli.commands.run", "Run a command (or a playbook) and stream its logs."),
    "status": ("runvoy_cli.commands.status", "Show an execution's status, exit code, cost and history."),
    "logs": ("runvoy_cli.commands.logs", "Print an execution's logs (-f to follow)."),
    "list": ("runvoy_cli.commands.listing", "List executions, newest first."),
    "kill": ("runvoy_cli.commands.kill", "Stop an execution (graceful, then kill)."),
    "wait": ("runvoy_cli.commands.wait", "Wait for an execution to end; exit with its exit code."),
    "reconcile": ("runvoy_cli.commands.reconcile", "Repair records and tasks that disagree."),
    "locks": ("runvoy_cli.commands.locks", "Inspect and release named locks."),
    "cost": ("runvoy_cli.commands.cost", "Estimate, report and refresh run costs."),
    "budget": ("runvoy_cli.commands.budget", "Set and inspect spending budgets."),
    "providers": ("runvoy_cli.commands.providers", "List installed providers and plugin errors."),
    "setup": ("runvoy_cli.commands.setup", "Create or check what a provider needs."),
    "config": ("runvoy_cli.commands.config", "Show or validate the configuration."),
    "completion": ("runvoy_cli.commands.completion", "Print the shell completion script (bash, zsh, fish)."),
    "audit": ("runvoy_cli.commands.audit", "Verify and export the server's audit log."),
    "totp": ("runvoy_cli.commands.totp", "Set up the second factor (TOTP) of a server's admins."),
    "users": ("runvoy_cli.commands.users", "Manage a runvoy server's users and service accounts."),
    "keys": ("runvoy_cli.commands.keys", "Create, list, revoke and rotate API keys."),
    "policies": ("runvoy_cli.commands.policies", "Set what a team's operators may run."),
    "server": ("runvoy_cli.commands.server", "Serve the HTTP API for a team (extra runvoy[server])."),
    "health": (
        "runvoy_cli.commands.health",
        "Show whether a runvoy server is ready (store, provider, locks).",
    ),
    "login": ("runvoy_cli.commands.login", "Sign in to a runvoy server with an API key (kept 0600)."),
    "logout": ("runvoy_cli.commands.logout", "Forget the API key kept for a runvoy server."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = module.cli
        return command

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """The command names with their help line from the table, not from each command: completing
        `runvoy <TAB>` must not import every command module."""
        from click.shell_completion import CompletionItem

        results: list[Any] = [
            CompletionItem(name, help=help_text)
            for name, (_, help_text) in COMMANDS.items()
            if name.startswith(incomplete)
        ]
        results.extend(click.Command.shell_complete(self, ctx, incomplete))  # the group's own options
        return results

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _version() -> str:
    from runvoy_core import __version__

    return __version__


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option(
    "--provider",
    "-p",
    envvar="RUNVOY_PROVIDER",
    type=forms.PROVIDER,
    metavar="NAME",
    help="Provider to use (default: local).",
)
@click.option(
    "--profile", envvar="RUNVOY_PROFILE", type=forms.PROFILE, metavar="NAME", help="Config profile to use."
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default=None,
    help="How runvoy's own log lines look (on stderr).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="runvoy's verbosity.",
)
@click.version_option(version=None, package_name=None, message="runvoy %(version)s", prog_name="runvoy")
@click.pass_context
def cli(
    ctx: click.Context,
    provider: str | None,
    profile: str | None,
    log_format: str | None,
    log_level: str | None,
) -> None:
    """runvoy runs a command in an ephemeral cloud container (or on this machine) and gives back live and
    stored logs, the exit code, a status history, named locks and the cost of every run.

    \b
    Examples:
      runvoy run "echo hello"
      runvoy run --provider aws --cpu 1 --memory 2GiB --lock nightly-etl "python etl.py"
      runvoy run --detach "sleep 30" && runvoy list
    """
    ctx.obj = CliState(provider=provider, profile=profile, log_format=log_format, log_level=log_level)


def _patch_version() -> None:
    # click's version_option needs a version string; computing it lazily keeps --help import-free
    for param in cli.params:
        if isinstance(param, click.Option) and param.is_flag and "--version" in param.opts:
            param.callback = _print_version


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"runvoy {_version()}")
    ctx.exit()


_patch_version()


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; RunvoyError becomes a one-line message with a hint and its exit code (never a traceback)."""
    try:
        forms.check_argv(sys.argv[1:] if argv is None else argv)
        result = cli.main(args=argv, prog_name="runvoy", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # the reader went away (`runvoy list | head`): stop quietly, as cat and grep do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)
    sys.exit(result if isinstance(result, int) else 0)


def console_main() -> None:
    """The `runvoy` console script: ``main``, then a fast exit.

    Once the command is done, the interpreter's own shutdown (tearing down every module, a last full
    garbage collection over pydantic's schemas, closing SQLite connections with a checkpoint) takes 30-40 ms
    of a 200 ms `runvoy run "true"`, and nothing in it is needed: our writes are committed, and WAL files
    are recovered by the next process that opens the database. So after flushing stdout and stderr and
    running the atexit handlers (a plugin's or an SDK's may have work to do), the process exits at once.
    Where another non-daemon thread is still running, the normal shutdown (which waits for it) is kept.
    """
    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    import atexit

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, exit status 1, as the interpreter does
        print(code, file=sys.stderr)
        status = 1
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        threading.Thread(target=_report_when_threads_end, args=(status,), daemon=False).start()
        sys.exit(code)
    atexit._run_exitfuncs()
    if before_exit is not None:
        before_exit(status)
    os._exit(status)


before_exit: Callable[[int], None] | None = None
"""Called with the exit status just before the process exits (a warm child reports it to its caller)."""


def _report_when_threads_end(status: int) -> None:
    # the normal shutdown waits for the other threads: report once they are done, as the caller's wait ends
    for thread in threading.enumerate():
        if (
            thread is not threading.main_thread()
            and thread is not threading.current_thread()
            and not thread.daemon
        ):
            thread.join()
    if before_exit is not None:
        before_exit(status)


if __name__ == "__main__":
    main()
