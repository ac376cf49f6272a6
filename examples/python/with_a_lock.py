"""Named locks from Python: a run refused while another holds the lock, then runs queued one after another.

Each run holding a lock gets a fencing token, `$RUNVOY_FENCE`, that grows with every new holder: a command can
hand it to what it writes so that a stale holder's writes are refused (docs/locks.md, "Fencing").

    python examples/python/with_a_lock.py [--provider aws]
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runvoy_core import Runvoy
from runvoy_core.errors import LockHeld

LOCK = "example-deploy"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", default=None, help="provider to run on (default: the config's, else local)"
    )
    args = parser.parse_args(argv)

    with Runvoy(provider=args.provider) as rv, tempfile.TemporaryDirectory() as tmp:
        # the first run holds the lock until this script creates the gate file (a file on this machine: on a
        # cloud, use a command that ends by itself instead, such as `sleep 20`)
        gate = Path(tmp) / "gate"
        holder = rv.submit(
            f"while [ ! -e {shlex.quote(str(gate))} ]; do sleep 0.1; done; echo released",
            lock=LOCK,
            timeout="10m",
        )
        print(f"{holder.id} holds {LOCK} with fence {holder.fence}")

        # the default conflict mode is fail: the second run is refused at once (the CLI exits 75)
        try:
            rv.run("echo never runs", lock=LOCK)
        except LockHeld as exc:
            print(f"refused: {exc.message}")

        gate.touch()
        rv.wait(holder.id, timeout=300)

        # queue: first come, first served; each run starts when the one before it has ended
        def deploy(n: int) -> tuple[int, int | None, str]:
            ex = rv.run(f"echo deploy {n} with fence $RUNVOY_FENCE", lock=LOCK, on_conflict="queue")
            return n, ex.fence, str(ex.status)

        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(deploy, range(1, 4)))
        # the threads queued in whatever order they reached the lock; each new holder has a larger fence
        for n, fence, status in sorted(results, key=lambda r: r[1] or 0):
            print(f"deploy {n}: {status}, fence {fence}")

        fences = [fence for _, fence, _ in results]
        # every holder got its own, larger fence than the first holder's
        ok = len(set(fences)) == len(fences) and all(
            f is not None and f > (holder.fence or 0) for f in fences
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
