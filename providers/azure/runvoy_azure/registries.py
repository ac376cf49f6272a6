"""Private registries on ACI (issue 20, decision 0813): ``imageRegistryCredentials`` on the container group.

``[providers.azure.registry_credentials."HOST"]`` gives either a username and the name of the secret that holds
the password (read from Key Vault, or from ``secret_values`` without a vault, at each start: the value goes
into the create request only, which ARM never returns), or, for ACR, a user-assigned managed identity with
``AcrPull`` on the registry: the group is given that identity and the credential names it, so no secret
exists at all.
"""

from __future__ import annotations

from typing import Any

from runvoy_azure.config import AzureConfig, RegistryLogin
from runvoy_azure.secrets import SecretResolver
from runvoy_core.images.reference import registry_of


def login_for(image: str, config: AzureConfig) -> tuple[str, RegistryLogin] | None:
    host = registry_of(image)
    return config.registry_login(host) if host is not None else None


def group_credentials(image: str, config: AzureConfig, secrets: SecretResolver) -> tuple[list[Any], Any]:
    """``(image_registry_credentials, identity)`` for the container group that runs ``image``: empty and
    None for a registry without configured credentials."""
    from azure.mgmt.containerinstance import models as m

    found = login_for(image, config)
    if found is None:
        return [], None
    server, login = found
    if login.identity is not None:
        identity = m.ContainerGroupIdentity(
            type="UserAssigned", user_assigned_identities={login.identity: m.UserAssignedIdentities()}
        )
        return [m.ImageRegistryCredential(server=server, identity=login.identity)], identity
    assert login.username is not None and login.password_secret is not None
    password = secrets.value(login.password_secret)
    return [m.ImageRegistryCredential(server=server, username=login.username, password=password)], None


def registry_login(registry: str, config: AzureConfig, secrets: SecretResolver) -> tuple[str, str] | None:
    """``RegistryLogin`` for an ACR host with a configured username and password secret. An ACR reached
    through a managed identity has no secret runvoy could send: None (the check then uses
    ``[images.registries]`` or anonymous access; decision 0813)."""
    if not registry.lower().endswith(".azurecr.io"):
        return None
    found = config.registry_login(registry)
    if found is None or found[1].username is None or found[1].password_secret is None:
        return None
    return found[1].username, secrets.value(found[1].password_secret)
