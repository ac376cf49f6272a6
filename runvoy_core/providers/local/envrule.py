"""The env rule: which of the caller's environment variables a local run gets (decision 0209).

A run gets the base set below, the names ``pass_env`` matches, its ``--env`` values, the secrets it asked
for and runvoy's RUNVOY_* variables; nothing else of the caller's. The caller's RUNVOY_* variables and
(with a ``secret_env_prefix``) its secret variables never pass this way: a secret reaches only the runs
that ask for it, and RUNVOY_* in a run is only what runvoy gives it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

BASE_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "TMPDIR",
        "XDG_RUNTIME_DIR",  # rootless podman finds its runtime directory there
    }
)
BASE_GLOBS = ("LC_*",)
RESERVED_PREFIX = "RUNVOY_"


def is_reserved(name: str) -> bool:
    return name.upper().startswith(RESERVED_PREFIX)


def passed_names(environ: Mapping[str, str], pass_env: Iterable[str], secret_env_prefix: str) -> list[str]:
    """The names of ``environ`` a run gets from its caller, sorted."""
    globs = (*BASE_GLOBS, *pass_env)
    return sorted(
        name
        for name in environ
        if not is_reserved(name)
        and not (secret_env_prefix and name.startswith(secret_env_prefix))
        and (name in BASE_NAMES or any(fnmatchcase(name, glob) for glob in globs))
    )
