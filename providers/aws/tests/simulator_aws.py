"""The cloud simulator on moto: a task started through RunTask really runs its command on this machine.

moto records a Fargate task but runs nothing (and reports exit code 0). This adapter wraps the in-process
moto ECS backend (the ThreadedMotoServer runs in this process), so every RunTask from any boto3 client —
the provider's, a CLI invocation's — launches the command through runvoy_core.testing.simulator:
- the container sees the overrides' command and environment, plus the task definition's secrets resolved
  from moto's SSM / Secrets Manager (as the ECS agent would);
- output lines go to CloudWatch Logs through boto3, on the awslogs stream ``{prefix}/{container}/{task id}``;
- at exit the moto task gets lastStatus/desiredStatus STOPPED, stopCode, containers[0].exitCode and the
  timestamps (pullStartedAt, startedAt, stoppedAt...) that DescribeTasks then returns;
- StopTask no longer stops at once (moto's shortcut): it marks the task DEACTIVATING and stops the
  process with SIGTERM, then SIGKILL after the container's stopTimeout, like the ECS agent.
Images whose name contains ``does-not-exist`` fail to start (CannotPullContainerError, TaskFailedToStart).
A process killed by SIGKILL that nobody asked to stop is reported as the OOM killer's work.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend
from moto.ecs.responses import EC2ContainerServiceResponse

from runvoy_core.providers.local.process import ExitInfo
from runvoy_core.testing.simulator import CloudSimulator, SimulatedTask
from runvoy_core.testing.waiting import DEADLINE

ACCOUNT = "123456789012"
MISSING_IMAGE_MARK = "does-not-exist"


def _now() -> datetime:
    return datetime.now(UTC)


class _TaskInfo:
    def __init__(
        self, arn: str, cluster: str, region: str, stream: str, group: str, stop_timeout: int
    ) -> None:
        self.arn = arn
        self.cluster = cluster
        self.region = region
        self.stream = stream
        self.group = group
        self.stop_timeout = stop_timeout
        self.stop_reason: str | None = None
        self.stop_code: str | None = None
        self.lock = threading.Lock()


class AwsSimulator:
    def __init__(self, endpoint: str, region: str = "us-east-1", start_delay: float = 0.0) -> None:
        self.endpoint = endpoint
        self.region = region
        self.start_delay = start_delay
        self.sim = CloudSimulator()
        self._tasks: dict[str, _TaskInfo] = {}
        self._original_run = EC2ContainerServiceBackend.run_task
        self._original_stop = EC2ContainerServiceBackend.stop_task
        self._logs = self._client("logs")
        self.launched: list[str] = []
        self.enabled = True
        # ECS answers a RunTask whose clientToken it has seen with the task it started then; moto starts
        # another. Off by default, so the focused tests keep proving that the provider's own find-before-retry
        # prevents a second task; the fault campaign turns it on to model ECS as it is
        self.honour_client_token = False
        self._tokens: dict[str, tuple[str, str]] = {}
        self._launched_by_request: dict[int, list[Any]] = {}
        self._original_run_response = EC2ContainerServiceResponse.run_task

    def _client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    # -- installing the wrappers -----------------------------------------------------------------------
    def install(self) -> None:
        simulator = self
        original_run, original_stop = self._original_run, self._original_stop

        def run_task(backend: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
            tasks = original_run(backend, *args, **kwargs)
            simulator._launched_by_request[threading.get_ident()] = list(tasks)
            if simulator.enabled:
                for task in tasks:
                    simulator._launch(backend, task)
            return tasks

        def stop_task(
            backend: EC2ContainerServiceBackend, cluster_str: str, task_str: str, reason: str
        ) -> Any:
            info = simulator._tasks.get(task_str) or next(
                (i for a, i in simulator._tasks.items() if a.endswith("/" + task_str.rsplit("/", 1)[-1])),
                None,
            )
            if info is None:
                known = any(
                    a.endswith(task_str.rsplit("/", 1)[-1]) for t in backend.tasks.values() for a in t
                )
                if not known:  # what ECS answers (moto raises a bare Exception, a 500)
                    raise InvalidParameterException("The referenced task was not found.")
                return original_stop(backend, cluster_str, task_str, reason)
            task = backend.tasks[info.cluster][info.arn]
            with info.lock:
                if task.last_status != "STOPPED" and info.stop_code is None:
                    info.stop_code, info.stop_reason = "UserInitiated", reason
                    task.desired_status = "STOPPED"
                    task.stopped_reason = reason
                    task.stop_code = "UserInitiated"
                    task.stopping_at = _now()
                    if task.last_status == "RUNNING":
                        task.last_status = "DEACTIVATING"
                    simulator.sim.stop(info.arn, grace=info.stop_timeout)
            return task

        original_response = self._original_run_response

        def run_task_response(response: EC2ContainerServiceResponse) -> ActionResult:
            token = response._get_param("clientToken")
            seen = simulator._tokens.get(token) if token and simulator.honour_client_token else None
            if seen is not None:
                cluster, arn = seen
                task = response.ecs_backend.tasks.get(cluster, {}).get(arn)
                if task is not None:
                    return ActionResult({"tasks": [task], "failures": []})
            result = original_response(response)
            for task in simulator._launched_by_request.pop(threading.get_ident(), []):
                if token:
                    simulator._tokens[token] = (task.cluster_name, task.task_arn)
            return result

        EC2ContainerServiceBackend.run_task = run_task  # type: ignore[method-assign]
        EC2ContainerServiceResponse.run_task = run_task_response  # type: ignore[method-assign]
        EC2ContainerServiceBackend.stop_task = stop_task  # type: ignore[method-assign]

    def uninstall(self) -> None:
        EC2ContainerServiceBackend.run_task = self._original_run  # type: ignore[method-assign]
        EC2ContainerServiceBackend.stop_task = self._original_stop  # type: ignore[method-assign]
        EC2ContainerServiceResponse.run_task = self._original_run_response  # type: ignore[method-assign]
        self.sim.shutdown()

    def reset(self) -> None:
        """Between tests: kill what still runs and forget it."""
        self.sim.shutdown(timeout=30.0)
        self._tasks.clear()
        self.launched.clear()
        self.enabled = True
        self.honour_client_token = False
        self._tokens.clear()

    # -- launching ------------------------------------------------------------------------------------
    def _launch(self, backend: EC2ContainerServiceBackend, task: Any) -> None:
        taskdef = backend.describe_task_definition(task.task_definition_arn)
        container = dict(taskdef.container_definitions[0])
        overrides = dict(task.overrides or {})
        container_override = next(iter(overrides.get("containerOverrides") or []), {})
        argv = list(container_override.get("command") or container.get("command") or [])
        env = {e["name"]: e["value"] for e in container.get("environment") or []}
        env.update({e["name"]: e["value"] for e in container_override.get("environment") or []})
        options = (container.get("logConfiguration") or {}).get("options", {})
        stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container.get('name')}/{task.id}"
        group = options.get("awslogs-group", "")
        info = _TaskInfo(
            task.task_arn,
            task.cluster_name,
            task.region_name,
            stream,
            group,
            int(container.get("stopTimeout") or 30),
        )
        self._tasks[task.task_arn] = info
        self.launched.append(task.task_arn)
        task.last_status = "PROVISIONING"
        task.created_at = _now()
        image = str(container.get("image") or "")
        if MISSING_IMAGE_MARK in image:
            threading.Thread(target=self._fail_to_start, args=(backend, info, image), daemon=True).start()
            return
        try:
            secrets = self._secret_values(container.get("secrets") or [])
            self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except Exception as exc:  # the ECS agent fails the task the same way
            threading.Thread(
                target=self._fail_to_start,
                args=(backend, info, image, f"ResourceInitializationError: {type(exc).__name__}: {exc}"),
                daemon=True,
            ).start()
            return
        process_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", **env, **secrets}
        adapter = _Adapter(self, backend, info)
        self.sim.launch(
            info.arn, argv, process_env, adapter, grace=info.stop_timeout, start_delay=self.start_delay
        )

    def _secret_values(self, secrets: list[dict[str, str]]) -> dict[str, str]:
        values = {}
        for secret in secrets:
            source = secret["valueFrom"]
            if ":secretsmanager:" in source:
                values[secret["name"]] = self._client("secretsmanager").get_secret_value(SecretId=source)[
                    "SecretString"
                ]
            else:
                name = source.split(":parameter", 1)[-1]
                ssm = self._client("ssm")
                try:
                    found = ssm.get_parameter(Name=name, WithDecryption=True)
                except ssm.exceptions.ParameterNotFound:
                    found = ssm.get_parameter(Name=name.lstrip("/"), WithDecryption=True)
                values[secret["name"]] = found["Parameter"]["Value"]
        return values

    def _fail_to_start(self, backend: Any, info: _TaskInfo, image: str, reason: str | None = None) -> None:
        time.sleep(0.2)
        task = backend.tasks[info.cluster][info.arn]
        task.containers = []  # TaskFailedToStart can arrive with an empty containers list
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stop_code = "TaskFailedToStart"
        task.stopped_reason = reason or (
            f"CannotPullContainerError: pull image manifest has been retried 5 time(s): {image}: not found"
        )
        task.stopping_at = task.execution_stopped_at = task.stopped_at = _now()

    # -- test controls --------------------------------------------------------------------------------
    def task_for(self, arn: str) -> SimulatedTask | None:
        return self.sim.get(arn)

    def interrupt_spot(self, arn: str) -> None:
        """What AWS does when it reclaims Fargate Spot capacity: SpotInterruption, SIGTERM, then SIGKILL."""
        info = self._tasks[arn]
        with info.lock:
            info.stop_code, info.stop_reason = "SpotInterruption", "Your Spot Task was interrupted."
        self.sim.stop(arn, grace=2.0)

    def wait_all(self, timeout: float = DEADLINE) -> None:
        for task in self.sim.tasks():
            assert task.wait(timeout) is not None, (
                f"simulated task {task.key} still running after {timeout:g}s"
            )


class _Adapter:
    def __init__(self, owner: AwsSimulator, backend: Any, info: _TaskInfo) -> None:
        self.owner = owner
        self.backend = backend
        self.info = info

    def _task(self) -> Any:
        return self.backend.tasks[self.info.cluster][self.info.arn]

    def on_start(self, task: SimulatedTask) -> None:
        moto_task = self._task()
        started = datetime.fromtimestamp(task.started_at or time.time(), UTC)
        moto_task.pull_started_at = started
        moto_task.pull_stopped_at = started
        moto_task.started_at = started
        moto_task.connectivity_at = started
        if moto_task.desired_status != "STOPPED":
            moto_task.last_status = "RUNNING"
        moto_task.containers[0].last_status = "RUNNING"

    def on_output(self, task: SimulatedTask, stream: str, timestamp: float, lines: list[str]) -> None:
        if not lines:
            return
        ms = int(timestamp * 1000)
        # like Docker's awslogs driver: CloudWatch rejects empty messages, so blank lines are dropped
        events = [{"timestamp": ms, "message": line} for line in lines if line]
        if not events:
            return
        for i in range(0, len(events), 5000):
            self.owner._logs.put_log_events(
                logGroupName=self.info.group, logStreamName=self.info.stream, logEvents=events[i : i + 5000]
            )

    def on_exit(self, task: SimulatedTask, info: ExitInfo) -> None:
        moto_task = self._task()
        stopped = datetime.fromtimestamp(info.finished_at, UTC)
        container = moto_task.containers[0]
        with self.info.lock:
            stop_code = self.info.stop_code
            reason = self.info.stop_reason
        if stop_code is None:
            stop_code, reason = "EssentialContainerExited", "Essential container in task exited"
            if info.signal == 9:
                container.reason = "OutOfMemoryError: Container killed due to memory usage"
        container.exitCode = info.exit_code
        container.last_status = "STOPPED"
        moto_task.stop_code = stop_code
        moto_task.stopped_reason = reason
        moto_task.desired_status = "STOPPED"
        moto_task.execution_stopped_at = stopped
        moto_task.stopping_at = getattr(moto_task, "stopping_at", None) or stopped
        moto_task.stopped_at = stopped
        moto_task.last_status = "STOPPED"
