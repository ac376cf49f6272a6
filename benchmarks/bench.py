"""Issue 14's targets, measured the way a user gets runvoy: one script, floors and a peer side by side.

    python3 benchmarks/bench.py [--runs 15] [--quick] [--json] [--source PATH] [--skip-install PATH]
                                [--no-peer] [--no-sizes] [--no-concurrency] [--no-followers]

What it does (docs/performance.md explains how to read the result):
1. Installs runvoy the README's way, once per install mode: a `git clone` of --source (default: this
   repository, i.e. its HEAD; uncommitted changes are not in a clone) into a temporary directory, then the
   set-up command read from that clone's README.md (`python3 scripts/bootstrap.py run ...`).
   The two modes are PYTHONDONTWRITEBYTECODE=1 and PYTHONDONTWRITEBYTECODE unset; each has its own clone
   and install, and every later command of that mode runs with the same setting, so `.pyc` files written by
   the unset mode never help the other one. Nothing here compiles bytecode: what is there is what the
   install left (and, in the unset mode, what the first commands wrote). --skip-install PATH measures an
   existing virtual environment (PATH/bin/runvoy, or PATH/.venv/bin/runvoy) in both modes instead.
2. Times, as the median of --runs subprocess runs, each with a fresh RUNVOY_HOME (a copy of a home holding
   one ended run, so that `status ID` and `logs ID` have something to show), every local-state command of
   issue 14 item 1, the floors `python -c pass` (the install's python) and `sh -c true`, and a peer,
   `aws --version` from `pip install awscli` in a scratch virtual environment. In every round each command
   runs once in each mode, one after the other (the mode that goes first alternates), so a machine that
   slows down for a while slows every row alike. Each number is also shown as a ratio to the
   `python -c pass` floor of the same mode.
3. Size rows (benchmarks/seed.py `seed_local`): `status`, `list`, `locks list`, `cost report --since 30d`
   with 100, 10,000 and 100,000 stored runs, as a ratio to the 100-run time (target <= 1.5x).
4. Concurrency rows: benchmarks/bench_concurrency.py `measure_concurrent_starts` (200 detached runs started
   at once, in each mode's install) and benchmarks/bench_followers.py `measure_followers` (one follower of
   20 attached runs per cloud provider, against the in-repo fakes; it runs in this script's own Python).
Rows whose helper is missing or fails are printed as "not measured" with the reason.
Output: a markdown table (stdout), or the same data as JSON with --json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import importlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent

INSTALL_MODES = ("dont_write_bytecode", "write_bytecode")
# each install is measured twice: served by the warm process (the default, decision 1414), and cold
# (RUNVOY_WARM=0: the first command after an idle spell, or where the warm process is turned off)
MODES = (*INSTALL_MODES, *(f"{m}_cold" for m in INSTALL_MODES))
MODE_LABELS = {
    "dont_write_bytecode": "PYTHONDONTWRITEBYTECODE=1, warm",
    "write_bytecode": "PYTHONDONTWRITEBYTECODE unset, warm",
    "dont_write_bytecode_cold": "PYTHONDONTWRITEBYTECODE=1, cold",
    "write_bytecode_cold": "PYTHONDONTWRITEBYTECODE unset, cold",
}
INSTALL_LABELS = {
    "dont_write_bytecode": "PYTHONDONTWRITEBYTECODE=1",
    "write_bytecode": "PYTHONDONTWRITEBYTECODE unset",
}
WARM_RUNTIME = Path(tempfile.mkdtemp(prefix="rvb"))
"""The bench's own XDG_RUNTIME_DIR: its warm processes are its own, and stopped at the end."""
COMMAND_TARGET_MS = 100.0
HELP_TARGET_MS = 50.0
SIZE_TARGET_RATIO = 1.5
CONCURRENT_TARGET_S = 10.0
SUPERVISOR_TARGET_MB = 20.0
FOLLOWER_PROVIDERS = ("aws", "gcp", "azure")
SAMPLE_TIMEOUT_S = 120.0
# the README's first command; older commits (before decision 2101) installed uv with pip
README_COMMAND = re.compile(
    r"^python3 (?:scripts/bootstrap\.py|-m pip install uv && python3 -m uv run) .*$", re.MULTILINE
)
ESTIMATE = ["cost", "estimate", "--cpu", "1", "--memory", "2GiB", "--duration", "10m"]


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    argv: Callable[[Install, str], list[str]]  # (install, run id) -> argv
    target_ms: float | None
    kind: str = "command"  # command | floor | peer


def _runvoy(*args: str) -> Callable[[Install, str], list[str]]:
    return lambda inst, run_id: [inst.runvoy, *(run_id if a == "{id}" else a for a in args)]


ROWS: list[Row] = [
    Row("help", "`runvoy --help`", _runvoy("--help"), HELP_TARGET_MS),
    Row("run_true", '`runvoy run "true"`', _runvoy("run", "true"), COMMAND_TARGET_MS),
    Row("status", "`runvoy status ID`", _runvoy("status", "{id}"), COMMAND_TARGET_MS),
    Row("list", "`runvoy list`", _runvoy("list"), COMMAND_TARGET_MS),
    Row("logs", "`runvoy logs ID`", _runvoy("logs", "{id}"), COMMAND_TARGET_MS),
    Row("locks_list", "`runvoy locks list`", _runvoy("locks", "list"), COMMAND_TARGET_MS),
    Row(
        "cost_estimate",
        "`runvoy cost estimate --cpu 1 --memory 2GiB --duration 10m`",
        _runvoy(*ESTIMATE),
        COMMAND_TARGET_MS,
    ),
    Row("config_show", "`runvoy config show`", _runvoy("config", "show"), COMMAND_TARGET_MS),
    Row("providers", "`runvoy providers`", _runvoy("providers"), COMMAND_TARGET_MS),
    Row(
        "floor_python",
        "floor: `python -c pass` (the install's python)",
        lambda i, _: [i.python, "-c", "pass"],
        None,
        "floor",
    ),
    Row("floor_sh", "floor: `sh -c true`", lambda i, _: ["sh", "-c", "true"], None, "floor"),
    Row(
        "peer_aws",
        "peer: `aws --version` (awscli, pip-installed in a scratch venv)",
        lambda i, _: [i.aws or "aws", "--version"],
        None,
        "peer",
    ),
]

SIZE_ROWS: list[tuple[str, str, list[str]]] = [
    ("size_status", "`runvoy status ID`", ["status", "{id}"]),
    ("size_list", "`runvoy list` (first page)", ["list"]),
    ("size_locks_list", "`runvoy locks list`", ["locks", "list"]),
    ("size_cost_report", "`runvoy cost report --since 30d`", ["cost", "report", "--since", "30d"]),
]


@dataclass
class Install:
    mode: str
    venv: Path
    checkout: Path | None
    seconds: float | None
    commit: str | None
    aws: str | None = None
    pyc: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def runvoy(self) -> str:
        return str(self.venv / "bin" / "runvoy")

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def mode_env(mode: str, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    # a caller's virtual environment must not leak into the install or the commands
    for name in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "RUNVOY_PROVIDER", "RUNVOY_PROFILE"):
        env.pop(name, None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and not (Path(p).parent / "pyvenv.cfg").exists()
    )
    if mode.startswith("dont_write_bytecode"):
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["RUNVOY_WARM"] = "0" if mode.endswith("_cold") else "1"
    env["XDG_RUNTIME_DIR"] = str(WARM_RUNTIME)
    return env


def stop_warm_processes() -> None:
    for lock in (WARM_RUNTIME / "runvoy").glob("*.lock"):
        text = lock.read_text().strip()
        if text.isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(text), 9)
    shutil.rmtree(WARM_RUNTIME, ignore_errors=True)


def home_env(env: dict[str, str], home: Path) -> dict[str, str]:
    return {**env, "RUNVOY_HOME": str(home), "RUNVOY_CONFIG": str(home / "none.toml")}


def count_pyc(root: Path, under: list[Path]) -> dict[str, dict[str, int]]:
    """How many `.py` files under each path have a `.pyc` of this Python version next to them."""
    tag = sys.implementation.cache_tag
    counts: dict[str, dict[str, int]] = {}
    for path in under:
        if path.is_dir():
            sources = list(path.rglob("*.py"))
            compiled = sum(
                1 for py in sources if (py.parent / "__pycache__" / f"{py.stem}.{tag}.pyc").exists()
            )
            counts[str(path.relative_to(root))] = {"py": len(sources), "compiled": compiled}
    return counts


def readme_command(checkout: Path) -> str:
    match = README_COMMAND.search((checkout / "README.md").read_text())
    if match is None:
        raise SystemExit(f"no `python3 scripts/bootstrap.py ...` line in {checkout}/README.md")
    return match.group(0)


def install(source: Path, mode: str, workdir: Path) -> Install:
    checkout = workdir / f"clone-{mode}"
    env = mode_env(mode)
    subprocess.run(["git", "clone", "-q", str(source), str(checkout)], env=env, check=True)
    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    command = readme_command(checkout)
    started = time.perf_counter()
    done = subprocess.run(
        ["sh", "-c", command],
        cwd=checkout,
        env=home_env(env, workdir / f"install-home-{mode}"),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"the README's command failed ({mode}): {command}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    inst = Install(mode, checkout / ".venv", checkout, seconds, commit)
    inst.pyc = count_pyc(checkout, [checkout / "runvoy_core", checkout / "runvoy_cli", checkout / ".venv"])
    return inst


def existing(path: Path, mode: str) -> Install:
    path = path.resolve()
    venv = path if (path / "bin" / "runvoy").exists() else path / ".venv"
    if not (venv / "bin" / "runvoy").exists():
        raise SystemExit(f"--skip-install {path}: no bin/runvoy nor .venv/bin/runvoy there")
    return Install(mode, venv, None, None, None)


def install_peer(workdir: Path) -> tuple[str | None, str]:
    """`aws --version` from awscli in a scratch venv; (path, note). pip compiles the wheels' bytecode."""
    venv = workdir / "peer-venv"
    env = mode_env("write_bytecode")
    python = shutil.which("python3", path=env["PATH"]) or sys.executable
    try:
        subprocess.run([python, "-m", "venv", str(venv)], env=env, check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "awscli"],
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = (getattr(exc, "stderr", b"") or b"")[-300:]
        return None, f"awscli not installable here: {tail.decode(errors='replace').strip() or exc}"
    version = subprocess.run(
        [str(venv / "bin" / "aws"), "--version"], capture_output=True, text=True, check=False
    )
    return str(venv / "bin" / "aws"), (version.stdout or version.stderr).strip()


def once(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=SAMPLE_TIMEOUT_S,
        check=False,
    )
    return time.perf_counter() - started, done.returncode, done.stderr.decode(errors="replace")[-500:]


@contextlib.contextmanager
def fresh_home(template: Path, scratch: Path) -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=scratch))
    shutil.copytree(template, home, dirs_exist_ok=True)
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def prepare_template(inst: Install, env: dict[str, str], scratch: Path) -> tuple[Path, str]:
    """A RUNVOY_HOME as a user's is after a first use: one ended `true` run, and what runvoy remembers between
    commands (the plugins it found, the help text: decisions 1411, 1412); the run's id."""
    home = scratch / f"template-{inst.mode}"
    home.mkdir()
    henv = home_env(env, home)
    subprocess.run([inst.runvoy, "run", "true"], env=henv, check=True, capture_output=True)
    subprocess.run([inst.runvoy, "--help"], env=henv, check=True, capture_output=True)
    if not inst.mode.endswith("_cold"):
        before = set((WARM_RUNTIME / "runvoy").glob("*.sock"))
        subprocess.run([inst.runvoy, "list"], env=henv, check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while set((WARM_RUNTIME / "runvoy").glob("*.sock")) == before and time.monotonic() < deadline:
            time.sleep(0.05)  # set-up of a benchmark: waiting for this mode's warm process to listen
    return home, first_run_id(inst, henv)


def first_run_id(inst: Install, env: dict[str, str]) -> str:
    out = subprocess.run(
        [inst.runvoy, "list", "-n", "1", "--json"], env=env, capture_output=True, text=True, check=True
    )
    runs = json.loads(out.stdout)
    if not runs:
        raise RuntimeError("no run recorded")
    return str(runs[0]["id"])


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def measure_commands(
    installs: dict[str, Install], runs: int, scratch: Path, peer_note: str
) -> list[dict[str, Any]]:
    envs = {m: mode_env(m) for m in installs}
    templates = {m: prepare_template(inst, envs[m], scratch) for m, inst in installs.items()}
    samples: dict[tuple[str, str], list[float]] = {}
    errors: dict[tuple[str, str], str] = {}
    for round_no in range(runs):
        order = list(installs) if round_no % 2 == 0 else list(reversed(installs))
        for row in ROWS:
            for mode in order:
                inst = installs[mode]
                if row.kind == "peer" and inst.aws is None:
                    continue
                key = (row.key, mode)
                if key in errors:
                    continue
                template, run_id = templates[mode]
                with fresh_home(template, scratch) as home:
                    seconds, code, err = once(row.argv(inst, run_id), home_env(envs[mode], home), home)
                if code != 0:
                    errors[key] = f"exit {code}: {err.strip()}"
                else:
                    samples.setdefault(key, []).append(seconds)
    floors = {
        m: statistics.median(samples[("floor_python", m)]) for m in installs if ("floor_python", m) in samples
    }
    result = []
    for row in ROWS:
        modes: dict[str, Any] = {}
        for mode in installs:
            key = (row.key, mode)
            if key in errors:
                modes[mode] = {"status": "failed", "error": errors[key]}
            elif key not in samples:
                modes[mode] = {
                    "status": "not measured",
                    "reason": peer_note if row.kind == "peer" else "no sample",
                }
            else:
                median = statistics.median(samples[key])
                cell: dict[str, Any] = {
                    "status": "measured",
                    "median_ms": ms(median),
                    "min_ms": ms(min(samples[key])),
                    "max_ms": ms(max(samples[key])),
                    "samples": len(samples[key]),
                    "ratio_to_python": round(median / floors[mode], 2) if mode in floors else None,
                }
                if row.target_ms is not None and not mode.endswith("_cold"):
                    # targets are on how a user runs runvoy (warm, the default); cold is shown beside it
                    cell["met"] = median * 1000 <= row.target_ms
                modes[mode] = cell
        entry: dict[str, Any] = {
            "key": row.key,
            "label": row.label,
            "kind": row.kind,
            "target_ms": row.target_ms,
            "modes": modes,
        }
        if row.target_ms is not None:
            entry["met"] = all(c.get("met") is True for m, c in modes.items() if not m.endswith("_cold"))
        result.append(entry)
    return result


def load_helper(module: str, name: str) -> tuple[Callable[..., Any] | None, str]:
    if not (HERE / f"{module}.py").exists():
        return None, f"benchmarks/{module}.py is not there"
    sys.path.insert(0, str(HERE))
    try:
        return getattr(importlib.import_module(module), name), ""
    except (ImportError, AttributeError) as exc:
        return None, f"benchmarks/{module}.py has no usable {name}: {exc}"
    finally:
        sys.path.remove(str(HERE))


def seed(inst: Install, home: Path, runs: int) -> None:
    """Seed with the installed runvoy's own python, so the records are in the schema of the code measured."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from seed import seed_local; seed_local(Path(sys.argv[2]), int(sys.argv[3]))"
    )
    env = home_env(mode_env(inst.mode), home)  # the unset mode would leave .pyc files in the other install
    subprocess.run(
        [inst.python, "-c", code, str(HERE), str(home), str(runs)], env=env, check=True, capture_output=True
    )


def measure_sizes(installs: dict[str, Install], sizes: list[int], runs: int, scratch: Path) -> dict[str, Any]:
    fn, reason = load_helper("seed", "seed_local")
    rows: list[dict[str, Any]] = [
        {"key": key, "label": label, "target_ratio": SIZE_TARGET_RATIO, "modes": {}}
        for key, label, _ in SIZE_ROWS
    ]
    if fn is None:
        for row in rows:
            row["modes"] = {m: {"status": "not measured", "reason": reason} for m in installs}
        return {"sizes": sizes, "rows": rows}
    envs = {m: mode_env(m) for m in installs}
    samples: dict[tuple[str, str, int], list[float]] = {}
    errors: dict[tuple[str, str], str] = {}
    seeder = next(iter(installs.values()))
    for size in sizes:
        # one seeded home per size, shared by both modes: these commands only read it
        home = scratch / f"seeded-{size}"
        home.mkdir()
        try:
            seed(seeder, home, size)
            run_id = first_run_id(seeder, home_env(envs[seeder.mode], home))
        except (subprocess.CalledProcessError, RuntimeError, ValueError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
            for key, _, _ in SIZE_ROWS:
                for mode in installs:
                    errors.setdefault((key, mode), f"seeding {size} runs failed: {text[-300:] or exc}")
            continue
        for mode, inst in installs.items():  # a first read may converge records: not what is measured
            for _, _, args in SIZE_ROWS:
                argv = [inst.runvoy, *(run_id if a == "{id}" else a for a in args)]
                subprocess.run(argv, env=home_env(envs[mode], home), capture_output=True, check=False)
        for round_no in range(runs):
            order = list(installs) if round_no % 2 == 0 else list(reversed(installs))
            for key, _, args in SIZE_ROWS:
                for mode in order:
                    if (key, mode) in errors:
                        continue
                    argv = [installs[mode].runvoy, *(run_id if a == "{id}" else a for a in args)]
                    seconds, code, err = once(argv, home_env(envs[mode], home), home)
                    if code != 0:
                        errors[(key, mode)] = f"{size} runs: exit {code}: {err.strip()}"
                    else:
                        samples.setdefault((key, mode, size), []).append(seconds)
        shutil.rmtree(home, ignore_errors=True)
    for row in rows:
        for mode in installs:
            if (row["key"], mode) in errors:
                row["modes"][mode] = {"status": "failed", "error": errors[(row["key"], mode)]}
                continue
            by_size: dict[str, Any] = {}
            base = samples.get((row["key"], mode, sizes[0]))
            for size in sizes:
                got = samples.get((row["key"], mode, size))
                if got is None:
                    by_size[str(size)] = {"status": "not measured"}
                    continue
                median = statistics.median(got)
                by_size[str(size)] = {
                    "median_ms": ms(median),
                    "ratio_to_smallest": round(median / statistics.median(base), 2) if base else None,
                }
            ratios = [c.get("ratio_to_smallest") for c in by_size.values()]
            row["modes"][mode] = {
                "status": "measured",
                "by_size": by_size,
                "met": all(r is not None and r <= SIZE_TARGET_RATIO for r in ratios),
            }
        row["met"] = all(c.get("met") is True for c in row["modes"].values())
    return {"sizes": sizes, "rows": rows}


def measure_concurrency(installs: dict[str, Install], runs: int) -> dict[str, Any]:
    fn, reason = load_helper("bench_concurrency", "measure_concurrent_starts")
    out: dict[str, Any] = {
        "key": "concurrent_starts",
        "runs": runs,
        "target_s": CONCURRENT_TARGET_S,
        "target_rss_mb": SUPERVISOR_TARGET_MB,
        "modes": {},
    }
    for mode, inst in installs.items():
        if fn is None:
            out["modes"][mode] = {"status": "not measured", "reason": reason}
            continue
        try:
            values = fn(inst.runvoy, mode_env(mode), runs)
        except Exception as exc:  # a helper's failure is a row's result, not the end of the report
            out["modes"][mode] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[-500:]}
            continue
        met = (
            values.get("all_running_s", float("inf")) <= CONCURRENT_TARGET_S
            and values.get("supervisor_rss_max_mb", float("inf")) <= SUPERVISOR_TARGET_MB
        )
        cell: dict[str, Any] = {"status": "measured", "values": values}
        if not mode.endswith("_cold"):  # the target is on the default (warm) start; cold is for reference
            # and a warm row must really have been served warm
            cell["met"] = met and values.get("served_warm") == values.get("runs")
        out["modes"][mode] = cell
    return out


def measure_follow(runs: int) -> dict[str, Any]:
    fn, reason = load_helper("bench_followers", "measure_followers")
    out: dict[str, Any] = {"key": "followers", "runs": runs, "providers": {}}
    for provider in FOLLOWER_PROVIDERS:
        if fn is None:
            out["providers"][provider] = {"status": "not measured", "reason": reason}
            continue
        try:
            values = fn(provider, runs)
        except ValueError as exc:  # the helper's way to say it has no fake cloud for this provider
            out["providers"][provider] = {"status": "not measured", "reason": str(exc)}
            continue
        except Exception as exc:  # a helper's failure is a row's result, not the end of the report
            out["providers"][provider] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[-500:]}
            continue
        out["providers"][provider] = {"status": "measured", "values": values}
    return out


def machine() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
    }


def fmt_cell(cell: dict[str, Any]) -> tuple[str, str]:
    if cell.get("status") != "measured":
        return f"{cell.get('status')}: {cell.get('reason') or cell.get('error', '')}".replace("|", "/")[
            :120
        ], "-"
    ratio = cell.get("ratio_to_python")
    return f"{cell['median_ms']:.0f} ms", (f"{ratio:.1f}x" if ratio is not None else "-")


def met_text(entry: dict[str, Any]) -> str:
    if "met" not in entry:
        return "-"
    judged = {m: c for m, c in entry["modes"].items() if not m.endswith("_cold")}
    per_mode = [c.get("met") for c in judged.values()]
    if all(m is True for m in per_mode):
        return "yes"
    if all(m is False for m in per_mode):
        return "NO"
    return "NO (" + ", ".join(MODE_LABELS[m] for m, c in judged.items() if c.get("met") is not True) + ")"


def markdown(report: dict[str, Any]) -> str:
    modes = list(report["installs"])
    lines = []
    meta, installs = report["machine"], report["installs"]
    lines.append(
        f"Measured {meta['date']}: Python {meta['python']}, {meta['cores']} cores, load average "
        f"{' / '.join(str(x) for x in meta['load_average'])} at the start; median of {report['runs']} runs per row."
    )
    for mode in modes:
        info = installs[mode]
        how = info["how"]
        pyc = ", ".join(f"{k} {v['compiled']}/{v['py']}" for k, v in info.get("pyc", {}).items())
        lines.append(
            f"- {MODE_LABELS[mode]}: {how}" + (f"; `.py` files with a `.pyc` after it: {pyc}" if pyc else "")
        )
    lines.append(f"- peer: {report['peer']}")
    lines.append("")
    lines.append(
        "Targets are judged on the warm columns, the default way runvoy runs (decision 1414); the cold columns"
        " (RUNVOY_WARM=0) are what the first command after an idle spell costs."
    )
    lines.append("")
    head = "| command | " + " | ".join(f"{MODE_LABELS[m]} | x floor" for m in modes) + " | target | met |"
    lines += [head, "|---|" + "---:|---:|" * len(modes) + "---|---|"]
    for entry in report["commands"]:
        cells = []
        for mode in modes:
            cells += list(fmt_cell(entry["modes"][mode]))
        target = f"<= {entry['target_ms']:.0f} ms" if entry.get("target_ms") else "-"
        lines.append(f"| {entry['label']} | " + " | ".join(cells) + f" | {target} | {met_text(entry)} |")
    sizes = report["sizes"]
    lines += [
        "",
        f"Size rows (stored runs: {', '.join(f'{s:,}' for s in sizes['sizes'])}; ratio to the {sizes['sizes'][0]:,}-run time):",
        "",
    ]
    reasons = {
        str(c.get("reason"))
        for row in sizes["rows"]
        for c in row["modes"].values()
        if c.get("status") == "not measured"
    }
    if len(reasons) == 1 and all(
        c.get("status") == "not measured" for r in sizes["rows"] for c in r["modes"].values()
    ):
        lines.append(f"not measured: {reasons.pop()}")
    else:
        head = "| command | mode | " + " | ".join(f"{s:,} runs" for s in sizes["sizes"]) + " | target | met |"
        lines += [head, "|---|---|" + "---:|" * len(sizes["sizes"]) + "---|---|"]
    for row in sizes["rows"] if not lines[-1].startswith("not measured: ") else []:
        for mode in modes:
            cell = row["modes"][mode]
            if cell.get("status") != "measured":
                text = f"{cell.get('status')}: {cell.get('reason') or cell.get('error', '')}".replace(
                    "|", "/"
                )[:150]
                lines.append(
                    f"| {row['label']} | {MODE_LABELS[mode]} | {text} |"
                    + " |" * (len(sizes["sizes"]) - 1)
                    + f" <= {SIZE_TARGET_RATIO}x | - |"
                )
                continue
            values = []
            for size in sizes["sizes"]:
                v = cell["by_size"][str(size)]
                values.append(
                    f"{v['median_ms']:.0f} ms ({v['ratio_to_smallest']:.2f}x)"
                    if "median_ms" in v
                    else "not measured"
                )
            lines.append(
                f"| {row['label']} | {MODE_LABELS[mode]} | "
                + " | ".join(values)
                + f" | <= {SIZE_TARGET_RATIO}x | {'yes' if cell['met'] else 'NO'} |"
            )
    conc = report["concurrency"]
    lines += [
        "",
        f"Concurrency ({conc['runs']} detached local runs started at once; target: all running in <= {CONCURRENT_TARGET_S:g} s, each supervisor <= {SUPERVISOR_TARGET_MB:g} MB RSS):",
        "",
    ]
    for mode in modes:
        cell = conc["modes"][mode]
        if cell.get("status") != "measured":
            lines.append(
                f"- {MODE_LABELS[mode]}: {cell.get('status')}: {cell.get('reason') or cell.get('error', '')}"
            )
        else:
            shown = ", ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in cell["values"].items()
            )
            verdict = ("yes" if cell["met"] else "NO") if "met" in cell else "no target (cold, for reference)"
            lines.append(f"- {MODE_LABELS[mode]}: {shown}; met: {verdict}")
    fol = report["followers"]
    lines += [
        "",
        f"Followers (one follower of {fol['runs']} attached runs per provider, in this script's Python; target: one poller per provider):",
        "",
    ]
    for provider, cell in fol["providers"].items():
        if cell.get("status") != "measured":
            lines.append(f"- {provider}: {cell.get('status')}: {cell.get('reason') or cell.get('error', '')}")
        else:
            shown = ", ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in cell["values"].items()
            )
            lines.append(f"- {provider}: {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=None, help="samples per row (default 15; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer runs and smaller sizes: a smoke test")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="the repository to git clone (default: this one)"
    )
    parser.add_argument(
        "--skip-install", type=Path, metavar="PATH", help="measure this existing venv in both modes"
    )
    parser.add_argument("--sizes", help="stored-run counts of the size rows, comma-separated (first = base)")
    parser.add_argument(
        "--concurrent", type=int, help="detached runs started at once (default 200; 20 with --quick)"
    )
    parser.add_argument(
        "--follower-runs", type=int, help="attached runs per follower (default 20; 5 with --quick)"
    )
    parser.add_argument("--no-peer", action="store_true", help="do not install awscli for the peer row")
    parser.add_argument("--no-sizes", action="store_true")
    parser.add_argument("--no-concurrency", action="store_true")
    parser.add_argument("--no-followers", action="store_true")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 15)
    sizes = (
        [int(n) for n in args.sizes.split(",")]
        if args.sizes
        else [100, 1_000]
        if args.quick
        else [100, 10_000, 100_000]
    )
    concurrent = args.concurrent or (20 if args.quick else 200)
    follower_runs = args.follower_runs or (5 if args.quick else 20)
    report: dict[str, Any] = {"machine": machine(), "runs": runs, "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="runvoy-bench-") as tmp:
        scratch = Path(tmp)
        installs: dict[str, Install] = {}
        for mode in INSTALL_MODES:
            if args.skip_install:
                installs[mode] = existing(args.skip_install, mode)
            else:
                progress(f"installing ({INSTALL_LABELS[mode]})")
                installs[mode] = install(args.source, mode, scratch)
        for mode in INSTALL_MODES:  # the same install, started cold
            installs[f"{mode}_cold"] = dataclasses.replace(installs[mode], mode=f"{mode}_cold")
        if not args.no_peer:
            progress("installing the peer (pip install awscli)")
        peer_path, peer_note = (None, "--no-peer") if args.no_peer else install_peer(scratch)
        for inst in installs.values():
            inst.aws = peer_path
        report["peer"] = peer_note if peer_path else f"not measured: {peer_note}"
        report["installs"] = {
            mode: {
                "how": (
                    f"the {INSTALL_LABELS[mode.removesuffix('_cold')]} install, every command with RUNVOY_WARM=0"
                    if mode.endswith("_cold")
                    else f"existing venv {inst.venv} (--skip-install), shared by all modes"
                    if inst.checkout is None
                    else f"`git clone {args.source}` (commit {inst.commit}) + the README's command "
                    f"`{readme_command(inst.checkout)}` with {INSTALL_LABELS[mode]}, {inst.seconds:.1f} s"
                ),
                "venv": str(inst.venv),
                "install_seconds": inst.seconds,
                "commit": inst.commit,
                "pyc": inst.pyc,
            }
            for mode, inst in installs.items()
        }
        progress(f"commands, floors and peer: {runs} rounds")
        report["commands"] = measure_commands(installs, runs, scratch, peer_note)
        if not args.no_sizes:
            progress(f"size rows: {', '.join(str(n) for n in sizes)} stored runs")
        report["sizes"] = (
            {
                "sizes": sizes,
                "rows": [
                    {
                        "key": k,
                        "label": lbl,
                        "target_ratio": SIZE_TARGET_RATIO,
                        "modes": {m: {"status": "not measured", "reason": "--no-sizes"} for m in installs},
                    }
                    for k, lbl, _ in SIZE_ROWS
                ],
            }
            if args.no_sizes
            else measure_sizes(installs, sizes, runs, scratch)
        )
        if not args.no_concurrency:
            progress(f"concurrency: {concurrent} detached runs at once, per mode")
        report["concurrency"] = (
            {
                "key": "concurrent_starts",
                "runs": concurrent,
                "modes": {m: {"status": "not measured", "reason": "--no-concurrency"} for m in installs},
            }
            if args.no_concurrency
            else measure_concurrency(installs, concurrent)
        )
        if not args.no_followers:
            progress(f"followers: {follower_runs} attached runs per provider")
        report["followers"] = (
            {
                "key": "followers",
                "runs": follower_runs,
                "providers": {
                    p: {"status": "not measured", "reason": "--no-followers"} for p in FOLLOWER_PROVIDERS
                },
            }
            if args.no_followers
            else measure_follow(follower_runs)
        )
    stop_warm_processes()
    progress("done")
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
