"""The read quotas runvoy keeps to on AWS, as data (runvoy_core.ratelimit; listed in the README).

Imports no AWS library: the config validates ``rate_limits`` against these names. Both services count per
account and Region; a process shares one bucket per API and Region."""

from __future__ import annotations

from runvoy_core.ratelimit import Quota

PROVIDER = "aws"
DESCRIBE_TASKS = "ecs.DescribeTasks"
LIST_TASKS = "ecs.ListTasks"
GET_LOG_EVENTS = "logs.GetLogEvents"

QUOTAS: tuple[Quota, ...] = (
    # ECS's token buckets: DescribeTasks holds 100 tokens refilled at 20 a second; runvoy takes 80 %
    Quota(
        DESCRIBE_TASKS,
        per_second=16.0,
        burst=80,
        published="burst 100, 20 per second",
        scope="account and Region",
    ),
    Quota(
        LIST_TASKS,
        per_second=16.0,
        burst=80,
        published="burst 100, 20 per second",
        scope="account and Region",
    ),
    # 25 transactions per second: 20 a second after a burst of 5 never makes more than 25 in one second
    Quota(GET_LOG_EVENTS, per_second=20.0, burst=5, published="25 per second", scope="account and Region"),
)
