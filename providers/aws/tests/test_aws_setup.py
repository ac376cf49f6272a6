"""runvoy setup --provider aws: dry run, create, then idempotent re-runs."""

from __future__ import annotations

from runvoy_aws.provider import create_provider


def actions(steps: list[dict]) -> dict[str, str]:
    return {
        step["resource"].split(" ")[0] + " " + step["resource"].split(" ")[-1]: step["action"]
        for step in steps
    }


def test_dry_run_then_create_then_nothing_to_do(aws_config) -> None:
    provider = create_provider(aws_config, None)
    try:
        dry = provider.setup(dry_run=True)
        by_resource = {s["resource"]: s["action"] for s in dry}
        assert by_resource["ECS cluster runvoy"] == "would create"
        assert by_resource["log group /runvoy/tasks"] == "would create"
        assert by_resource["DynamoDB table runvoy-executions"] == "would create"
        assert by_resource["DynamoDB table runvoy-locks"] == "would create"
        assert by_resource["S3 bucket runvoy-test-archive"] == "would create"
        assert by_resource["IAM role runvoy-task-execution"] == "would create"
        assert provider.clients.client("ecs").describe_clusters(clusters=["runvoy"])["clusters"] == []

        created = {s["resource"]: s["action"] for s in provider.setup(dry_run=False)}
        assert set(created.values()) == {"created", "exists"} and created["network"] == "exists"
        assert list(created.values()).count("created") == 6

        again = provider.setup(dry_run=False)
        assert {s["action"] for s in again} == {"exists"}, again

        cluster = provider.clients.client("ecs").describe_clusters(clusters=["runvoy"])["clusters"][0]
        assert set(cluster["capacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
        group = provider.clients.client("logs").describe_log_groups(logGroupNamePrefix="/runvoy/tasks")
        assert group["logGroups"][0]["retentionInDays"] == 30
        role = provider.clients.client("iam").get_role(RoleName="runvoy-task-execution")["Role"]
        assert "ecs-tasks.amazonaws.com" in str(role["AssumeRolePolicyDocument"])
    finally:
        provider.close()


def test_a_changed_retention_is_updated(aws_config) -> None:
    provider = create_provider(aws_config, None)
    provider.setup(dry_run=False)
    other = create_provider(aws_config.model_copy(update={"log_retention_days": 7}), None)
    steps = {s["resource"]: s for s in other.setup(dry_run=True)}
    assert steps["log group /runvoy/tasks"]["action"] == "would update"
    steps = {s["resource"]: s for s in other.setup(dry_run=False)}
    assert steps["log group /runvoy/tasks"]["action"] == "updated"
    provider.close()
    other.close()


def test_a_configured_role_that_does_not_exist_is_reported(aws_config) -> None:
    config = aws_config.model_copy(update={"execution_role_arn": "arn:aws:iam::123456789012:role/missing"})
    provider = create_provider(config, None)
    steps = {s["resource"]: s for s in provider.setup(dry_run=False)}
    step = steps["IAM role missing"]
    assert step["action"] == "manual" and "does not exist" in step["detail"]
    provider.close()
