"""Start runs detached, follow one's logs until it ends, wait for another, and stop a third.

python examples/python/submit_and_wait.py [--provider aws]
"""

from __future__ import annotations

import argparse

from runvoy_core import Runvoy, Status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", default=None, help="provider to run on (default: the config's, else local)"
    )
    args = parser.parse_args(argv)

    with Runvoy(provider=args.provider) as rv:
        # submit() returns once the run is recorded and started; nothing has to watch it afterwards
        counting = rv.submit("for i in 1 2 3; do echo step $i; done", labels={"example": "submit-and-wait"})
        print(f"submitted {counting.id}: {counting.status}")

        # follow=True reads new lines until the run has ended
        for event in rv.logs(counting.id, follow=True):
            print(f"  {event.message}")
        done = rv.wait(counting.id, timeout=300)
        print(f"{done.id}: {done.status} (exit {done.exit_code})")

        # a run that would go on for five minutes, stopped on request once it has started (its first line is
        # the sign): SIGTERM, then SIGKILL after the grace period
        long = rv.submit("echo started; sleep 300", stop_grace="5s")
        first = next(iter(rv.logs(long.id, follow=True)))
        print(f"{long.id} printed {first.message!r}; stopping it")
        stopped = rv.kill(long.id, wait=120)
        print(f"{stopped.id}: {stopped.status} ({stopped.reason or 'no reason'})")

        ok = done.status is Status.SUCCEEDED and stopped.status is Status.CANCELLED
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
