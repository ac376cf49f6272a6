"""The ``[providers.aws]`` configuration section. Imports no AWS SDK (only pydantic)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runvoy_core.images.config import registry_host

DEFAULT_IMAGE = "public.ecr.aws/docker/library/python:3.12-slim"
"""The Docker Official ``python`` image mirrored on ECR Public: pulls without Docker Hub rate limits and has
``/bin/sh``, which runs the shell command. Override per run with ``--image`` or here with ``image``."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_SECRET = re.compile(
    r"^(?:arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}$"
)
REGISTRY_CREDENTIALS_MAX = 64


class AwsConfig(BaseModel):
    """Everything has a default: with credentials from the usual AWS chain (environment, profile, SSO,
    instance role) and ``runvoy setup --provider aws`` run once, ``runvoy --provider aws run ...`` works."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    region: str | None = Field(
        default=None, description="AWS region; else settings.region, else the AWS chain"
    )
    profile: str | None = Field(default=None, description="a named profile from ~/.aws/config")
    endpoint_url: str | None = Field(
        default=None, description="one endpoint for every service (moto, LocalStack); None = real AWS"
    )
    cluster: str = "runvoy"
    subnets: list[str] = Field(
        default_factory=list, description="awsvpc subnets; empty = the default VPC's default subnets"
    )
    security_groups: list[str] = Field(
        default_factory=list, description="empty = the default security group of the subnets' VPC"
    )
    assign_public_ip: bool = Field(
        default=True, description="needed to pull public images from subnets without a NAT gateway"
    )
    execution_role_arn: str | None = Field(
        default=None,
        description="role ECS uses to pull the image, write logs and read secrets; "
        "None = the role named execution_role_name in this account",
    )
    execution_role_name: str = "runvoy-task-execution"
    task_role_arn: str | None = Field(default=None, description="role the command itself runs as (optional)")
    log_group: str = "/runvoy/tasks"
    log_stream_prefix: str = "runvoy"
    log_retention_days: int = 30
    executions_table: str = "runvoy-executions"
    locks_table: str = "runvoy-locks"
    bucket: str | None = Field(
        default=None, description="S3 bucket for log archives and large records; None = no archive"
    )
    stop_timeout: int | None = Field(
        default=None,
        ge=2,
        le=120,
        description="seconds between SIGTERM and SIGKILL on StopTask (Fargate max 120); "
        "None = the run's --stop-grace, clamped to 2..120",
    )
    container_name: str = "main"
    image: str = DEFAULT_IMAGE
    tags: dict[str, str] = Field(default_factory=dict, description="added to every task and resource")
    max_attempts: int = Field(
        default=8,
        ge=1,
        le=20,
        description="botocore adaptive mode: total attempts per call (first + retries)",
    )
    rate_limits: dict[str, float] = Field(
        default_factory=dict,
        description="requests per second runvoy allows itself per API (ecs.DescribeTasks, ecs.ListTasks, "
        "logs.GetLogEvents), instead of its share of the published quota (after a quota increase)",
    )
    connect_timeout: float = Field(default=5.0, gt=0, le=600, description="seconds")
    read_timeout: float = Field(default=30.0, gt=0, le=600, description="seconds")
    platform_version: str = "LATEST"
    registry_credentials: dict[str, str] = Field(
        default_factory=dict,
        description="registry host -> Secrets Manager secret (name or ARN) holding "
        '{"username": ..., "password": ...}: the task pulls images of that registry with it '
        "(repositoryCredentials); not for ECR, which the execution role pulls from",
    )
    poll_interval_min: float = Field(
        default=1.0, gt=0, le=60, description="first DescribeTasks poll interval in seconds (then backs off)"
    )

    @field_validator("cluster", "executions_table", "locks_table", "container_name", "execution_role_name")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} must be letters, digits, _ . - (starting with a letter or digit)")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, value: dict[str, float]) -> dict[str, float]:
        from runvoy_aws.quotas import QUOTAS
        from runvoy_core.ratelimit import check_rate_limits

        return check_rate_limits(value, QUOTAS)

    @field_validator("registry_credentials")
    @classmethod
    def _registry_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > REGISTRY_CREDENTIALS_MAX:
            raise ValueError(f"at most {REGISTRY_CREDENTIALS_MAX} registries")
        normalised: dict[str, str] = {}
        for host, secret in value.items():
            key = registry_host(host)
            if ".dkr.ecr." in host:
                raise ValueError(
                    f"{host!r} is an ECR registry: ECS pulls from it with the task execution role, "
                    "no secret is needed (docs/clouds/aws.md#private-registries)"
                )
            if not _SECRET.match(secret):
                raise ValueError(
                    f"registry {host!r}: {secret[:80]!r} is not a Secrets Manager secret name (1-512 of "
                    "letters, digits and /_+=.@-) or ARN"
                )
            if key in normalised:
                raise ValueError(f"{host!r} names the same registry as another entry")
            normalised[key] = secret
        return normalised

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        allowed = (
            1,
            3,
            5,
            7,
            14,
            30,
            60,
            90,
            120,
            150,
            180,
            365,
            400,
            545,
            731,
            1096,
            1827,
            2192,
            2557,
            2922,
        )
        if value not in allowed:
            raise ValueError(f"CloudWatch accepts only {', '.join(map(str, allowed))} days")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        for key in tags:
            if key.lower().startswith(("aws:", "runvoy:")):
                raise ValueError(f"tag {key!r}: the aws: and runvoy: prefixes are reserved")
        return tags
