"""Secret names → Cloud Run env entries that reference Secret Manager (``valueSource.secretKeyRef``).

A secret name given to runvoy is ``SECRET`` or ``SECRET:VERSION`` (a Secret Manager secret id in the provider's
project, or a full ``projects/P/secrets/S`` name); the variable the command sees follows the core's rule
(``runvoy_core.secrets``) applied to the secret id (``db-password`` → ``DB_PASSWORD``). The value is read by Cloud
Run when the task starts: runvoy never sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runvoy_core.errors import ValidationFailed
from runvoy_core.secrets import secret_env_name

_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION = re.compile(r"^(latest|[1-9][0-9]*)$")


@dataclass(frozen=True, order=True)
class SecretRef:
    env_name: str
    secret: str  # a secret id, or projects/P/secrets/S
    version: str

    @property
    def secret_id(self) -> str:
        return self.secret.rsplit("/", 1)[-1]

    def resource_name(self, project: str) -> str:
        return (
            self.secret
            if self.secret.startswith("projects/")
            else f"projects/{project}/secrets/{self.secret}"
        )


def parse_secret(name: str) -> SecretRef:
    secret, _, version = name.partition(":") if not name.startswith("projects/") else _split_full(name)
    version = version or "latest"
    secret_id = secret.rsplit("/", 1)[-1]
    if secret.startswith("projects/") and not re.match(r"^projects/[^/]+/secrets/[A-Za-z0-9_-]+$", secret):
        raise ValidationFailed(f"secret {name!r}: expected projects/PROJECT/secrets/SECRET[:VERSION]")
    short_ok = secret.startswith("projects/") or _SECRET_ID.match(secret)
    if not short_ok or not _SECRET_ID.match(secret_id) or not _VERSION.match(version):
        raise ValidationFailed(
            f"secret {name!r}: expected a Secret Manager secret id (letters, digits, _ and -), "
            "optionally followed by :VERSION (a number or 'latest')",
            hint="for example --secret db-password or --secret db-password:3",
        )
    return SecretRef(secret_env_name(secret_id), secret, version)


def _split_full(name: str) -> tuple[str, str, str]:
    head, sep, version = name.rpartition(":")
    if sep and "/" not in version:
        return head, sep, version
    return name, "", ""


def parse_secrets(names: list[str]) -> list[SecretRef]:
    refs = sorted({parse_secret(n) for n in names})
    seen: dict[str, str] = {}
    for ref in refs:
        if ref.env_name in seen and seen[ref.env_name] != ref.secret:
            raise ValidationFailed(
                f"secrets {seen[ref.env_name]!r} and {ref.secret!r} would both set ${ref.env_name}"
            )
        seen[ref.env_name] = ref.secret
    return refs
