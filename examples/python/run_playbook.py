"""Load a playbook (examples/playbooks/*.yml), show the script it becomes, and run it as one execution.

python examples/python/run_playbook.py examples/playbooks/hello.yml [--provider aws] [--env NAME=VALUE]
"""

from __future__ import annotations

import argparse
import sys

from runvoy_core import LogEvent, Runvoy
from runvoy_core.errors import RunvoyError
from runvoy_core.playbook import load_playbook


class PrintLines:
    """A log sink: receives the run's lines as they arrive."""

    def write_events(self, events: list[LogEvent]) -> None:
        for event in events:
            stream = sys.stderr if event.stream == "stderr" else sys.stdout
            print(event.message, file=stream, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("playbook", help="a playbook file")
    parser.add_argument(
        "--provider", default=None, help="provider to run on (default: the config's, else local)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="added to the playbook's env"
    )
    parser.add_argument("--show-script", action="store_true", help="print the generated script and exit")
    args = parser.parse_args(argv)

    try:
        book = load_playbook(args.playbook)  # an unknown key or a bad value is an error naming it
        if args.show_script:
            print(book.script())
            return 0
        env = dict(item.split("=", 1) for item in args.env)
        with Runvoy(provider=args.provider) as rv:
            ex = rv.run(book.to_request(env=env), log_sink=PrintLines())
    except RunvoyError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    print(f"{ex.id}: {ex.status} (exit {ex.exit_code})", file=sys.stderr)
    return ex.exit_code if ex.exit_code is not None else 125


if __name__ == "__main__":
    raise SystemExit(main())
