"""The local provider's settings: ``[providers.local]`` in the config file or ``RUNVOY_PROVIDERS__LOCAL__*``."""

from __future__ import annotations

import re
from typing import Literal

from runvoy_core.records import Record, RecordError

MAX_PASS_ENV = 64
# a variable name in which * and ? stand for any characters (fnmatch without [sets]: no name needs them)
_PASS_ENV = re.compile(r"^[A-Za-z_*?][A-Za-z0-9_*?]{0,127}$")


def _pass_env_pattern(pattern: str) -> str:
    if not _PASS_ENV.match(pattern):
        raise ValueError(
            f"{pattern!r} is not a variable name or a glob of one: letters, digits, _, * and ? "
            "(not starting with a digit), at most 128 characters"
        )
    return pattern


class LocalConfig(Record, kw_only=True):
    container_runtime: Literal["podman"] | None = None
    """Run --image requests in a container with this runtime; without it --image is refused."""
    runtime_path: str = "podman"
    """The container runtime's executable."""
    oci_runtime: str = "runc"
    """The OCI runtime podman uses (--runtime)."""
    shell: str = "/bin/sh"
    """The shell that runs a command string."""
    secret_env_prefix: str = ""
    """Secret NAME is read from the caller's environment variable PREFIX+NAME."""
    pass_env: list[str] = []
    """Names or globs (AWS_*) of the caller's variables a run gets besides the base set; ["*"] passes all of
    them (never RUNVOY_* nor variables under secret_env_prefix)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.pass_env) > MAX_PASS_ENV:
            raise RecordError(f"at most {MAX_PASS_ENV} names or globs", "pass_env")
        for pattern in self.pass_env:
            try:
                _pass_env_pattern(pattern)
            except ValueError as exc:
                raise RecordError(str(exc), "pass_env") from None
