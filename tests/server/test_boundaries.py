"""The server stays out of everything but ``runvoy server``: the core and the CLI import no web framework and
no runvoy_server module at the top of a file, and commands other than `server` never load them."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = {"fastapi", "starlette", "uvicorn", "anyio", "httpx", "runvoy_server"}
RUNVOY = str(Path(sys.executable).parent / "runvoy")


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_and_cli_modules_import_no_web_framework_at_load() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(found)
        for package in ("runvoy_core", "runvoy_cli")
        for path in (ROOT / package).rglob("*.py")
        if (found := _top_level_imports(path) & WEB)
    }
    assert offenders == {}


def test_health_and_help_load_no_server_code(runvoy_home: Path) -> None:
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1", "RUNVOY_WARM": "0"}
    for args in (["--help"], ["health", "--server", "http://127.0.0.1:9"], ["server", "--help"]):
        done = subprocess.run([RUNVOY, *args], env=env, capture_output=True, text=True, timeout=120)
        imported = {
            line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line
        }
        assert "runvoy_cli" in imported or args == ["--help"], done.stderr[-500:]
        assert not imported & WEB, (args, imported & WEB)
