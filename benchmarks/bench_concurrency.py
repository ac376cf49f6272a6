"""Many detached local runs started at once (issue 14 item 3: 200 in <= 10 s, each supervisor <= 20 MB RSS).

    .venv/bin/python benchmarks/bench_concurrency.py [--runs 200] [--runvoy PATH] [--command CMD] [--json]

Starts --runs `runvoy run --detach -p local "sleep 30"` processes at the same moment, against a fresh
RUNVOY_HOME (its databases created first, as on any machine that ran runvoy once), and measures:
- `all_running_s`: wall time until every run's command runs under its supervisor (what `runvoy status`
  reports as RUNNING: the supervisor has recorded the command's pid in state.db). Read from state.db over
  one read-only connection every 20 ms, so that watching costs the machine next to nothing; once all run,
  `runvoy list` must see them RUNNING too (`running_listed`, checked outside the timing);
- `cli_s`: wall time until every `runvoy run --detach` has exited (each printed its execution id);
- the resident set of every supervisor still running then (`VmRSS` of /proc/PID/status, and `VmHWM`, its
  peak since it started): max and median, in MB (10^6 bytes); the target is on the peak;
- CPU per run: `cli_cpu_mean_s` (the `runvoy run` processes, from rusage) and `supervisor_cpu_median_s`
  (from /proc/PID/stat, in clock ticks: 10 ms steps). A burst on a 2-core machine is CPU-bound, so the wall
  time is about (CLI + supervisor CPU) x runs / cores (decision 0212); with the warm process (decision
  1414, on unless the environment has RUNVOY_WARM=0) `cli_cpu_mean_s` is only the client's, and the forked
  child's CPU is not in it; `served_warm` counts the starts the warm process served (it is brought up
  before the burst, as it is for a user who ran any command in the last minutes);
then stops them all with `runvoy kill --no-wait` (a few CLIs at a time) and checks that no supervisor and
no command is left (`stop_all_s`).

`measure_concurrent_starts(runvoy, env, runs)` is the same measurement for other scripts (the combined
benchmark of issue 14); it uses `env` as given except RUNVOY_HOME and RUNVOY_CONFIG, which point into a
fresh temporary directory. It returns the numbers above as floats.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BIN = Path(sys.executable).parent
RUNVOY = str(BIN / "runvoy")
TARGET_SECONDS = 10.0
TARGET_RSS_MB = 20.0
POLL = 0.02
START_DEADLINE = 300.0
"""Give up waiting for the runs to start after this long (a broken install must not hang the benchmark)."""
STOP_DEADLINE = 120.0
COMMAND = "sleep 30"


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a live process, in MB; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
    except OSError:
        return None
    try:
        rss = int(fields["VmRSS"].split()[0]) * 1024 / 1e6
        hwm = int(fields["VmHWM"].split()[0]) * 1024 / 1e6
    except (KeyError, ValueError, IndexError):
        return None
    return rss, hwm


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _cpu_s(pid: int) -> float | None:
    """CPU time (user + system) a live process has used so far."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU time of the waited-for child processes (the `runvoy run` CLIs; not their supervisors)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tasks(state_db: Path) -> list[tuple[str, int | None, int | None, float | None]]:
    """(execution id, supervisor pid, command pid, finished_at) of every task; [] before the db exists."""
    if not state_db.exists():
        return []
    try:
        with _Reader(state_db) as reader:
            return reader.tasks()
    except sqlite3.Error:  # the schema is being created
        return []


class _Reader:
    """One read-only connection kept open while polling: opening one per poll would cost the machine
    more than the reads (in WAL mode each read transaction sees the latest commit)."""

    def __init__(self, state_db: Path) -> None:
        self.conn = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=5)

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def tasks(self) -> list[tuple[str, int | None, int | None, float | None]]:
        return list(self.conn.execute("SELECT execution_id, sup_pid, pid, finished_at FROM tasks"))

    def running(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM tasks WHERE pid IS NOT NULL").fetchone()[0])


def _runvoy_json(runvoy: str, args: list[str], env: dict[str, str]) -> object:
    out = subprocess.run([runvoy, *args, "--json"], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def measure_concurrent_starts(
    runvoy: str, env: dict[str, str], runs: int, *, command: str = COMMAND
) -> dict[str, float]:
    """Start ``runs`` detached local runs of ``command`` at once with the ``runvoy`` executable; every time
    in seconds, every size in MB. Raises RuntimeError when a run fails to start or something is left after
    the stop."""
    with tempfile.TemporaryDirectory(prefix="runvoy-bench-") as home:
        env = {**env, "RUNVOY_HOME": home, "RUNVOY_CONFIG": str(Path(home) / "none.toml")}
        state_db = Path(home) / "state.db"
        label = f"bench={uuid.uuid4().hex[:12]}"
        # the databases exist before the burst, as on any machine that ran runvoy once
        subprocess.run([runvoy, "setup", "-p", "local"], env=env, capture_output=True, check=True)
        trace = Path(home) / "warm-trace"
        warm = env.get("RUNVOY_WARM", "1").strip().lower() not in ("0", "false", "no", "off")
        if warm:  # as for a user who ran a command before: the warm process (decision 1414) is up
            env = {**env, "RUNVOY_WARM_TRACE": str(trace)}
            _until_served_warm(runvoy, env, trace)
        argv = [runvoy, "run", "--detach", "-p", "local", "-l", label, command]
        cpu_before = _children_cpu()
        started = time.perf_counter()
        procs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(runs)
        ]
        cli_done: float | None = None
        all_running: float | None = None
        with _Reader(state_db) as reader:
            while cli_done is None or all_running is None:
                now = time.perf_counter() - started
                if now > START_DEADLINE:
                    for proc in procs:
                        proc.kill()
                    raise RuntimeError(f"the runs did not all start within {START_DEADLINE:g}s")
                if cli_done is None and all(proc.poll() is not None for proc in procs):
                    cli_done = now
                if all_running is None and reader.running() >= runs:
                    all_running = now
                time.sleep(POLL)
        cli_cpu = _children_cpu() - cpu_before
        outputs = [proc.communicate() for proc in procs]
        failed = [err for proc, (_, err) in zip(procs, outputs, strict=True) if proc.returncode != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} of {runs} starts failed; first: {failed[0].decode()[-500:]}")
        ids = [out.decode().strip() for out, _ in outputs]
        tasks = _tasks(state_db)
        sizes = [s for _, sup, _, _ in tasks if sup is not None and (s := _rss_mb(sup)) is not None]
        if not sizes:  # a machine so loaded that every command ended before the last one started
            raise RuntimeError(f"no supervisor was still running once all {runs} runs had started")
        sup_cpu = [c for _, sup, _, _ in tasks if sup is not None and (c := _cpu_s(sup)) is not None]
        # records of detached runs say STARTING until someone reads them: `list` converges active ones
        listed = _runvoy_json(
            runvoy, ["list", "-p", "local", "-l", label, "--status", "active", "-n", str(runs + 10)], env
        )
        running_listed = sum(
            1 for r in (listed if isinstance(listed, list) else []) if r.get("status") == "RUNNING"
        )
        served_warm = sum(1 for line in _trace_lines(trace) if line.startswith("run --detach"))
        stopped_s = _stop_all(runvoy, env, ids, state_db)
        rss, hwm = [s[0] for s in sizes], [s[1] for s in sizes]
        return {
            "runs": float(runs),
            "supervisors_measured": float(len(sizes)),
            "cli_s": cli_done,
            "all_running_s": all_running,
            "running_listed": float(running_listed),
            "supervisor_rss_max_mb": max(rss),
            "supervisor_rss_median_mb": statistics.median(rss),
            "supervisor_hwm_max_mb": max(hwm),
            "stop_all_s": stopped_s,
            "cli_cpu_mean_s": cli_cpu / runs,
            "supervisor_cpu_median_s": statistics.median(sup_cpu) if sup_cpu else float("nan"),
            "served_warm": float(served_warm),
        }


def _trace_lines(trace: Path) -> list[str]:
    try:
        return trace.read_text().splitlines()
    except FileNotFoundError:
        return []


def _until_served_warm(runvoy: str, env: dict[str, str], trace: Path, timeout: float = 60.0) -> None:
    """Run `runvoy list` until the warm process serves it (the first one starts it in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = len(_trace_lines(trace))
        subprocess.run([runvoy, "list", "-p", "local", "-n", "1"], env=env, capture_output=True, check=True)
        if len(_trace_lines(trace)) > before:
            return
        time.sleep(0.1)  # benchmark set-up: the server imports runvoy before it listens
    raise RuntimeError("the warm process did not come up within 60 s")


def _stop_all(runvoy: str, env: dict[str, str], ids: list[str], state_db: Path) -> float:
    """`runvoy kill` every run (a few at a time: 200 CLIs at once would only queue for the cores), then
    wait until no supervisor and no command is left. Returns the wall time it took."""
    started = time.perf_counter()

    def kill(execution_id: str) -> int:
        argv = [runvoy, "kill", "-p", "local", "--no-wait", execution_id]
        return subprocess.run(argv, env=env, capture_output=True, check=False).returncode

    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        codes = list(pool.map(kill, ids))
    deadline = time.monotonic() + STOP_DEADLINE
    while True:
        tasks = _tasks(state_db)
        left = [(sup, pid) for _, sup, pid, _ in tasks if _alive(sup) or _alive(pid)]
        if not left and all(finished is not None for *_, finished in tasks):
            break
        if time.monotonic() > deadline:
            for sup, pid in left:  # never leave a benchmark's processes behind
                for p in (sup, pid):
                    if p and _alive(p):
                        os.kill(p, signal.SIGKILL)
            raise RuntimeError(f"{len(left)} runs were still running {STOP_DEADLINE:g}s after `runvoy kill`")
        time.sleep(0.1)
    if any(codes):
        raise RuntimeError(f"`runvoy kill` failed for {sum(1 for c in codes if c)} runs")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="detached runs started at once (default 200)")
    parser.add_argument("--runvoy", default=RUNVOY, help="the runvoy executable (default: next to python)")
    parser.add_argument(
        "--command",
        default=COMMAND,
        help=f"what each run runs (default {COMMAND!r}; it must outlast the burst)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    result = measure_concurrent_starts(args.runvoy, dict(os.environ), args.runs, command=args.command)
    met = {
        "start": result["all_running_s"] <= TARGET_SECONDS,
        "rss": result["supervisor_hwm_max_mb"] <= TARGET_RSS_MB,
    }
    if args.json:
        print(json.dumps({**result, "target_met": met, "cores": os.cpu_count()}, indent=2))
        return
    runs = int(result["runs"])
    print("| measurement | value | target | met |")
    print("|---|---|---|---|")
    print(
        f"| {runs} detached runs started at once: all RUNNING | {result['all_running_s']:.1f} s | "
        f"<= {TARGET_SECONDS:g} s | {'yes' if met['start'] else 'NO'} |"
    )
    print(f"| ... every `runvoy run --detach` returned | {result['cli_s']:.1f} s | | |")
    print(
        f"| supervisor RSS, max (median), of {int(result['supervisors_measured'])} | "
        f"{result['supervisor_rss_max_mb']:.1f} ({result['supervisor_rss_median_mb']:.1f}) MB | | |"
    )
    print(
        f"| supervisor peak RSS (VmHWM), max | {result['supervisor_hwm_max_mb']:.1f} MB | "
        f"<= {TARGET_RSS_MB:g} MB | {'yes' if met['rss'] else 'NO'} |"
    )
    print(
        f"\n`runvoy list` saw {int(result['running_listed'])} of {runs} RUNNING; "
        f"`runvoy kill` stopped all in {result['stop_all_s']:.1f} s, nothing left"
    )
    print(
        f"CPU per run: {result['cli_cpu_mean_s'] * 1000:.0f} ms in `runvoy run --detach`, "
        f"{result['supervisor_cpu_median_s'] * 1000:.0f} ms (median) in its supervisor"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
