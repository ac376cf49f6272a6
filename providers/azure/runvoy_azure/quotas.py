"""The read quotas runvoy keeps to on Azure, as data (runvoy_core.ratelimit; listed in the README).

Imports no Azure library: the config validates ``rate_limits`` against these names."""

from __future__ import annotations

from runvoy_core.ratelimit import Quota

PROVIDER = "azure"
ARM_READS = "arm.reads"
"""Every Resource Manager read: container group GETs and lists, and ACI's list_logs."""

QUOTAS: tuple[Quota, ...] = (
    # 3 a second after a burst of 250 stays under both of ARM's published models: 12,000 reads an hour,
    # and (since 2024) a bucket of 250 refilled at 25 a second
    Quota(
        ARM_READS,
        per_second=3.0,
        burst=250,
        published="12,000 per hour (bucket of 250, 25 a second since 2024)",
        scope="subscription and principal",
    ),
)
