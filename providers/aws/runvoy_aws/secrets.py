"""``--secret NAME``: find the secret's ARN in SSM Parameter Store or Secrets Manager.

Only ARNs leave this module: ECS itself fetches the value at task start (the task definition's
``secrets[].valueFrom``), so no secret value passes through runvoy, a record, a log or an override.

NAME forms: an SSM or Secrets Manager ARN, an SSM parameter name (``/prod/db-password``), or a Secrets
Manager secret name. The environment variable follows the core's rule (``runvoy_core.secrets``) applied to the
secret's own name, its last path segment without Secrets Manager's random suffix (``/prod/db-password`` ->
``DB_PASSWORD``).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from runvoy_aws.clients import aws_call, bexc, error_code
from runvoy_core.errors import UsageError
from runvoy_core.secrets import secret_env_name

_SM_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")  # Secrets Manager appends 6 random characters to ARNs


class SecretRef(NamedTuple):
    env_name: str
    value_from: str


def env_name_for(name: str) -> str:
    """The variable of a secret named by an SSM path or a Secrets Manager name (no ARN prefix left)."""
    return secret_env_name(re.split(r"[/:]", name.rstrip("/"))[-1] or name)


class SecretResolver:
    def __init__(self, ssm: Any, secretsmanager: Any) -> None:
        self._ssm = ssm
        self._sm = secretsmanager
        self._cache: dict[str, SecretRef] = {}

    def resolve(self, names: list[str]) -> list[SecretRef]:
        refs = [self._resolve_one(name) for name in names]
        seen: dict[str, str] = {}
        for ref, name in zip(refs, names, strict=True):
            if ref.env_name in seen:
                raise UsageError(
                    f"secrets {seen[ref.env_name]!r} and {name!r} both become ${ref.env_name}",
                    hint="rename one of them so that their last path segments differ",
                )
            seen[ref.env_name] = name
        return refs

    def _resolve_one(self, name: str) -> SecretRef:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        if name.startswith("arn:") and ":ssm:" in name:
            ref = SecretRef(env_name_for(name.split(":parameter", 1)[-1]), name)
        elif name.startswith("arn:") and ":secretsmanager:" in name:
            secret_name = name.split(":secret:", 1)[-1]
            ref = SecretRef(env_name_for(_SM_SUFFIX.sub("", secret_name)), name)
        else:
            arn = self._ssm_arn(name) or self._secretsmanager_arn(name)
            if arn is None:
                raise UsageError(
                    f"secret {name!r} was found neither in SSM Parameter Store nor in Secrets Manager",
                    hint="create it (aws ssm put-parameter --type SecureString --name NAME ...) in the run's "
                    "region, or pass its full ARN",
                )
            ref = SecretRef(env_name_for(name), arn)
        self._cache[name] = ref
        return ref

    def _ssm_arn(self, name: str) -> str | None:
        # DescribeParameters returns metadata only: the value (even encrypted) is never fetched
        with aws_call(f"look up SSM parameter {name!r}"):
            try:
                page = self._ssm.describe_parameters(
                    ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
                )
            except bexc.ClientError as exc:
                if error_code(exc) in ("ValidationException", "InvalidFilterValue"):
                    return None
                raise
        for meta in page.get("Parameters", []):
            if meta.get("ARN"):
                return str(meta["ARN"])
            if meta.get("Name"):
                return self._parameter_arn(str(meta["Name"]))
        return None

    def _parameter_arn(self, name: str) -> str:
        # older endpoints omit ARN in DescribeParameters: GetParameter without decryption has it
        with aws_call(f"look up SSM parameter {name!r}"):
            found = self._ssm.get_parameter(Name=name, WithDecryption=False)
        return str(found["Parameter"]["ARN"])

    def _secretsmanager_arn(self, name: str) -> str | None:
        with aws_call(f"look up secret {name!r}"):
            try:
                return str(self._sm.describe_secret(SecretId=name)["ARN"])
            except bexc.ClientError as exc:
                if error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                    return None
                raise


def read_values(ssm: Any, secretsmanager: Any, refs: list[SecretRef]) -> list[str]:
    """The values behind ``refs``, read again only to mask them in the output runvoy shows (decision 1901):
    ECS fetched them for the task, runvoy never held them. Needs ``ssm:GetParameter`` (with the key's
    ``kms:Decrypt``) or ``secretsmanager:GetSecretValue``; the values stay in memory only."""
    values: list[str] = []
    for ref in refs:
        arn = ref.value_from
        if ":secretsmanager:" in arn:
            with aws_call("read a secret's value to mask it in the output"):
                found = secretsmanager.get_secret_value(SecretId=arn)
            if found.get("SecretString") is not None:
                values.append(str(found["SecretString"]))
            elif found.get("SecretBinary") is not None:
                values.append(bytes(found["SecretBinary"]).decode("utf-8", errors="replace"))
            continue
        path = arn.split(":parameter", 1)[-1]
        # AWS reads a parameter by its ARN; emulators and old endpoints by its name (with or without "/")
        names = list(dict.fromkeys((arn, path, path.lstrip("/"))))
        with aws_call("read a secret's value to mask it in the output"):
            for name in names:
                try:
                    found = ssm.get_parameter(Name=name, WithDecryption=True)
                except bexc.ClientError as exc:
                    if name == names[-1] or error_code(exc) not in (
                        "ParameterNotFound",
                        "ValidationException",
                    ):
                        raise
                    continue
                values.append(str(found["Parameter"]["Value"]))
                break
    return values
