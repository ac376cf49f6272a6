"""How a secret reaches the command: one rule for every provider, so a playbook's ``secrets:`` work anywhere.

A secret is named the way its store names it (an SSM path or ARN, a Secret Manager id with a version, a Key
Vault name, a variable of the caller's environment). The command sees it in the environment variable named
after the secret's **own name** — the last segment of its path, without ARN, version or random suffix parts,
which each provider extracts — upper-cased, with every character other than ``A-Z``, ``0-9`` and ``_``
turned into ``_``, and ``_`` put before a leading digit: ``/prod/db-password`` → ``DB_PASSWORD``,
``db-password:3`` → ``DB_PASSWORD``, ``2fa-seed`` → ``_2FA_SEED``. Two secrets of one run that end up with the
same variable are refused, and so is a variable in runvoy's reserved ``RUNVOY_`` namespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from runvoy_core.errors import UsageError

_NOT_ENV = re.compile(r"[^A-Z0-9_]")
RESERVED_PREFIX = "RUNVOY_"


def secret_env_name(own_name: str) -> str:
    """The environment variable the secret whose own name is ``own_name`` becomes (see the module doc)."""
    env = _NOT_ENV.sub("_", own_name.upper())
    if not env.strip("_"):
        raise UsageError(
            f"secret {own_name!r} has no letters or digits to name an environment variable after",
            hint="name the secret with letters, digits, - or _ (e.g. db-password becomes $DB_PASSWORD)",
        )
    if env[0].isdigit():
        env = f"_{env}"
    if env.startswith(RESERVED_PREFIX):
        raise UsageError(
            f"secret {own_name!r} would become ${env}, and RUNVOY_* variables are runvoy's own",
            hint="rename the secret; runvoy sets RUNVOY_EXECUTION_ID, RUNVOY_LOCK, RUNVOY_FENCE and others itself",
        )
    return env


def secret_env_names(secrets: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{variable: secret name}`` for ``(secret name, own name)`` pairs; refuses two secrets on one variable."""
    seen: dict[str, str] = {}
    for name, own in secrets:
        env = secret_env_name(own)
        if env in seen and seen[env] != name:
            raise UsageError(
                f"secrets {seen[env]!r} and {name!r} would both set ${env}",
                hint="pass only one of them, or rename one so that their own names differ",
            )
        seen[env] = name
    return seen
