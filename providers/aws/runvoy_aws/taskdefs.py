"""One ECS task definition per distinct content, named by the content's hash, and reused.

RunTask overrides cannot change the image, the architecture, secrets, roles or the log configuration, so
those go into a task definition. Registering a revision per run hits ECS rate limits ("Too many concurrent
attempts"), so the family name is ``runvoy-<hash>`` and a second run with the same content finds it with
one DescribeTaskDefinition (or none at all: the result is cached in-process).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict

from runvoy_aws.clients import aws_call, bexc, error_code

FAMILY_PREFIX = "runvoy-"
HASH_TAG = "runvoy:taskdef-hash"
# the task definition's own size; every run overrides cpu and memory
BASE_CPU = "256"
BASE_MEMORY = "512"


class TaskDefContent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str
    architecture: str  # X86_64 | ARM64
    container_name: str
    secrets: tuple[tuple[str, str], ...] = ()  # (env name, valueFrom ARN), sorted
    execution_role_arn: str | None = None
    task_role_arn: str | None = None
    log_group: str
    log_region: str
    log_stream_prefix: str
    stop_timeout: int
    workdir: str | None = None  # RunTask cannot override the working directory
    repository_credentials: str | None = None  # Secrets Manager ARN of a private registry's login (0811)

    def digest(self) -> str:
        content = self.model_dump(mode="json")
        if content["repository_credentials"] is None:
            # left out when unset, so that the task definitions registered before 0811 keep their family
            del content["repository_credentials"]
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:20]

    @property
    def family(self) -> str:
        return FAMILY_PREFIX + self.digest()

    def register_kwargs(self, tags: dict[str, str]) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": self.container_name,
            "image": self.image,
            "essential": True,
            # container-level memory: moto requires it and the run's override replaces it
            "memory": int(BASE_MEMORY),
            "stopTimeout": self.stop_timeout,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.log_group,
                    "awslogs-region": self.log_region,
                    "awslogs-stream-prefix": self.log_stream_prefix,
                },
            },
        }
        if self.workdir:
            container["workingDirectory"] = self.workdir
        if self.repository_credentials:
            container["repositoryCredentials"] = {"credentialsParameter": self.repository_credentials}
        if self.secrets:
            container["secrets"] = [{"name": n, "valueFrom": v} for n, v in self.secrets]
        kwargs: dict[str, Any] = {
            "family": self.family,
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": BASE_CPU,
            "memory": BASE_MEMORY,
            "runtimePlatform": {"cpuArchitecture": self.architecture, "operatingSystemFamily": "LINUX"},
            "containerDefinitions": [container],
            "tags": [{"key": k, "value": v} for k, v in {**tags, HASH_TAG: self.digest()}.items()],
        }
        if self.execution_role_arn:
            kwargs["executionRoleArn"] = self.execution_role_arn
        if self.task_role_arn:
            kwargs["taskRoleArn"] = self.task_role_arn
        return kwargs


class TaskDefinitions:
    """Finds or registers the task definition for a content; thread-safe, cached per process."""

    def __init__(self, ecs: Any, tags: dict[str, str]) -> None:
        self._ecs = ecs
        self._tags = tags
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self.registered = 0  # for tests and the benchmark

    def ensure(self, content: TaskDefContent) -> str:
        family = content.family
        cached = self._cache.get(family)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(family)
            if cached is not None:
                return cached
            arn = self._lookup(family) or self._register(content)
            self._cache[family] = arn
            return arn

    def _lookup(self, family: str) -> str | None:
        with aws_call(f"describe task definition {family}"):
            try:
                found = self._ecs.describe_task_definition(taskDefinition=family)
            except bexc.ClientError as exc:
                # an unknown family is a ClientException ("Unable to describe task definition")
                if error_code(exc) in ("ClientException", "InvalidParameterException"):
                    return None
                raise
        taskdef = found["taskDefinition"]
        if taskdef.get("status", "ACTIVE") != "ACTIVE":
            return None
        return str(taskdef["taskDefinitionArn"])

    def _register(self, content: TaskDefContent) -> str:
        with aws_call(f"register task definition {content.family}"):
            answer = self._ecs.register_task_definition(**content.register_kwargs(self._tags))
        self.registered += 1
        return str(answer["taskDefinition"]["taskDefinitionArn"])
