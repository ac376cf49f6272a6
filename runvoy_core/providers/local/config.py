"""The local provider's settings: ``[providers.local]`` in the config file or ``RUNVOY_PROVIDERS__LOCAL__*``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LocalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
