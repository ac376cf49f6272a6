"""Helpers for the CLI tests: invoke the click group in-process, or the installed `runvoy` script."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from runvoy_cli.main import cli

RUNVOY = str(Path(sys.executable).parent / "runvoy")


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()


def _invoke(*args: str) -> Outcome:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True, prog_name="runvoy")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # an exception that escaped the command is a bug: show it, with its traceback
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def invoke() -> Callable[..., Outcome]:
    return _invoke


def run_script(*args: str, timeout: float = 120, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """The real console script, in a subprocess (exit codes, streaming, signals)."""
    return subprocess.run(
        [RUNVOY, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy(), **kwargs
    )  # type: ignore[call-overload, no-any-return]


def assert_clean_error(outcome: Outcome | subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """A one-line error and a hint on stderr, the expected exit code, and no traceback."""
    err = outcome.err if isinstance(outcome, Outcome) else outcome.stderr
    got = outcome.code if isinstance(outcome, Outcome) else outcome.returncode
    assert got == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    error_lines = [line for line in lines if line.startswith("error:") or line.startswith("Error:")]
    assert len(error_lines) == 1, err
    if code != 2 or lines[0].startswith("error:"):
        assert any(line.startswith("hint:") for line in lines), err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def clean_error() -> Callable[..., None]:
    return assert_clean_error


@pytest.fixture
def script() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_script


@pytest.fixture
def runvoy_bin() -> str:
    return RUNVOY
