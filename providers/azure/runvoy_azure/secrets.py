"""``--secret NAME``: a Key Vault secret (or a value from the config's ``secret_values``), passed to the
container as a ``secure_value`` environment variable: ACI never returns secure values on a GET, and the
value never reaches a record, a log line or an error message.

The environment variable follows the core's rule (``runvoy_core.secrets``) applied to the secret's own name,
the last segment of a Key Vault URL or ``vault/NAME`` form (``db-password`` -> ``DB_PASSWORD``).
"""

from __future__ import annotations

import re
from typing import Any

from runvoy_azure.clients import AzureClients, azure_call, is_not_found
from runvoy_core.errors import NotFound, UsageError
from runvoy_core.secrets import secret_env_name


def env_name_for(name: str) -> str:
    return secret_env_name(re.split(r"[/:]", name.rstrip("/"))[-1] or name)


class SecretResolver:
    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    def resolve(self, names: list[str]) -> dict[str, str]:
        """Environment variable name -> value."""
        values: dict[str, str] = {}
        origin: dict[str, str] = {}
        for name in names:
            env = env_name_for(name)
            if env in origin:
                raise UsageError(
                    f"secrets {origin[env]!r} and {name!r} both become ${env}",
                    hint="rename one of them so that their last segments differ",
                )
            origin[env] = name
            values[env] = self._value(name)
        return values

    def value(self, name: str) -> str:
        """One secret's value (``secret_values`` first, then Key Vault), for a registry password."""
        return self._value(name)

    def _value(self, name: str) -> str:
        configured = self._clients.config.secret_values.get(name)
        if configured is not None:
            return configured.get_secret_value()
        secret_name = name.rstrip("/").split("/")[-1]
        client: Any = self._clients.secrets
        try:
            with azure_call(f"read secret {secret_name!r} from Key Vault"):
                secret = client.get_secret(secret_name)
        except NotFound:
            raise NotFound(
                f"secret {secret_name!r} not found in {self._clients.config.key_vault_url}",
                hint="create it (az keyvault secret set) or fix the name",
            ) from None
        except Exception as exc:
            if is_not_found(exc):
                raise NotFound(f"secret {secret_name!r} not found") from None
            raise
        if secret.value is None:
            raise NotFound(f"secret {secret_name!r} has no value")
        return str(secret.value)
