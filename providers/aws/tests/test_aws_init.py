"""`runvoy init` for AWS in a real terminal (pexpect) against moto and the Fargate simulator: from nothing to
a first (emulated) Fargate run, and what it says when the credential chain has nothing (decision 2111).

The wizard runs in a child process; moto and the simulator run in this one, so the child's RunTask reaches a
simulated task that really runs `echo hello from runvoy`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pexpect
import pytest
from runvoy_aws.credentials import CHECK

from runvoy_core.testing.waiting import wait_for

RUNVOY = str(Path(sys.executable).parent / "runvoy")
TIMEOUT = 180  # setup creates a dozen resources and the run polls at the default interval


def spawn(*args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    return pexpect.spawn(
        RUNVOY,
        ["init", *args],
        env=env or os.environ.copy(),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 200),
    )


def test_from_nothing_to_a_first_fargate_run(moto: str, sim) -> None:  # type: ignore[no-untyped-def]
    child = spawn("--set", f"endpoint_url={moto}")
    child.expect(r"Config profile to write \[default\]: ")
    child.sendline("")
    child.expect(r"Provider \[local\]: ")
    child.sendline("aws")
    child.expect(r"found: environment variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN")
    child.expect(r"Region \[us-east-1\]: ")  # AWS_DEFAULT_REGION, from the chain
    child.sendline("")
    child.expect(r"Sizes ECS Fargate runs: 0\.25 vCPU: 512MiB/1GiB/2GiB")
    child.expect(r"Default vCPU of a run \[0\.25\]: ")
    child.sendline("")
    child.expect(r"Default memory of a run \[512MiB\]: ")
    child.sendline("")
    child.expect(r"Write this to .*\? \[Y/n\]: ")
    child.sendline("")
    child.expect("would create")
    child.expect(r"Run setup now\? \[Y/n\]: ")
    child.sendline("")
    child.expect("created")
    child.expect(r"Run a first command \(echo hello from runvoy\)\? \[Y/n\]: ")
    child.sendline("")
    child.expect(r"\nhello from runvoy\r?\n")
    child.expect("SUCCEEDED")
    child.expect("Next:")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    written = tomllib.loads(Path(os.environ["RUNVOY_CONFIG"]).read_text(encoding="utf-8"))
    assert written == {
        "provider": "aws",
        "cpu": "0.25",
        "memory": "512MiB",
        "providers": {"aws": {"endpoint_url": moto, "region": "us-east-1"}},
    }
    assert sim.launched, "the first run went through RunTask"


def test_an_empty_home_and_no_variables_say_what_is_missing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "RUNVOY_HOME": os.environ["RUNVOY_HOME"],
        "RUNVOY_CONFIG": os.environ["RUNVOY_CONFIG"],
        "AWS_EC2_METADATA_DISABLED": "true",  # the instance role would be asked over the network
    }
    child = spawn("--provider", "aws", env=env)
    child.expect(r"Config profile to write \[default\]: ")
    child.sendline("")
    child.expect(r"missing: no AWS credentials for profile 'default': looked in AWS_ACCESS_KEY_ID")
    child.expect(f"{home}/.aws/credentials, {home}/.aws/config")
    child.expect(r"run `aws configure`")
    child.expect(r"Region \[us-east-1\]: ")  # no region in the chain: the provider's default
    for _ in range(3):
        child.sendline("")
        child.expect(r"\]: ")
    child.sendline("")
    child.expect("setup and the first run are skipped")
    child.expect(r"runvoy setup +create what the provider needs")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "Traceback" not in (child.before or "")
    assert tomllib.loads(Path(env["RUNVOY_CONFIG"]).read_text(encoding="utf-8"))["provider"] == "aws"


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_the_check_names_the_shared_credentials_file_and_the_profile(aws_files: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    credentials = aws_files / "credentials"
    credentials.write_text("[dev]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s3cr3t\n")
    (aws_files / "config").write_text("[profile dev]\nregion = eu-west-3\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_files / "config"))
    nothing = CHECK.check({})
    assert not nothing.ok and any("profiles in your AWS files: dev" in line for line in nothing.missing)
    report = CHECK.check({"profile": "dev"})
    assert report.ok, report
    assert report.found == (f"the shared credentials file {credentials}, profile 'dev'",)
    assert report.region == "eu-west-3"
    assert "s3cr3t" not in repr(report) and "AKIDEXAMPLE" not in repr(report)


def test_a_profile_that_does_not_exist_and_partial_variables_are_reported(
    aws_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = CHECK.check({"profile": "nope"})
    assert (
        not missing.ok
        and "nope" in missing.missing[0]
        and "aws configure --profile nope" in missing.missing[0]
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    partial = CHECK.check({})
    assert not partial.ok and "AWS_SECRET_ACCESS_KEY" in partial.missing[0], partial


def _reading_the_terminal(pid: int) -> bool:
    """The child blocks in a read of its terminal (a Ctrl-C sent before that is only seen at the next key)."""
    if not Path("/proc/self/syscall").exists():  # macOS
        done = subprocess.run(["ps", "-o", "wchan=", "-p", str(pid)], capture_output=True, text=True)
        return done.stdout.strip() == "ttyin"
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return fields[:2] == [{"aarch64": "63"}.get(os.uname().machine, "0"), "0x0"]


@pytest.mark.parametrize("question", [r"Region \[us-east-1\]: ", r"Default vCPU of a run \[0\.25\]: "])
def test_ctrl_c_at_the_cloud_questions_leaves_the_config_byte_identical(question: str) -> None:
    path = Path(os.environ["RUNVOY_CONFIG"])
    path.write_text('# mine\nprovider = "local"\n\n[profiles.ci]\nuser = "ci"\n', encoding="utf-8")
    before = path.read_bytes()
    child = spawn("--provider", "aws", "--set", "endpoint_url=http://127.0.0.1:9")
    child.expect(r"Config profile to write \[default\]: ")
    child.sendline("")
    if "vCPU" in question:
        child.expect(r"Region \[us-east-1\]: ")
        child.sendline("")
    child.expect(question)
    wait_for(lambda: _reading_the_terminal(child.pid), what="runvoy init to wait for an answer")
    child.sendintr()
    child.expect("interrupted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".config.toml")] == []
