"""The read quotas runvoy keeps to on GCP, as data (runvoy_core.ratelimit; listed in the README).

Imports no Google library: the config validates ``rate_limits`` against these names."""

from __future__ import annotations

from runvoy_core.ratelimit import Quota

PROVIDER = "gcp"
LOGGING_READS = "logging.entries.list"

QUOTAS: tuple[Quota, ...] = (
    # 48 a minute after a burst of 10: never more than 60 in any minute, however many watchers run
    Quota(LOGGING_READS, per_second=0.8, burst=10, published="60 per minute per project", scope="project"),
)
