"""--secret: SSM SecureString and Secrets Manager references go into the task definition, never a value."""

from __future__ import annotations

import hashlib

import pytest
from aws_test_tools import wait_ended

from runvoy_core.errors import UsageError
from runvoy_core.ports import TaskSpec

VALUE = "s3cr3t-value-for-tests"
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest()


def run_with(provider, execution_id: str, secrets: list[str], command: str):
    spec = TaskSpec(execution_id=execution_id, argv=["/bin/sh", "-c", command], secrets=secrets)
    ref = provider.compute.start(spec, execution_id)
    return ref, wait_ended(provider, ref)


def test_an_ssm_secure_string_reaches_the_container_through_value_from(provider, sim) -> None:
    ssm = provider.clients.client("ssm")
    ssm.put_parameter(Name="/prod/db-password", Value=VALUE, Type="SecureString")
    # the command proves it saw the value without printing it
    ref, state = run_with(
        provider, "aaaa00000001", ["/prod/db-password"], 'printf %s "$DB_PASSWORD" | sha256sum | cut -c1-64'
    )
    assert state.exit_code == 0
    assert [e.message for e in provider.logs.read(ref).events] == [DIGEST]
    ecs = provider.clients.client("ecs")
    task = ecs.describe_tasks(cluster="runvoy", tasks=[ref])["tasks"][0]
    taskdef = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["secrets"] == [
        {"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db-password"}
    ]
    assert VALUE not in str(task) and VALUE not in str(taskdef)


def test_a_secrets_manager_secret_by_name(provider, sim) -> None:
    sm = provider.clients.client("secretsmanager")
    arn = sm.create_secret(Name="api-token", SecretString=VALUE)["ARN"]
    ref, state = run_with(
        provider, "aaaa00000002", ["api-token"], 'printf %s "$API_TOKEN" | sha256sum | cut -c1-64'
    )
    assert state.exit_code == 0
    assert [e.message for e in provider.logs.read(ref).events] == [DIGEST]
    ecs = provider.clients.client("ecs")
    task = ecs.describe_tasks(cluster="runvoy", tasks=[ref])["tasks"][0]
    taskdef = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["secrets"] == [{"name": "API_TOKEN", "valueFrom": arn}]


def test_secrets_are_part_of_the_task_definition_hash(provider, sim) -> None:
    ssm = provider.clients.client("ssm")
    ssm.put_parameter(Name="one", Value="1", Type="SecureString")
    ssm.put_parameter(Name="two", Value="2", Type="SecureString")
    ecs = provider.clients.client("ecs")
    arns = []
    for i, names in enumerate((["one"], ["two"], ["one"])):
        ref, _ = run_with(provider, f"bbbb0000000{i}", names, "true")
        arns.append(ecs.describe_tasks(cluster="runvoy", tasks=[ref])["tasks"][0]["taskDefinitionArn"])
    assert arns[0] == arns[2] != arns[1]


def test_an_unknown_secret_is_a_usage_error_before_any_task(provider, sim) -> None:
    with pytest.raises(UsageError, match="neither in SSM Parameter Store nor in Secrets Manager"):
        run_with(provider, "cccc00000001", ["/nope/missing"], "true")
    assert sim.launched == []


def test_two_secrets_with_one_variable_name_are_refused(provider) -> None:
    with pytest.raises(UsageError, match="both become"):
        provider.compute._secret_resolver().resolve(
            [
                "arn:aws:ssm:us-east-1:123456789012:parameter/a/token",
                "arn:aws:ssm:us-east-1:123456789012:parameter/b/token",
            ]
        )
