"""scripts/test.sh audits the lock and gates coverage (issue 21 item 6, decisions 2141 and 2142).

The audit runs the real pip-audit on a hashed requirements file, against a vulnerability service on
127.0.0.1 (the OSV API, which pip-audit can be pointed at): a finding fails, a documented one passes, a
service that cannot be reached warns and passes. The coverage tests run a real `runvoy run` under coverage and
look for the supervisor's own data: it runs without site, so nothing but runvoy_core's hook can measure it.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
AUDIT = ROOT / "scripts" / "audit_lock.py"
TEST_SH = ROOT / "scripts" / "test.sh"
RUNVOY = str(Path(sys.executable).parent / "runvoy")
PACKAGES = ["runvoy_core", "runvoy_cli", "runvoy_server", "runvoy_aws", "runvoy_gcp", "runvoy_azure"]
VULN_ID = "GHSA-0000-fake-0001"
REQUIREMENTS = (
    "six==1.16.0 \\\n"
    "    --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n"
    "idna==3.10 \\\n"
    "    --hash=sha256:946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3\n"
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pip_audit") is None, reason="pip-audit not installed"
)


class _OSV(BaseHTTPRequestHandler):
    """OSV's query API: one advisory, for six below 1.17.0."""

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        vulns: list[dict[str, Any]] = []
        if query["package"]["name"] == "six":
            vulns.append(
                {
                    "id": VULN_ID,
                    "summary": "a made-up advisory",
                    "aliases": ["CVE-0000-0001"],
                    "affected": [
                        {
                            "package": {"name": "six", "ecosystem": "PyPI"},
                            "ranges": [
                                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.17.0"}]}
                            ],
                        }
                    ],
                }
            )
        body = json.dumps({"vulns": vulns} if vulns else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def osv_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OSV)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    server.shutdown()
    server.server_close()


def audit(tmp_path: Path, osv: str, ignores: str | None = None) -> subprocess.CompletedProcess[str]:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(REQUIREMENTS)
    ignore_file = tmp_path / "ignore"
    ignore_file.write_text(ignores or "")
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env["RUNVOY_AUDIT_IGNORE_FILE"] = str(ignore_file)
    return subprocess.run(
        [sys.executable, str(AUDIT), str(requirements), "--vulnerability-service", "osv", "--osv-url", osv],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_a_known_vulnerability_fails_the_audit(tmp_path: Path, osv_url: str) -> None:
    done = audit(tmp_path, osv_url)
    assert done.returncode == 1, done.stderr
    finding = [line for line in done.stderr.splitlines() if line.startswith("six 1.16.0: ")]
    assert len(finding) == 1, done.stderr
    assert VULN_ID in finding[0] and "CVE-0000-0001" in finding[0] and finding[0].endswith("fixed in 1.17.0")
    assert "idna" not in done.stderr


def test_a_documented_vulnerability_passes(tmp_path: Path, osv_url: str) -> None:
    done = audit(
        tmp_path, osv_url, f"# comment\n\n{VULN_ID}  only reached through an API runvoy never calls\n"
    )
    assert done.returncode == 0, done.stderr
    assert "no known vulnerabilities in 2 locked packages, 1 documented in .pip-audit-ignore" in done.stderr


def test_an_ignored_id_needs_its_reason(tmp_path: Path, osv_url: str) -> None:
    done = audit(tmp_path, osv_url, f"{VULN_ID}\n")
    assert done.returncode == 2
    assert f"ignore:1: {VULN_ID} has no reason" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_service_warns_and_passes(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nobody listens on: bound, never listening
        closed.bind(("127.0.0.1", 0))
        done = audit(tmp_path, f"http://127.0.0.1:{closed.getsockname()[1]}/v1/query")
    assert done.returncode == 0, done.stderr
    assert "WARNING: the vulnerability service could not be reached" in done.stderr
    assert "NOT audited" in done.stderr


def test_every_entry_of_the_checkout_s_ignore_list_has_a_reason() -> None:
    text = (ROOT / ".pip-audit-ignore").read_text()
    entries = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for line in entries:
        assert re.fullmatch(r"\S+\s+\S.{10,}", line.strip()), line
    # the audit workflow passes the same list
    assert ".pip-audit-ignore" in (ROOT / ".github" / "workflows" / "audit.yml").read_text()


def test_the_test_script_audits_the_exported_lock() -> None:
    script = " ".join(TEST_SH.read_text().replace("\\\n", " ").split())
    export = re.search(r"(?:\buv|\"\$UV\") export ([^;&|]*?)--output-file (\S+) ", script)
    assert export, "scripts/test.sh must export the lock"
    for flag in ("--locked", "--all-extras", "--all-packages", "--no-emit-workspace"):
        assert flag in export[1]
    assert "--no-hashes" not in export[1]
    assert f"scripts/audit_lock.py {export[2]}" in script, "the audit must read the exported file"


def test_the_coverage_gate_is_configured() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["coverage"]
    assert sorted(Path(source).name for source in config["run"]["source"]) == sorted(PACKAGES)
    assert all((ROOT / source).is_dir() for source in config["run"]["source"])  # folders, not package names
    assert config["run"]["parallel"] is True
    assert {"subprocess", "_exit"} <= set(config["run"]["patch"])
    assert config["report"]["fail_under"] >= 85
    script = TEST_SH.read_text()
    assert "-m coverage run -m pytest" in script and "-m coverage report" in script


def _supervisor_only_lines() -> set[int]:
    """Lines of Supervisor.run: only a supervisor process runs them."""
    tree = ast.parse((ROOT / "runvoy_core/providers/local/supervisor.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Supervisor":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "run":
                    return {stmt.lineno for stmt in item.body}
    raise AssertionError("Supervisor.run not found")


@pytest.mark.timeout(300)
def test_the_supervisor_started_without_site_is_measured(tmp_path: Path) -> None:
    from coverage import CoverageData

    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "RUNVOY_"))}
    # cold (RUNVOY_WARM=0): no resident warm process outlives the test
    env.update(RUNVOY_HOME=str(tmp_path / "home"), RUNVOY_CONFIG=str(tmp_path / "none.toml"), RUNVOY_WARM="0")
    data_file = tmp_path / "data" / ".coverage"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            f"--rcfile={ROOT / 'pyproject.toml'}",
            f"--data-file={data_file}",
            RUNVOY,
            "run",
            "echo measured",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "measured" in done.stdout
    supervisor = str(ROOT / "runvoy_core/providers/local/supervisor.py")
    wanted = _supervisor_only_lines()

    def measured() -> set[int] | None:
        seen: set[int] = set()
        for path in data_file.parent.glob(".coverage*"):
            data = CoverageData(basename=str(path))
            try:
                data.read()
            except Exception:  # a file still being written: read it on the next round
                continue
            seen |= set(data.lines(supervisor) or ())
        return (seen & wanted) or None

    # the supervisor saves its data as it exits, which may be just after the CLI has its outcome
    assert wait_for(measured, what="the supervisor's coverage data")
