"""Run a command, then read what runvoy kept of it: status, exit code, logs, history and cost.

    python examples/python/run_and_read.py                    # on this machine
    python examples/python/run_and_read.py --provider aws     # on ECS Fargate (after `runvoy setup`)

The command fails on purpose (exit 3), and so does the script, with the command's exit code.
"""

from __future__ import annotations

import argparse

from runvoy_core import Runvoy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", default=None, help="provider to run on (default: the config's, else local)"
    )
    args = parser.parse_args(argv)

    with Runvoy(provider=args.provider) as rv:
        # run() waits for the end; without a log_sink the output is only stored, and read below
        ex = rv.run(
            "echo hello from $RUNVOY_EXECUTION_ID; echo 'a warning' >&2; exit 3",
            timeout="5m",
            labels={"example": "run-and-read"},
        )
        print(f"execution {ex.id}: {ex.status} (exit {ex.exit_code}) on {ex.provider}")

        for event in rv.logs(ex.id):
            print(f"  [{event.stream}] {event.message}")

        for change in rv.events(ex.id):
            print(f"  {change.at:%H:%M:%S} {change.event} {change.status or ''}".rstrip())

        if ex.cost is not None:
            print(f"cost: {ex.cost.total} {ex.cost.currency} for {ex.cost.billed_seconds} s billed")
            for provider, amount in sorted(ex.cost.equivalents.items()):
                print(f"  the same run on {provider}: {amount} {ex.cost.currency}")
    # the command's own exit code, as `runvoy run` would exit
    return ex.exit_code if ex.exit_code is not None else 125


if __name__ == "__main__":
    raise SystemExit(main())
