"""Structural facts about imports, checked in fresh interpreters: start-up stays light and the provider
boundary holds (the core knows no cloud SDK; a provider imports nothing from another provider)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLOUD_SDKS = {"boto3", "botocore", "google", "azure", "googleapiclient", "moto"}


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})), file=sys.stderr)"
    # unmeasured under scripts/test.sh's coverage run, whose coverage would import its own modules (sqlite3...)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env, check=True
    )
    return set(result.stderr.strip().splitlines()[-1].split())


def test_help_imports_click_only() -> None:
    modules = imported_after(
        "import runvoy_cli.main as m\ntry:\n    m.cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass"
    )
    assert not modules & CLOUD_SDKS
    assert not modules & {"pydantic", "structlog", "sqlite3", "pluggy"}, "--help must stay import-free"


def test_a_local_run_imports_no_cloud_sdk(tmp_path: Path) -> None:
    modules = imported_after(
        "import os\n"
        f"os.environ['RUNVOY_HOME'] = {str(tmp_path)!r}\n"
        "from runvoy_core.api import Runvoy\n"
        "assert Runvoy().run('true').exit_code == 0"
    )
    assert not modules & CLOUD_SDKS


def test_the_supervisor_imports_only_the_standard_library() -> None:
    modules = imported_after("import runvoy_core.providers.local.supervisor")
    assert not modules & {"pydantic", "structlog", "pluggy", "click", *CLOUD_SDKS}


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["runvoy_core", "runvoy_cli"])
def test_core_and_cli_never_import_a_cloud_sdk_or_a_provider(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in (ROOT / package).rglob("*.py")
        if (found := _top_level_imports(path) & (CLOUD_SDKS | {"runvoy_aws", "runvoy_gcp", "runvoy_azure"}))
    }
    # the cost refresher may use boto3 for the AWS Price List API, imported lazily and only when installed
    offenders.pop("runvoy_core/cost/sources/aws.py", None)
    assert offenders == {}


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
def test_a_provider_imports_nothing_from_another_provider(provider: str) -> None:
    others = {f"runvoy_{p}" for p in ("aws", "gcp", "azure") if p != provider}
    package = ROOT / "providers" / provider / f"runvoy_{provider}"
    offenders = {str(p.relative_to(ROOT)) for p in package.rglob("*.py") if _top_level_imports(p) & others}
    assert offenders == set()
