"""Compute on ECS Fargate: RunTask with overrides, DescribeTasks, StopTask, look-ups by execution id."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
from typing import Any

import structlog

from runvoy_aws.clients import (
    AwsClients,
    aws_call,
    bexc,
    is_ambiguous,
    is_transient,
    throttled,
    translate,
)
from runvoy_aws.config import AwsConfig
from runvoy_aws.quotas import DESCRIBE_TASKS, LIST_TASKS
from runvoy_aws.registries import RepositoryCredentials
from runvoy_aws.secrets import SecretResolver
from runvoy_aws.sizes import cpu_units, validate_resources
from runvoy_aws.states import EXECUTION_TAG, execution_id_of, task_state
from runvoy_aws.taskdefs import FAMILY_PREFIX, TaskDefContent, TaskDefinitions
from runvoy_core.errors import ProviderError, StartFailed, TransientProviderError, UsageError
from runvoy_core.images.reference import registry_of
from runvoy_core.models import Architecture, ExecutionRequest
from runvoy_core.ports import TaskPhase, TaskSpec, TaskState
from runvoy_core.ports.compute import make_store_id
from runvoy_core.ratelimit import Retryable, RetryPolicy, retry_call

log = structlog.get_logger("runvoy.aws.compute")

OVERRIDES_LIMIT = 8192  # characters of RunTask's overrides JSON
DESCRIBE_BATCH = 100  # task ARNs per DescribeTasks call
START_ATTEMPTS = 5
REQUEST_ID_TAG = "runvoy:request-id"
STORE_TAG = "runvoy:store"
"""The id of the store (executions table) a task's record is in: reconcile touches only its own (0016)."""


def task_id(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def cluster_of(ref: str, default: str) -> str:
    # long ARN format: arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID
    parts = ref.split(":", 5)[-1].split("/") if ref.startswith("arn:") else []
    return parts[1] if len(parts) == 3 else default


def _unknown(ref: str, reasons: str) -> TaskState:
    # ECS forgets stopped tasks after about an hour
    return TaskState(
        ref=ref,
        phase=TaskPhase.UNKNOWN,
        reason=f"ECS no longer knows the task ({reasons}); stopped tasks are kept about an hour",
    )


def _started_task(answer: dict[str, Any]) -> str:
    """The task ARN of a RunTask answer; StartFailed for an answer with only failures (a failed start)."""
    failures = answer.get("failures") or []
    tasks = answer.get("tasks") or []
    if failures and not tasks:
        text = "; ".join(
            f"{f.get('reason', 'unknown')}" + (f" ({f['detail']})" if f.get("detail") else "")
            for f in failures
        )
        raise StartFailed(
            f"ECS refused to start the task: {text}",
            hint="check the cluster's capacity providers, the subnets and the task size; for "
            "FARGATE_SPOT capacity shortages, retry or run without --spot",
        )
    if not tasks:
        raise StartFailed("ECS RunTask returned neither a task nor a failure")
    return str(tasks[0]["taskArn"])


class EcsCompute:
    def __init__(self, clients: AwsClients, config: AwsConfig, region: str) -> None:
        self._clients = clients
        self._config = config
        self._region = region
        self._ecs = clients.client("ecs")
        self._ecs_start = clients.client("ecs", single_attempt=True)
        self.taskdefs = TaskDefinitions(self._ecs, dict(config.tags))
        self._secrets: SecretResolver | None = None
        self._registry_secrets: RepositoryCredentials | None = None
        self._network: dict[str, Any] | None = None
        self._execution_role: str | None = config.execution_role_arn
        self._started: dict[str, str] = {}
        self._lock = threading.Lock()
        self.start_retry_delay = 1.0

    @property
    def store_id(self) -> str:
        """A cluster is in one account and region: the executions table's name there is the store."""
        return make_store_id("aws", self._region, self._config.executions_table)

    # -- validation (no network) ----------------------------------------------------------------------
    def validate(self, request: ExecutionRequest) -> None:
        validate_resources(request.resources)
        if request.region is not None and request.region != self._region:
            # the cluster, log group, tables and roles live in one region, the one configured
            raise UsageError(
                f"--region {request.region}: the aws provider is set up for {self._region}",
                hint="set providers.aws.region (or RUNVOY_PROVIDERS__AWS__REGION) to the region to run in, "
                "and run: runvoy setup --provider aws",
            )
        if request.workdir is not None and not request.workdir.startswith("/"):
            raise UsageError(f"--workdir {request.workdir!r} must be an absolute path inside the container")

    # -- start ----------------------------------------------------------------------------------------
    def start(self, spec: TaskSpec, idempotency_key: str) -> str:
        validate_resources(spec.resources)
        known = self._started.get(idempotency_key)
        if known is not None:
            return known
        overrides = self._overrides(spec)
        taskdef = self.taskdefs.ensure(self._content(spec))
        kwargs = self._run_task_kwargs(spec, idempotency_key, taskdef, overrides)
        ref = self._run_task(kwargs, idempotency_key)
        with self._lock:
            self._started[idempotency_key] = ref
        return ref

    def _content(self, spec: TaskSpec) -> TaskDefContent:
        cfg = self._config
        secrets = self._secret_resolver().resolve(spec.secrets) if spec.secrets else []
        stop_timeout = cfg.stop_timeout or min(max(round(spec.stop_grace), 2), 120)
        arch = "ARM64" if spec.resources.architecture is Architecture.ARM64 else "X86_64"
        image = spec.image or cfg.image
        return TaskDefContent(
            image=image,
            architecture=arch,
            container_name=cfg.container_name,
            secrets=tuple(sorted((s.env_name, s.value_from) for s in secrets)),
            execution_role_arn=self._execution_role_arn(),
            task_role_arn=cfg.task_role_arn,
            log_group=cfg.log_group,
            log_region=self._region,
            log_stream_prefix=cfg.log_stream_prefix,
            stop_timeout=stop_timeout,
            workdir=spec.workdir,
            repository_credentials=self._repository_credentials(image),
        )

    def _repository_credentials(self, image: str) -> str | None:
        """The ARN of the secret configured for the image's registry (``registry_credentials``), if any."""
        if not self._config.registry_credentials:
            return None
        host = registry_of(image)
        secret = self._config.registry_credentials.get(host) if host is not None else None
        if host is None or secret is None:
            return None
        if self._registry_secrets is None:
            self._registry_secrets = RepositoryCredentials(self._clients.client("secretsmanager"))
        return self._registry_secrets.arn(host, secret)

    def _overrides(self, spec: TaskSpec) -> dict[str, Any]:
        cpu = str(cpu_units(spec.resources.cpu))
        memory = str(spec.resources.memory_mib)
        container: dict[str, Any] = {
            "name": self._config.container_name,
            "command": list(spec.argv),
            "environment": [{"name": k, "value": v} for k, v in sorted(spec.env.items())],
            "cpu": int(cpu),
            "memory": int(memory),
        }
        overrides: dict[str, Any] = {"containerOverrides": [container], "cpu": cpu, "memory": memory}
        if spec.resources.storage_gib > 20:
            overrides["ephemeralStorage"] = {"sizeInGiB": spec.resources.storage_gib}
        size = len(json.dumps(overrides, separators=(",", ":")))
        if size > OVERRIDES_LIMIT:
            raise UsageError(
                f"the command and environment take {size} characters; ECS accepts at most {OVERRIDES_LIMIT} "
                "in a run's overrides",
                hint="put the script in the image or fetch it from S3 inside the command; move large values "
                "to --secret or a file",
            )
        return overrides

    def _run_task_kwargs(
        self, spec: TaskSpec, key: str, taskdef: str, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        tags = {**self._config.tags, **{f"runvoy:{k}"[:128]: v for k, v in spec.labels.items()}}
        tags[EXECUTION_TAG] = spec.execution_id
        tags[STORE_TAG] = self.store_id
        if spec.request_id:
            tags[REQUEST_ID_TAG] = spec.request_id
        provider = "FARGATE_SPOT" if spec.resources.spot else "FARGATE"
        network = self._network_configuration()
        return {
            "cluster": self._config.cluster,
            "taskDefinition": taskdef,
            "count": 1,
            "capacityProviderStrategy": [{"capacityProvider": provider, "weight": 1}],
            "platformVersion": self._config.platform_version,
            "networkConfiguration": network,
            "overrides": overrides,
            "startedBy": key[:36],
            "clientToken": key[:64],
            "propagateTags": "TASK_DEFINITION",
            "enableECSManagedTags": True,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }

    def _run_task(self, kwargs: dict[str, Any], key: str) -> str:
        """RunTask through the core retry helper. RunTask is not idempotent (moto, and a lost answer, show
        that clientToken alone is not enough): an attempt after an ambiguous failure looks the task up
        first, and so does the end of a start that gave up."""
        failed: list[BaseException] = []

        def attempt() -> str:
            if failed and is_ambiguous(failed[-1]):
                # the previous RunTask may have started the task: find it before trying again
                found = self._find_quietly(key)
                if found is not None:
                    log.info("aws.start.found_after_ambiguous_failure", task=found, execution_id=key)
                    return found
            try:
                answer = self._ecs_start.run_task(**kwargs)
            except (bexc.BotoCoreError, bexc.ClientError) as exc:
                if not is_transient(exc):
                    error = translate(exc, "start ECS task")
                    if type(error) is ProviderError:
                        error.hint = (
                            "check the cluster, subnets, security groups and execution role "
                            "(runvoy setup --provider aws --dry-run shows what is missing)"
                        )
                    raise error from None
                failed.append(exc)
                raise
            return _started_task(answer)

        def retryable(exc: BaseException) -> Retryable | None:
            if not failed or exc is not failed[-1]:
                return None
            return throttled(exc) or Retryable(str(translate(exc, "start ECS task")), throttled=False)

        def on_retry(attempt: int, verdict: Retryable, delay: float) -> None:
            log.warning("aws.start.retry", attempt=attempt, error=verdict.reason, delay=round(delay, 2))

        policy = RetryPolicy(
            attempts=START_ATTEMPTS, base_delay=self.start_retry_delay, max_delay=20.0, total=120.0
        )
        try:
            return retry_call(
                attempt,
                what="start ECS task",
                classify=retryable,
                policy=policy,
                clock=self._clients.clock,
                on_retry=on_retry,
            )
        except TransientProviderError:
            found = self._find_quietly(key)
            if found is not None:
                return found
            if not failed:
                raise
            raise translate(failed[-1], f"start ECS task (after {len(failed)} attempts)") from None

    def _find_quietly(self, key: str) -> str | None:
        try:
            return self.find(key)
        except TransientProviderError:
            return None

    # -- observe --------------------------------------------------------------------------------------
    def describe(self, ref: str) -> TaskState:
        cluster = cluster_of(ref, self._config.cluster)
        answer = self._clients.read(
            DESCRIBE_TASKS,
            "describe ECS task",
            lambda: self._ecs.describe_tasks(cluster=cluster, tasks=[ref], include=["TAGS"]),
        )
        for task in answer.get("tasks") or []:
            if task.get("taskArn") == ref or task_id(str(task.get("taskArn"))) == task_id(ref):
                return task_state(task, self._config.container_name)
        reasons = ", ".join(str(f.get("reason")) for f in answer.get("failures") or []) or "MISSING"
        return _unknown(ref, reasons)

    def status_many(self, refs: Sequence[str]) -> dict[str, TaskState]:
        """Every ref's state in one DescribeTasks per cluster and 100 tasks (the shared poller's round)."""
        by_cluster: dict[str, list[str]] = {}
        for ref in dict.fromkeys(refs):
            by_cluster.setdefault(cluster_of(ref, self._config.cluster), []).append(ref)
        states: dict[str, TaskState] = {}
        for cluster, arns in by_cluster.items():
            for i in range(0, len(arns), DESCRIBE_BATCH):
                chunk = arns[i : i + DESCRIBE_BATCH]
                query = functools.partial(
                    self._ecs.describe_tasks, cluster=cluster, tasks=chunk, include=["TAGS"]
                )
                answer = self._clients.read(DESCRIBE_TASKS, "describe ECS tasks", query)
                found = {
                    task_id(str(task.get("taskArn"))): task_state(task, self._config.container_name)
                    for task in answer.get("tasks") or []
                }
                failures = {
                    task_id(str(f.get("arn"))): str(f.get("reason")) for f in answer.get("failures") or []
                }
                for ref in chunk:
                    state = found.get(task_id(ref))
                    states[ref] = (
                        state.model_copy(update={"ref": ref})
                        if state is not None
                        else _unknown(ref, failures.get(task_id(ref), "MISSING"))
                    )
        return states

    def find(self, execution_id: str) -> str | None:
        cluster = self._config.cluster
        for desired in ("RUNNING", "STOPPED"):
            query = functools.partial(
                self._ecs.list_tasks, cluster=cluster, startedBy=execution_id[:36], desiredStatus=desired
            )
            arns = self._clients.read(LIST_TASKS, "list ECS tasks", query).get("taskArns", [])
            if arns:
                return str(arns[0])
        return None

    def list_active(self) -> list[TaskState]:
        arns: list[str] = []
        with aws_call("list ECS tasks"):
            for page in self._ecs.get_paginator("list_tasks").paginate(
                cluster=self._config.cluster, desiredStatus="RUNNING"
            ):
                arns.extend(page.get("taskArns", []))
        states: list[TaskState] = []
        for i in range(0, len(arns), 100):
            with aws_call("describe ECS tasks"):
                answer = self._ecs.describe_tasks(
                    cluster=self._config.cluster, tasks=arns[i : i + 100], include=["TAGS"]
                )
            for task in answer.get("tasks") or []:
                ours = any(t.get("key") == EXECUTION_TAG for t in task.get("tags") or []) or str(
                    task.get("group", "")
                ).startswith(f"family:{FAMILY_PREFIX}")
                if not ours or execution_id_of(task) is None:
                    continue
                state = task_state(task, self._config.container_name)
                store = next(
                    (t.get("value") for t in task.get("tags") or [] if t.get("key") == STORE_TAG), None
                )
                if not state.ended:
                    states.append(state.model_copy(update={"store_id": store}))
        return states

    # -- stop -----------------------------------------------------------------------------------------
    def stop(self, ref: str, grace: float, *, force: bool = False) -> None:
        """StopTask for both: Fargate has no SIGKILL API. ECS sends SIGTERM and SIGKILLs after the
        container's stopTimeout, set in the task definition from the run's stop grace (or ``stop_timeout``)."""
        reason = "runvoy: killed" if force else f"runvoy: stop requested (grace {grace:g}s)"
        with aws_call("stop ECS task"):
            try:
                self._ecs.stop_task(cluster=cluster_of(ref, self._config.cluster), task=ref, reason=reason)
            except bexc.ClientError as exc:
                message = str(exc.response.get("Error", {}).get("Message", "")).lower()
                if "not found" in message or "could not find" in message:
                    return  # already gone: stopping is idempotent
                raise

    def cleanup(self, ref: str) -> None:
        """Nothing to release: Fargate tasks hold nothing after they stop."""

    # -- lazily resolved account facts ----------------------------------------------------------------
    def _secret_resolver(self) -> SecretResolver:
        if self._secrets is None:
            self._secrets = SecretResolver(
                self._clients.client("ssm"), self._clients.client("secretsmanager")
            )
        return self._secrets

    def _execution_role_arn(self) -> str | None:
        if self._execution_role is None:
            with aws_call("read the AWS account id"):
                account = self._clients.client("sts").get_caller_identity()["Account"]
            self._execution_role = f"arn:aws:iam::{account}:role/{self._config.execution_role_name}"
        return self._execution_role

    def _network_configuration(self) -> dict[str, Any]:
        if self._network is None:
            subnets = list(self._config.subnets)
            groups = list(self._config.security_groups)
            if not subnets or not groups:
                subnets, groups = default_network(self._clients.client("ec2"), subnets, groups)
            self._network = {
                "awsvpcConfiguration": {
                    "subnets": subnets,
                    "securityGroups": groups,
                    "assignPublicIp": "ENABLED" if self._config.assign_public_ip else "DISABLED",
                }
            }
        return self._network


def default_network(ec2: Any, subnets: list[str], groups: list[str]) -> tuple[list[str], list[str]]:
    """The default VPC's default subnets and its default security group, for unset config values."""
    with aws_call("find the default VPC"):
        if not subnets:
            found = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
            subnets = [s["SubnetId"] for s in found.get("Subnets", [])]
            if not subnets:
                raise UsageError(
                    "no subnets configured and this region has no default VPC",
                    hint="set providers.aws.subnets (and security_groups) to subnets with internet access",
                )
        if not groups:
            subnet = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]
            found = ec2.describe_security_groups(
                Filters=[
                    {"Name": "vpc-id", "Values": [subnet["VpcId"]]},
                    {"Name": "group-name", "Values": ["default"]},
                ]
            )
            groups = [g["GroupId"] for g in found.get("SecurityGroups", [])][:1]
            if not groups:
                raise UsageError(
                    "no security group configured and the VPC has no default group",
                    hint="set providers.aws.security_groups",
                )
    return subnets, groups
