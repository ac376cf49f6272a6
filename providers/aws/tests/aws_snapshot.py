"""A snapshot of everything runvoy can change on AWS, read through boto3 against moto: the cluster's tasks
(status and tags), the executions and locks tables' raw items, the archive bucket's objects, plus the store
and lock register through runvoy's ports. Equal snapshots: nothing was changed."""

from __future__ import annotations

from typing import Any

from runvoy_core.testing.snapshot import store_snapshot


def cloud_snapshot(provider: Any) -> dict[str, Any]:
    config, clients = provider.config, provider.clients
    ecs, dynamodb = clients.client("ecs"), clients.client("dynamodb")
    tasks: dict[str, Any] = {}
    for desired in ("RUNNING", "STOPPED"):
        arns = ecs.list_tasks(cluster=config.cluster, desiredStatus=desired).get("taskArns", [])
        for task in (
            ecs.describe_tasks(cluster=config.cluster, tasks=arns, include=["TAGS"])["tasks"] if arns else []
        ):
            tasks[task["taskArn"]] = {
                "last": task.get("lastStatus"),
                "desired": task.get("desiredStatus"),
                "stopped_reason": task.get("stoppedReason"),
                "tags": sorted((t["key"], t["value"]) for t in task.get("tags") or []),
            }
    tables = {
        name: sorted(
            repr(sorted(item.items())) for item in dynamodb.scan(TableName=name, ConsistentRead=True)["Items"]
        )
        for name in (config.executions_table, config.locks_table)
    }
    objects: list[tuple[str, str]] = []
    if config.bucket:
        listed = clients.client("s3").list_objects_v2(Bucket=config.bucket).get("Contents", [])
        objects = sorted((o["Key"], o["ETag"]) for o in listed)
    return {
        "tasks": tasks,
        "tables": tables,
        "objects": objects,
        "ports": store_snapshot(provider.store, provider.locks),
    }
