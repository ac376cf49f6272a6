"""Where ``DefaultAzureCredential`` would find credentials, for ``runvoy init`` (decision 2111).

azure-identity's chain, in its order, read as variables and files: EnvironmentCredential (AZURE_TENANT_ID,
AZURE_CLIENT_ID and a secret, a certificate or a user's password), WorkloadIdentityCredential
(AZURE_FEDERATED_TOKEN_FILE), ManagedIdentityCredential (IDENTITY_ENDPOINT / MSI_ENDPOINT), then the
Azure CLI's login (``az login``: its profile in AZURE_CONFIG_DIR or ~/.azure) and the Azure Developer CLI's.
No token is requested: that needs the network, and the instance metadata probe takes seconds off Azure.
The subscription comes from AZURE_SUBSCRIPTION_ID or the CLI's default subscription.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runvoy_core.ports.optional import CredentialReport

HOW_TO = (
    "run `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal)"
)


def cli_directory() -> Path:
    return Path(os.environ.get("AZURE_CONFIG_DIR") or "~/.azure").expanduser()


def _cli_profile(directory: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The subscriptions of the CLI's profile, and a problem reading it (None when fine or absent)."""
    path = directory / "azureProfile.json"
    try:
        # the CLI writes this file with a byte order mark
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return [], None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [], f"{path} cannot be read: {exc}"
    subscriptions = data.get("subscriptions") if isinstance(data, dict) else None
    return [s for s in subscriptions or [] if isinstance(s, dict)], None


class AzureCredentialCheck:
    region_setting = "location"

    def check(self, section: dict[str, Any]) -> CredentialReport:
        env = os.environ
        found: list[str] = []
        missing: list[str] = []
        if section.get("credential") == "fake":
            found.append("credential = fake (a custom arm_endpoint: tests and emulators only)")
        tenant_client = bool(env.get("AZURE_TENANT_ID") and env.get("AZURE_CLIENT_ID"))
        if tenant_client and env.get("AZURE_CLIENT_SECRET"):
            found.append("environment variables AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET")
        elif tenant_client and env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
            found.append(
                "environment variables AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PATH"
            )
        elif tenant_client and env.get("AZURE_USERNAME") and env.get("AZURE_PASSWORD"):
            found.append(
                "environment variables AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_USERNAME, AZURE_PASSWORD"
            )
        elif any(env.get(n) for n in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH")):
            missing.append(
                "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH is set but AZURE_TENANT_ID and "
                "AZURE_CLIENT_ID are not both set; set them (the service principal's tenant and app id)"
            )
        if tenant_client and env.get("AZURE_FEDERATED_TOKEN_FILE"):
            found.append(
                f"workload identity (AZURE_FEDERATED_TOKEN_FILE {env['AZURE_FEDERATED_TOKEN_FILE']})"
            )
        if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
            found.append("the managed identity of this Azure host (IDENTITY_ENDPOINT)")
        directory = cli_directory()
        subscriptions, problem = _cli_profile(directory)
        if problem:
            missing.append(f"{problem}; run `az login` again")
        if subscriptions:
            found.append(f"the Azure CLI's login ({directory / 'azureProfile.json'})")
        if (Path("~/.azd").expanduser() / "auth").is_dir():
            found.append("the Azure Developer CLI's login (~/.azd)")
        if not found and not missing:
            missing.append(
                "no Azure credentials: no AZURE_* service principal variables, no workload or managed "
                f"identity, no Azure CLI login in {directory}; {HOW_TO}"
            )
        settings: dict[str, str] = {}
        subscription = env.get("AZURE_SUBSCRIPTION_ID") or next(
            (str(s.get("id")) for s in subscriptions if s.get("isDefault") and s.get("id")), None
        )
        if not section.get("subscription_id"):
            if subscription:
                settings["subscription_id"] = subscription
            elif found:
                missing.append(
                    "no subscription: set AZURE_SUBSCRIPTION_ID, `az account set --subscription ID`, or pass "
                    "--set subscription_id=ID"
                )
        return CredentialReport(found=tuple(found), missing=tuple(missing), settings=settings)


CHECK = AzureCredentialCheck()
