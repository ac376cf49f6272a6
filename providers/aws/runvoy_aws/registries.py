"""Private registries on Fargate (issue 20, decision 0811).

- **ECR** (this account or another): ECS pulls with the task execution role, so a task definition needs
  nothing more; another account's repository must allow the role in its repository policy. The image check
  logs in with ``ecr:GetAuthorizationToken`` (``registry_login``).
- **Any other registry** (Docker Hub, GHCR, Quay, a registry of one's own): ``[providers.aws]
  registry_credentials`` maps the registry host to a Secrets Manager secret holding
  ``{"username": "...", "password": "..."}``; its ARN goes into the container's
  ``repositoryCredentials.credentialsParameter`` and ECS reads it at pull time with the execution role. No
  secret value passes through runvoy for the task.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from datetime import datetime
from typing import Any

from runvoy_aws.clients import AwsClients, aws_call, bexc, error_code
from runvoy_core.errors import UsageError
from runvoy_core.logging import get_logger

log = get_logger("runvoy.aws.registries")

ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
"""A private ECR registry: ``<account>.dkr.ecr.<region>.amazonaws.com`` (``.cn`` in China, ``-fips``)."""
TOKEN_MARGIN = 60.0
"""Seconds before its expiry an ECR token is asked for again (a check must not start with a dying token)."""


class RepositoryCredentials:
    """Resolves a configured secret name to the ARN ``repositoryCredentials`` needs (one DescribeSecret per
    name and process; the value is never read)."""

    def __init__(self, secretsmanager: Any) -> None:
        self._sm = secretsmanager
        self._arns: dict[str, str] = {}

    def arn(self, host: str, secret: str) -> str:
        if secret.startswith("arn:"):
            return secret
        cached = self._arns.get(secret)
        if cached is not None:
            return cached
        with aws_call(f"look up the secret {secret!r} for registry {host}"):
            try:
                arn = str(self._sm.describe_secret(SecretId=secret)["ARN"])
            except bexc.ClientError as exc:
                if error_code(exc) not in ("ResourceNotFoundException", "ValidationException"):
                    raise
                raise UsageError(
                    f"the credentials for registry {host} are configured as the Secrets Manager secret "
                    f"{secret!r}, which does not exist in this region",
                    hint="create it: aws secretsmanager create-secret --name "
                    f'{secret} --secret-string \'{{"username":"...","password":"..."}}\' '
                    "(or fix providers.aws.registry_credentials)",
                ) from None
        self._arns[secret] = arn
        return arn


class EcrLogin:
    """``registry_login`` for ECR hosts: ``GetAuthorizationToken`` for the host's account (``registryIds``,
    so another account's registry works when its policy allows us), kept until shortly before it expires
    (12 hours on AWS). The token is never logged nor put in an error."""

    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients
        self._ecr: dict[str, Any] = {}
        self._tokens: dict[str, tuple[str, str, float]] = {}
        self._lock = threading.Lock()

    def _client(self, region: str) -> Any:
        with self._lock:
            client = self._ecr.get(region)
            if client is None:
                if region == self._clients.region:
                    client = self._clients.client("ecr")
                else:
                    # an ECR registry of another region: a client there, from the same session and settings
                    base = self._clients.client("ecr")
                    client = self._clients.session.client(
                        "ecr",
                        region_name=region,
                        endpoint_url=self._clients.config.endpoint_url,
                        config=base.meta.config,
                    )
                self._ecr[region] = client
            return client

    def login(self, registry: str, now: float | None = None) -> tuple[str, str] | None:
        found = ECR_HOST.match(registry)
        if found is None:
            return None
        account, region = found.group(1), found.group(2)
        clock = time.time() if now is None else now
        cached = self._tokens.get(registry)
        if cached is not None and cached[2] - TOKEN_MARGIN > clock:
            return cached[0], cached[1]
        with aws_call(f"log in to ECR registry {registry} (ecr:GetAuthorizationToken)"):
            answer = self._client(region).get_authorization_token(registryIds=[account])
        data = (answer.get("authorizationData") or [{}])[0]
        encoded = data.get("authorizationToken")
        if not encoded:
            return None
        username, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        expires = data.get("expiresAt")
        until = expires.timestamp() if isinstance(expires, datetime) else 0.0
        self._tokens[registry] = (username, password, until)
        log.debug("aws.ecr_login", registry=registry, expires_in=round(until - clock))
        return username, password
