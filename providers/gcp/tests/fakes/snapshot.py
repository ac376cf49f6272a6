"""A snapshot of everything runvoy can change on GCP, read through the Google clients against the fakes:
the region's Cloud Run jobs and executions (state and labels), the bucket's objects (name and generation),
plus the store and lock register through runvoy's ports. Equal snapshots: nothing was changed."""

from __future__ import annotations

from typing import Any

from runvoy_core.testing.snapshot import store_snapshot


def cloud_snapshot(provider: Any) -> dict[str, Any]:
    clients = provider.clients
    location = provider.compute.location(None)
    jobs = {job.name: dict(job.labels) for job in clients.jobs.list_jobs(parent=location)}
    executions = {
        e.name: {
            "labels": dict(e.labels),
            "completed": e.completion_time.isoformat() if e.completion_time else None,
            "running": e.running_count,
            "succeeded": e.succeeded_count,
            "failed": e.failed_count,
            "cancelled": e.cancelled_count,
        }
        for e in clients.executions.list_executions(parent=f"{location}/jobs/-")
    }
    objects = sorted((blob.name, blob.generation) for blob in clients.storage.list_blobs(clients.bucket_name))
    return {
        "jobs": jobs,
        "executions": executions,
        "objects": objects,
        "ports": store_snapshot(provider.store, provider.locks),
    }
