"""Audit the locked dependencies with pip-audit, for scripts/test.sh (decision 2141).

    python scripts/audit_lock.py REQUIREMENTS [PIP_AUDIT_ARGS...]

REQUIREMENTS is the lock exported with hashes (`uv export --locked --all-extras --all-packages
--no-emit-workspace`), as in .github/workflows/audit.yml; pip-audit checks exactly those versions
(`--require-hashes --disable-pip`), resolving and installing nothing. Further arguments go to pip-audit
(the tests point it at a local vulnerability service with `-s osv --osv-url ...`).

Exit status: 0 when no locked package has a known vulnerability other than those documented in
.pip-audit-ignore (one `ID reason` a line); also 0, with a warning, when the vulnerability service cannot be
reached or answers for no package, since a network outage is not a finding. 1 for a finding; 2 for an
ignore list entry without its reason, or a pip-audit that failed for another reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

IGNORE_FILE = Path(__file__).resolve().parents[1] / ".pip-audit-ignore"
IGNORE_FILE_ENV = "RUNVOY_AUDIT_IGNORE_FILE"
"""Another ignore list than the checkout's (for the tests)."""
UNREACHABLE_MARKS = (
    "Tip: your network may be blocking this service",  # pip-audit's message for a connection failure
    "requests.exceptions.",  # a proxy or DNS failure pip-audit does not catch: its traceback
    "ServiceError",  # the service answered with an HTTP error
)


def read_ignores(path: Path) -> dict[str, str]:
    """The documented vulnerabilities: ID -> why it does not apply. Raises ValueError for an entry
    without a reason."""
    ignores: dict[str, str] = {}
    if not path.exists():
        return ignores
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        vuln_id, _, reason = line.partition(" ")
        if not reason.strip():
            raise ValueError(
                f"{path.name}:{number}: {vuln_id} has no reason (write `ID why it does not apply`)"
            )
        ignores[vuln_id] = reason.strip()
    return ignores


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr)


def audit(requirements: str, extra: list[str], ignores: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory(prefix="runvoy-audit-") as tmp:
        report = Path(tmp) / "pip-audit.json"
        argv = [
            sys.executable,
            "-m",
            "pip_audit",
            "--requirement",
            requirements,
            "--require-hashes",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
            "--output",
            str(report),
            *(arg for vuln_id in ignores for arg in ("--ignore-vuln", vuln_id)),
            *extra,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if not report.exists():
            if any(mark in done.stderr for mark in UNREACHABLE_MARKS):
                last = done.stderr.strip().splitlines()[-1:] or ["no message"]
                warn(
                    "the vulnerability service could not be reached; the locked dependencies were NOT audited "
                    f"({last[0][:300]}). The audit workflow runs this check in CI."
                )
                return 0
            print(done.stderr[-3000:], file=sys.stderr)
            print(f"pip-audit failed (exit status {done.returncode})", file=sys.stderr)
            return 2
        result = json.loads(report.read_text(encoding="utf-8"))
    dependencies = result.get("dependencies", [])
    findings = [(dep, vuln) for dep in dependencies for vuln in dep.get("vulns", [])]
    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    for dep, vuln in findings:
        fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version yet"
        aliases = ", ".join(vuln.get("aliases", []))
        print(
            f"{dep['name']} {dep['version']}: {vuln['id']}"
            + (f" ({aliases})" if aliases else "")
            + f"; fixed in {fixed}",
            file=sys.stderr,
        )
    if findings:
        print(
            f"{len(findings)} known vulnerabilities in the locked dependencies. Upgrade the package "
            "(`uv lock --upgrade-package NAME`), or, if it does not apply to runvoy, add `ID reason` to "
            ".pip-audit-ignore (CONTRIBUTING.md, Tests).",
            file=sys.stderr,
        )
        return 1
    if dependencies and len(skipped) == len(dependencies):
        warn(
            f"the vulnerability service answered for none of the {len(dependencies)} locked packages "
            f"({skipped[0]['skip_reason']}); they were NOT audited. The audit workflow runs this check in CI."
        )
        return 0
    for dep in skipped:
        warn(f"{dep['name']} was not audited: {dep['skip_reason']}")
    ignored = f", {len(ignores)} documented in .pip-audit-ignore" if ignores else ""
    print(
        f"pip-audit: no known vulnerabilities in {len(dependencies) - len(skipped)} locked packages{ignored}",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        ignores = read_ignores(Path(os.environ.get(IGNORE_FILE_ENV) or IGNORE_FILE))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return audit(argv[0], argv[1:], ignores)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
