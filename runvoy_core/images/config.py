"""The ``[images]`` config section (a pydantic model the core settings can include as ``images``)::

    [images]
    allow = ["123456789012.dkr.ecr.*.amazonaws.com/*", "python:3.*"]   # empty: every image is allowed
    block = ["*:latest"]                       # block wins over allow
    require_digest = false                      # true: only IMAGE@sha256:... references
    cache_ttl = 300                             # seconds a resolution is reused (0-3600; 0 turns the cache off)
    timeout = 10                                # seconds per registry request (0 < t <= 120)

    [images.registries."ghcr.io"]               # per registry host (HOST or HOST:PORT, as in the reference)
    username_env = "GHCR_USER"                  # names of environment variables, never the secrets themselves
    password_env = "GHCR_TOKEN"
    # token_env = "REGISTRY_TOKEN"              # or: a bearer token sent as is (exclusive with the pair above)
    ca_bundle = "/etc/ssl/private-ca.pem"       # PEM file of CAs to trust for this registry (TLS is always verified)
    plain_http = false                          # true: talk HTTP, not HTTPS (a registry on localhost, tests)

Bounds: at most 256 patterns per list, each 1-512 characters of the characters a reference may hold plus the
glob characters ``* ? [ ] !``; at most 64 registries.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from runvoy_core.images.reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN

_PATTERN_CHARS = r"[A-Za-z0-9._/:@*?\[\]!-]{1,512}"
Pattern = Annotated[str, StringConstraints(pattern=rf"^{_PATTERN_CHARS}$")]
"""A glob (fnmatch, case-sensitive) over an image reference; see ``policy``."""

EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")]

_HOST = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"(?::[0-9]{1,5})?"
)


class RegistryConfig(BaseModel):
    """How to reach and authenticate to one registry host."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username_env: EnvName | None = None
    password_env: EnvName | None = None
    token_env: EnvName | None = None
    ca_bundle: Path | None = None
    plain_http: bool = False

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> RegistryConfig:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env go together: set both or neither")
        if self.token_env is not None and self.username_env is not None:
            raise ValueError("token_env excludes username_env/password_env: set one way to authenticate")
        return self


def normalise_host(host: str) -> str:
    """``index.docker.io`` is ``docker.io``, as in references."""
    return DEFAULT_DOMAIN if host == LEGACY_DEFAULT_DOMAIN else host


class ImagesConfig(BaseModel):
    """The ``[images]`` section: policy, cache and registries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: list[Pattern] = Field(default_factory=list, max_length=256)
    block: list[Pattern] = Field(default_factory=list, max_length=256)
    require_digest: bool = False
    cache_ttl: float = Field(default=300.0, ge=0, le=3600, allow_inf_nan=False)
    timeout: float = Field(default=10.0, gt=0, le=120, allow_inf_nan=False)
    registries: dict[str, RegistryConfig] = Field(default_factory=dict, max_length=64)

    @field_validator("registries")
    @classmethod
    def _hosts(cls, value: dict[str, RegistryConfig]) -> dict[str, RegistryConfig]:
        normalised: dict[str, RegistryConfig] = {}
        for host, registry in value.items():
            if not _HOST.fullmatch(host):
                raise ValueError(
                    f"{host!r} is not a registry host (HOST or HOST:PORT, as in an image reference)"
                )
            key = normalise_host(host)
            if key in normalised:
                raise ValueError(f"{host!r} names the same registry as another entry")
            normalised[key] = registry
        return normalised

    def registry(self, host: str) -> RegistryConfig:
        return self.registries.get(normalise_host(host)) or RegistryConfig()
