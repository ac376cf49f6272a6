"""``runvoy setup --provider azure``: check the resource group, create the tables and the blob container."""

from __future__ import annotations

from typing import Any

from runvoy_azure.clients import AzureClients, azure_call, error_message, status_of
from runvoy_azure.config import AzureConfig
from runvoy_core.errors import ProviderError

RESOURCE_GROUP_API = "2021-04-01"


class AzureSetup:
    def __init__(self, clients: AzureClients, config: AzureConfig) -> None:
        self._clients = clients
        self._config = config

    def run(self, dry_run: bool) -> list[dict[str, Any]]:
        steps = [self._resource_group(dry_run)]
        steps += [
            self._table(name, dry_run) for name in (self._config.executions_table, self._config.locks_table)
        ]
        steps.append(self._container(dry_run))
        steps += self._records(dry_run)
        return steps

    def _records(self, dry_run: bool) -> list[dict[str, Any]]:
        """Records of an older version get the status and label copies `list` reads (decision 0704)."""
        from runvoy_azure.store import TableStore

        if dry_run and not self._table_exists(self._config.executions_table):
            return []
        older = TableStore(self._clients, self._config.executions_table).upgrade_layout(dry_run)
        if not older:
            return []
        action = "would index" if dry_run else "indexed"
        return [
            {
                "resource": f"records in table {self._config.executions_table}",
                "action": action,
                "detail": f"{older} records written by an older version: status and label listings",
            }
        ]

    def _resource_group(self, dry_run: bool) -> dict[str, Any]:
        from azure.core.rest import HttpRequest

        rg = self._config.resource_group
        url = (
            f"{self._config.arm_base_url}/subscriptions/{self._clients.subscription_id}/resourcegroups/{rg}"
            f"?api-version={RESOURCE_GROUP_API}"
        )
        resource = f"resource group {rg}"
        with azure_call(f"check {resource}"):
            answer = self._clients.aci._send_request(HttpRequest("GET", url))
        if answer.status_code == 200:
            return {"resource": resource, "action": "exists", "detail": answer.json().get("location")}
        if answer.status_code != 404:
            raise ProviderError(f"checking {resource}: Azure answered {answer.status_code}")
        if dry_run:
            return {"resource": resource, "action": "would create", "detail": self._config.location}
        with azure_call(f"create {resource}"):
            created = self._clients.aci._send_request(
                HttpRequest("PUT", url, json={"location": self._config.location, "tags": {"runvoy": "1"}})
            )
        if created.status_code in (200, 201):
            return {"resource": resource, "action": "created", "detail": self._config.location}
        return {
            "resource": resource,
            "action": "manual",
            "detail": f"could not create it ({created.status_code}); run: az group create -n {rg} -l {self._config.location}",
        }

    def _table(self, name: str, dry_run: bool) -> dict[str, Any]:
        resource = f"table {name}"
        service = self._clients.tables
        if self._table_exists(name):
            return {"resource": resource, "action": "exists", "detail": ""}
        if dry_run:
            return {"resource": resource, "action": "would create", "detail": ""}
        with azure_call(f"create {resource}"):
            service.create_table_if_not_exists(name)
        return {"resource": resource, "action": "created", "detail": ""}

    def _table_exists(self, name: str) -> bool:
        with azure_call(f"check table {name}"):
            return any(True for _ in self._clients.tables.query_tables(f"TableName eq '{name}'"))

    def _container(self, dry_run: bool) -> dict[str, Any]:
        from azure.core.exceptions import ResourceExistsError

        name = self._config.logs_container
        resource = f"blob container {name}"
        client = self._clients.blobs.get_container_client(name)
        with azure_call(f"check {resource}"):
            exists = client.exists()
        if exists:
            return {"resource": resource, "action": "exists", "detail": "log archive and final states"}
        if dry_run:
            return {"resource": resource, "action": "would create", "detail": "log archive and final states"}
        with azure_call(f"create {resource}"):
            try:
                client.create_container()
            except ResourceExistsError:
                return {"resource": resource, "action": "exists", "detail": ""}
        return {"resource": resource, "action": "created", "detail": "log archive and final states"}


__all__ = ["AzureSetup", "error_message", "status_of"]
