"""A snapshot of everything runvoy can change on Azure, read through the real Azure clients: the resource
group's container groups (tags and states), the executions and locks tables' raw entities, the log blobs,
plus the store and lock register through runvoy's ports. Equal snapshots: nothing was changed."""

from __future__ import annotations

from typing import Any

from runvoy_core.testing.snapshot import store_snapshot


def cloud_snapshot(provider: Any) -> dict[str, Any]:
    config, clients = provider.config, provider.clients
    groups: dict[str, Any] = {}
    for item in clients.aci.container_groups.list_by_resource_group(config.resource_group):
        group = clients.aci.container_groups.get(config.resource_group, item.name)
        containers = [
            (
                c.name,
                c.instance_view.current_state.state
                if c.instance_view and c.instance_view.current_state
                else None,
            )
            for c in group.containers
        ]
        groups[item.name] = {
            "tags": dict(group.tags or {}),
            "provisioning": group.provisioning_state,
            "state": group.instance_view.state if group.instance_view else None,
            "containers": containers,
        }
    tables = {
        name: sorted(
            (
                (e["PartitionKey"], e["RowKey"], e.metadata.get("etag"), dict(e))
                for e in clients.tables.get_table_client(name).list_entities()
            ),
            key=lambda row: (row[0], row[1]),
        )
        for name in (config.executions_table, config.locks_table)
    }
    container = clients.blobs.get_container_client(config.logs_container)
    blobs = sorted((b.name, b.etag) for b in container.list_blobs()) if container.exists() else []
    return {
        "groups": groups,
        "tables": tables,
        "blobs": blobs,
        "ports": store_snapshot(provider.store, provider.locks),
    }
