"""The local provider's settings: ``[providers.local]`` in the config file or ``RUNVOY_PROVIDERS__LOCAL__*``."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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


class LocalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    container_runtime: Literal["podman"] | None = Field(
        default=None,
        description="run --image requests in a container with this runtime; without it --image is refused",
    )
    runtime_path: str = Field(default="podman", description="the container runtime's executable")
    oci_runtime: str = Field(default="runc", description="the OCI runtime podman uses (--runtime)")
    shell: str = Field(default="/bin/sh", description="the shell that runs a command string")
    secret_env_prefix: str = Field(
        default="",
        description="secret NAME is read from the caller's environment variable PREFIX+NAME",
    )
    pass_env: list[Annotated[str, AfterValidator(_pass_env_pattern)]] = Field(
        default_factory=list,
        max_length=MAX_PASS_ENV,
        description="names or globs (AWS_*) of the caller's variables a run gets besides the base set; "
        '["*"] passes all of them (never RUNVOY_* nor variables under secret_env_prefix)',
    )
