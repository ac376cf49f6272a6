"""The import budget of the local-state commands (issue 14 items 1 and 4).

Each command runs as the installed `runvoy` console script in a subprocess with PYTHONPROFILEIMPORTTIME=1:
Python then reports every module the moment it is first imported, so the set read from stderr is everything
the process (and, for `run`, its supervisor) imported, and nothing in runvoy had to change to expose it.
The facts asserted are structural (which modules), never timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNVOY = str(Path(sys.executable).parent / "runvoy")
CLOUD_SDKS = ("boto3", "botocore", "google", "azure")
SERVER_FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "flask")
ESTIMATE = ("cost", "estimate", "--cpu", "1", "--memory", "2GiB", "--duration", "10m")
COMMANDS: dict[str, tuple[str, ...]] = {
    "--help": ("--help",),
    "run": ("run", "true"),
    "status": ("status", "{id}"),
    "list": ("list",),
    "logs": ("logs", "{id}"),
    "locks list": ("locks", "list"),
    "cost estimate": ESTIMATE,
    "config show": ("config", "show"),
    "providers": ("providers",),
}
HOT_COMMANDS = tuple(COMMANDS)  # every local command: records are msgspec structs (decision 1410)


def imported_modules(argv: list[str], env: dict[str, str]) -> set[str]:
    done = subprocess.run(
        argv,
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[-1].strip()
            if name != "imported package":
                modules.add(name)
    return modules


@pytest.fixture(scope="module")
def imports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The modules each command imports, against a temporary RUNVOY_HOME holding one ended run."""
    home = tmp_path_factory.mktemp("runvoy-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNVOY_")}
    # cold: a warm child has everything imported already (decision 1414), which would hide what a cold start pays
    env.update(RUNVOY_HOME=str(home), RUNVOY_CONFIG=str(home / "none.toml"), RUNVOY_WARM="0")
    subprocess.run([RUNVOY, "run", "true"], env=env, capture_output=True, check=True)
    listed = subprocess.run([RUNVOY, "list", "--json"], env=env, capture_output=True, text=True, check=True)
    run_id = json.loads(listed.stdout)[0]["id"]
    return {
        name: imported_modules([RUNVOY, *(run_id if a == "{id}" else a for a in args)], env)
        for name, args in COMMANDS.items()
    }


def roots(modules: set[str]) -> set[str]:
    return {m.split(".", 1)[0] for m in modules}


def test_the_probe_sees_the_command_s_own_imports(imports: dict[str, set[str]]) -> None:
    # without this an empty set (a Python that ignores the variable, a changed format) would pass everything
    for name, modules in imports.items():
        assert "runvoy_cli.main" in modules, name


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_cloud_sdk_and_no_server_framework(imports: dict[str, set[str]], command: str) -> None:
    found = roots(imports[command]) & {*CLOUD_SDKS, *SERVER_FRAMEWORKS}
    assert not found, f"`runvoy {command}` imports {sorted(found)}"


def test_help_does_not_import_the_api(imports: dict[str, set[str]]) -> None:
    found = sorted(m for m in imports["--help"] if m == "runvoy_core.api" or m.startswith("runvoy_core.api."))
    assert not found, f"`runvoy --help` imports {found}"


@pytest.mark.parametrize("command", HOT_COMMANDS)
def test_hot_commands_import_no_pydantic(imports: dict[str, set[str]], command: str) -> None:
    found = sorted(m for m in imports[command] if m.split(".", 1)[0] in ("pydantic", "pydantic_core"))
    assert not found, f"`runvoy {command}` imports {found[:10]}"
