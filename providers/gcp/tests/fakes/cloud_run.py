"""A fake of the Cloud Run Admin API v2 (jobs, executions, tasks, operations) plus the Secret Manager
reads a job's secretKeyRef needs, validated against run.v2.json (and secretmanager.v1.json).

``jobs:run`` really runs the job's command through the CloudSimulator: output lines go into the fake
Cloud Logging store as Cloud Run writes them, and the execution/task resources report start and
completion times, counts, conditions and the task's exit code or terminating signal.
"""

from __future__ import annotations

import base64
import copy
import re
import secrets as _random
import threading
import time
import uuid
from typing import Any

from runvoy_core.providers.local.process import ExitInfo
from runvoy_core.testing.simulator import CloudSimulator, SimulatedTask

from .cloud_logging import LogStore
from .discovery import DiscoveryValidator, MatchedMethod
from .server import ApiError, GoogleApiServer, rfc3339

RUN_TYPE = "type.googleapis.com/google.cloud.run.v2."
_JOB_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
DEFAULT_TASK_TIMEOUT = 600.0  # Cloud Run's default task timeout
# Cloud Run jobs: vCPU -> (min MiB, max MiB)
_CPU_MEMORY = {1: (512, 4096), 2: (512, 8192), 4: (2048, 16384), 6: (4096, 24576), 8: (4096, 32768)}
_DEADLINE_EXCEEDED = 4
_CANCELLED = 1


def _parse_memory(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)(Mi|Gi|M|G)", text)
    if m is None:
        return None
    n = int(m.group(1))
    return n * 1024 if m.group(2).startswith("G") else n


def _parse_duration(text: str) -> float:
    return float(text.rstrip("s"))


class FakeCloudRun:
    def __init__(self, simulator: CloudSimulator, logs: LogStore, *, cancel_grace: float = 1.0) -> None:
        self.simulator = simulator
        self.logs = logs
        self.cancel_grace = cancel_grace
        self.start_delay = 0.0
        self.start_gate: threading.Event | None = None
        """When set, tasks start only once the test sets the event (no start races a loaded machine)."""
        self.template_shows_overrides = True
        """False: an execution's template is the job's (the overrides are visible only on its task)."""
        self.jobs: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        """project/secret id -> {version: value}; a test puts values here as it would in Secret Manager."""
        self._lock = threading.RLock()
        self.server = GoogleApiServer(
            [DiscoveryValidator("run.v2.json"), DiscoveryValidator("secretmanager.v1.json")],
            {
                "run.projects.locations.jobs.create": self._create_job,
                "run.projects.locations.jobs.get": self._get_job,
                "run.projects.locations.jobs.list": self._list_jobs,
                "run.projects.locations.jobs.delete": self._delete_job,
                "run.projects.locations.jobs.run": self._run_job,
                "run.projects.locations.jobs.executions.get": self._get_execution,
                "run.projects.locations.jobs.executions.list": self._list_executions,
                "run.projects.locations.jobs.executions.cancel": self._cancel_execution,
                "run.projects.locations.jobs.executions.delete": self._delete_execution,
                "run.projects.locations.jobs.executions.tasks.get": self._get_task,
                "run.projects.locations.jobs.executions.tasks.list": self._list_tasks,
                "run.projects.locations.operations.get": self._get_operation,
                "secretmanager.projects.secrets.get": self._get_secret,
                "secretmanager.projects.secrets.versions.access": self._access_secret_version,
            },
        )

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def start(self) -> FakeCloudRun:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def put_secret(self, project: str, secret: str, value: str, version: str = "1") -> None:
        with self._lock:
            self.secrets.setdefault(f"{project}/{secret}", {})[version] = value

    # -- helpers -------------------------------------------------------------------------------------
    def _operation(
        self,
        location: str,
        *,
        done: bool,
        metadata: Any = None,
        response: Any = None,
        target: str | None = None,
    ) -> dict[str, Any]:
        name = f"{location}/operations/{uuid.uuid4()}"
        op: dict[str, Any] = {"name": name, "done": done}
        if metadata is not None:
            op["metadata"] = metadata
        if response is not None:
            op["response"] = response
        with self._lock:
            self.operations[name] = {"op": op, "execution": target}
        return op

    @staticmethod
    def _typed(kind: str, resource: dict[str, Any]) -> dict[str, Any]:
        return {"@type": RUN_TYPE + kind, **copy.deepcopy(resource)}

    def _job(self, name: str) -> dict[str, Any]:
        job = self.jobs.get(name)
        if job is None:
            raise ApiError(
                404,
                f"Resource '{name.rsplit('/', 1)[-1]}' of kind 'JOB' in region "
                f"'{name.split('/')[3]}' in project '{name.split('/')[1]}' does not exist.",
            )
        return job

    def _execution(self, name: str) -> dict[str, Any]:
        execution = self.executions.get(name)
        if execution is None:
            raise ApiError(404, f"Execution {name} does not exist.")
        return execution

    @staticmethod
    def _page(items: list[dict[str, Any]], key: str, query: dict[str, list[str]]) -> dict[str, Any]:
        size = int((query.get("pageSize") or ["100"])[0]) or 100
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        result: dict[str, Any] = {key: copy.deepcopy(items[start : start + size])}
        if start + size < len(items):
            result["nextPageToken"] = str(start + size)
        return result

    def _check_template(self, job: dict[str, Any]) -> None:
        task = (job.get("template") or {}).get("template") or {}
        containers = task.get("containers") or []
        if len(containers) != 1:
            raise ApiError(400, "template.template.containers: exactly one container is supported")
        container = containers[0]
        if not container.get("image"):
            raise ApiError(400, "template.template.containers[0].image: must not be empty")
        limits = (container.get("resources") or {}).get("limits") or {}
        cpu = limits.get("cpu", "1")
        memory = _parse_memory(limits.get("memory", "512Mi"))
        if not cpu.isdigit() or int(cpu) not in _CPU_MEMORY or memory is None:
            raise ApiError(400, f"Invalid value specified for cpu/memory: {cpu}/{limits.get('memory')}")
        low, high = _CPU_MEMORY[int(cpu)]
        if not low <= memory <= high:
            raise ApiError(
                400,
                f"Invalid value specified for memory. For {cpu} CPU, memory must be between "
                f"{low}Mi and {high}Mi inclusive.",
            )

    # -- jobs ----------------------------------------------------------------------------------------
    def _create_job(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        parent = method.params["parent"]
        job_id = (query.get("jobId") or [""])[0]
        if not _JOB_ID.match(job_id):
            raise ApiError(400, f"jobId: '{job_id}' is not a valid job id")
        job = copy.deepcopy(body or {})
        self._check_template(job)
        name = f"{parent}/jobs/{job_id}"
        with self._lock:
            if name in self.jobs:
                raise ApiError(409, f"Resource '{job_id}' already exists.")
            now = rfc3339(time.time())
            job.update(
                name=name,
                uid=str(uuid.uuid4()),
                generation="1",
                observedGeneration="1",
                createTime=now,
                updateTime=now,
                launchStage=job.get("launchStage") or "GA",
                etag=f'"{uuid.uuid4().hex}"',
                executionCount=0,
                terminalCondition={
                    "type": "Ready",
                    "state": "CONDITION_SUCCEEDED",
                    "lastTransitionTime": now,
                },
            )
            job.setdefault("template", {}).setdefault("taskCount", 1)
            self.jobs[name] = job
        location = parent
        return self._operation(
            location, done=True, response=self._typed("Job", job), metadata=self._typed("Job", job)
        )

    def _get_job(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        with self._lock:
            return copy.deepcopy(self._job(method.params["name"]))

    def _list_jobs(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        parent = method.params["parent"] + "/jobs/"
        with self._lock:
            jobs = [j for n, j in sorted(self.jobs.items()) if n.startswith(parent)]
        return self._page(jobs, "jobs", query)

    def _delete_job(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        name = method.params["name"]
        with self._lock:
            job = self.jobs.pop(self._job(name)["name"])
        return self._operation(name.rsplit("/jobs/", 1)[0], done=True, response=self._typed("Job", job))

    def _run_job(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        name = method.params["name"]
        body = body or {}
        overrides = body.get("overrides") or {}
        with self._lock:
            job = self._job(name)
            if body.get("etag") and body["etag"] != job["etag"]:
                raise ApiError(409, "etag mismatch", "ABORTED")
            task_count = overrides.get("taskCount") or job["template"].get("taskCount", 1)
            if task_count != 1:
                raise ApiError(400, "this fake runs jobs with taskCount 1 only")
            template = copy.deepcopy(job["template"]["template"])
            container = template["containers"][0]
            for override in overrides.get("containerOverrides") or []:
                if override.get("name") and override["name"] != container.get("name"):
                    raise ApiError(400, f"containerOverrides: no container named {override['name']!r}")
                if override.get("clearArgs"):
                    container["args"] = []
                if override.get("args"):
                    container["args"] = list(override["args"])
                if override.get("env"):
                    merged = {e["name"]: e for e in container.get("env") or []}
                    merged.update({e["name"]: e for e in override["env"]})
                    container["env"] = list(merged.values())
            if overrides.get("timeout"):
                template["timeout"] = overrides["timeout"]
            job_id = name.rsplit("/", 1)[1]
            suffix = "".join(_random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5))
            exec_id = f"{job_id}-{suffix}"
            exec_name = f"{name}/executions/{exec_id}"
            now = rfc3339(time.time())
            execution: dict[str, Any] = {
                "name": exec_name,
                "uid": str(uuid.uuid4()),
                "job": job_id,
                "generation": "1",
                "observedGeneration": "1",
                "labels": dict(job.get("labels") or {}),
                "createTime": now,
                "updateTime": now,
                "launchStage": "GA",
                "parallelism": 1,
                "taskCount": 1,
                "template": template
                if self.template_shows_overrides
                else copy.deepcopy(job["template"]["template"]),
                "reconciling": True,
                "conditions": [
                    {"type": "Completed", "state": "CONDITION_PENDING", "lastTransitionTime": now},
                    {"type": "ResourcesAvailable", "state": "CONDITION_PENDING", "lastTransitionTime": now},
                ],
                "runningCount": 0,
                "etag": f'"{uuid.uuid4().hex}"',
                "logUri": f"https://console.cloud.google.com/logs/viewer?execution={exec_id}",
            }
            task_name = f"{exec_name}/tasks/{exec_id}-task0"
            task: dict[str, Any] = {
                "name": task_name,
                "uid": str(uuid.uuid4()),
                "job": job_id,
                "execution": exec_id,
                "index": 0,
                "containers": template["containers"],
                "maxRetries": template.get("maxRetries", 3),
                "timeout": template.get("timeout", f"{int(DEFAULT_TASK_TIMEOUT)}s"),
                "serviceAccount": template.get("serviceAccount", ""),
                "createTime": now,
                "retried": 0,
                "conditions": [{"type": "Ready", "state": "CONDITION_PENDING", "lastTransitionTime": now}],
            }
            self.executions[exec_name] = execution
            self.tasks[task_name] = task
            job["executionCount"] = job.get("executionCount", 0) + 1
            job["latestCreatedExecution"] = {
                "name": exec_name,
                "createTime": now,
                "completionStatus": "EXECUTION_PENDING",
            }
            op = self._operation(
                name.rsplit("/jobs/", 1)[0],
                done=False,
                metadata=self._typed("Execution", execution),
                target=exec_name,
            )
            env, missing = self._resolve_env(name.split("/")[1], container)
        if missing:
            self._finish_without_start(exec_name, f"secret {missing} was not found or has no such version")
            return op
        argv = list(container.get("command") or []) + list(container.get("args") or [])
        self.simulator.launch(
            exec_name,
            argv,
            env,
            _Adapter(self),
            timeout=_parse_duration(template.get("timeout", f"{DEFAULT_TASK_TIMEOUT}s")),
            grace=self.cancel_grace,
            start_delay=self.start_delay,
            start_gate=self.start_gate,
        )
        return op

    def _resolve_env(self, project: str, container: dict[str, Any]) -> tuple[dict[str, str], str | None]:
        import os

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CLOUD_RUN_TASK_INDEX": "0"}
        for item in container.get("env") or []:
            source = (item.get("valueSource") or {}).get("secretKeyRef")
            if source is None:
                env[item["name"]] = item.get("value", "")
                continue
            secret = source["secret"]
            if not secret.startswith("projects/"):
                secret = f"projects/{project}/secrets/{secret}"
            _, proj, _, secret_id = secret.split("/")[:4]
            versions = self.secrets.get(f"{proj}/{secret_id}", {})
            version = source.get("version") or "latest"
            if version == "latest" and versions:
                version = max(versions, key=int)
            if version not in versions:
                return env, secret_id
            env[item["name"]] = versions[version]
        return env, None

    # -- executions ----------------------------------------------------------------------------------
    def _get_execution(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        with self._lock:
            return copy.deepcopy(self._execution(method.params["name"]))

    def _list_executions(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        parent = method.params["parent"]
        with self._lock:
            if parent.endswith("/jobs/-"):
                prefix = parent[: -len("-")]
                items = [e for n, e in self.executions.items() if n.startswith(prefix)]
            else:
                self._job(parent)
                items = [e for n, e in self.executions.items() if n.startswith(parent + "/executions/")]
            items.sort(key=lambda e: e["createTime"], reverse=True)  # newest first, as Cloud Run lists
        return self._page(items, "executions", query)

    def _cancel_execution(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        name = method.params["name"]
        with self._lock:
            execution = self._execution(name)
            if execution.get("completionTime"):
                raise ApiError(
                    400, f"Execution {name.rsplit('/', 1)[1]} has already completed.", "FAILED_PRECONDITION"
                )
            execution["reconciling"] = True
            _condition(execution, "Completed", "CONDITION_RECONCILING", executionReason="CANCELLING")
            metadata = self._typed("Execution", execution)
        self.simulator.stop(name, grace=self.cancel_grace)
        return self._operation(name.split("/jobs/")[0], done=False, metadata=metadata, target=name)

    def _delete_execution(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        name = method.params["name"]
        with self._lock:
            execution = self.executions.pop(self._execution(name)["name"])
        return self._operation(
            name.split("/jobs/")[0], done=True, response=self._typed("Execution", execution)
        )

    def _get_task(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        with self._lock:
            task = self.tasks.get(method.params["name"])
            if task is None:
                raise ApiError(404, f"Task {method.params['name']} does not exist.")
            return copy.deepcopy(task)

    def _list_tasks(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        parent = method.params["parent"]
        with self._lock:
            self._execution(parent)
            items = [t for n, t in sorted(self.tasks.items()) if n.startswith(parent + "/tasks/")]
        return self._page(items, "tasks", query)

    def _get_operation(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        with self._lock:
            entry = self.operations.get(method.params["name"])
            if entry is None:
                raise ApiError(404, "Operation not found")
            op = entry["op"]
            target = entry["execution"]
            if target and not op["done"]:
                execution = self.executions.get(target)
                if execution is not None:
                    op["metadata"] = self._typed("Execution", execution)
                    if execution.get("completionTime"):
                        op["done"] = True
                        op["response"] = self._typed("Execution", execution)
            return copy.deepcopy(op)

    def _get_secret(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        name = method.params["name"]
        _, project, _, secret_id = name.split("/")
        with self._lock:
            if f"{project}/{secret_id}" not in self.secrets:
                raise ApiError(404, f"Secret [{name}] not found or has no versions.")
        return {"name": name, "replication": {"automatic": {}}, "createTime": rfc3339(time.time())}

    def _access_secret_version(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        name = method.params["name"]
        _, project, _, secret_id, _, version = name.split("/")
        with self._lock:
            versions = self.secrets.get(f"{project}/{secret_id}", {})
            if version == "latest" and versions:
                version = max(versions, key=int)
            if version not in versions:
                raise ApiError(404, f"Secret Version [{name}] not found.")
            data = versions[version].encode()
        return {
            "name": f"projects/{project}/secrets/{secret_id}/versions/{version}",
            "payload": {"data": base64.b64encode(data).decode()},
        }

    # -- simulator callbacks -------------------------------------------------------------------------
    def _finish_without_start(self, exec_name: str, message: str) -> None:
        with self._lock:
            execution = self.executions[exec_name]
            now = rfc3339(time.time())
            execution.update(completionTime=now, failedCount=1, reconciling=False, runningCount=0)
            _condition(execution, "Completed", "CONDITION_FAILED", message=message)
            _condition(
                execution,
                "ResourcesAvailable",
                "CONDITION_FAILED",
                message=message,
                reason="SECRETS_ACCESS_CHECK_FAILED",
            )
            self._update_job_reference(execution, "EXECUTION_FAILED")

    def _update_job_reference(self, execution: dict[str, Any], status: str) -> None:
        job = self.jobs.get(execution["name"].split("/executions/")[0])
        if job and job.get("latestCreatedExecution", {}).get("name") == execution["name"]:
            job["latestCreatedExecution"]["completionStatus"] = status
            if execution.get("completionTime"):
                job["latestCreatedExecution"]["completionTime"] = execution["completionTime"]

    def on_start(self, task: SimulatedTask) -> None:
        with self._lock:
            execution = self.executions[task.key]
            now = rfc3339(task.started_at or time.time())
            execution.update(startTime=now, runningCount=1)
            _condition(execution, "ResourcesAvailable", "CONDITION_SUCCEEDED")
            _condition(execution, "Started", "CONDITION_SUCCEEDED")
            for t in self._tasks_of(task.key):
                t["startTime"] = now
                _condition(t, "Ready", "CONDITION_RECONCILING")
            self._update_job_reference(execution, "EXECUTION_RUNNING")

    def on_output(self, task: SimulatedTask, stream: str, timestamp: float, lines: list[str]) -> None:
        _, project, _, location, _, job_id, _, exec_id = task.key.split("/")
        for line in lines:
            self.logs.append_line(
                project=project,
                job=job_id,
                location=location,
                execution=exec_id,
                stream=stream,
                timestamp=timestamp,
                text=line,
            )

    def on_exit(self, task: SimulatedTask, info: ExitInfo) -> None:
        with self._lock:
            execution = self.executions.get(task.key)
            if execution is None:
                return
            now = rfc3339(info.finished_at)
            execution.update(completionTime=now, runningCount=0, reconciling=False)
            result: dict[str, Any] = {}
            if info.exit_code is not None:
                result["exitCode"] = info.exit_code
            if info.signal is not None:
                result["termSignal"] = info.signal
            if info.timed_out:
                execution["failedCount"] = 1
                result["status"] = {"code": _DEADLINE_EXCEEDED, "message": "Task exceeded its timeout."}
                _condition(
                    execution,
                    "Completed",
                    "CONDITION_FAILED",
                    message="Task failed: the task exceeded its timeout.",
                )
                status = "EXECUTION_FAILED"
            elif info.stopped:
                execution["cancelledCount"] = 1
                result["status"] = {"code": _CANCELLED, "message": "The task was cancelled."}
                _condition(
                    execution,
                    "Completed",
                    "CONDITION_FAILED",
                    executionReason="CANCELLED",
                    message="The execution was cancelled.",
                )
                status = "EXECUTION_CANCELLED"
            elif info.exit_code == 0:
                execution["succeededCount"] = 1
                result["status"] = {}
                _condition(execution, "Completed", "CONDITION_SUCCEEDED")
                status = "EXECUTION_SUCCEEDED"
            else:
                execution["failedCount"] = 1
                why = f"exit code {info.exit_code}" if info.exit_code is not None else f"signal {info.signal}"
                result["status"] = {"code": 2, "message": f"Application failed with {why}"}
                _condition(
                    execution,
                    "Completed",
                    "CONDITION_FAILED",
                    executionReason="NON_ZERO_EXIT_CODE",
                    message=f"Task failed with {why}.",
                )
                status = "EXECUTION_FAILED"
            for t in self._tasks_of(task.key):
                t["completionTime"] = now
                t["lastAttemptResult"] = result
                _condition(
                    t,
                    "Ready",
                    "CONDITION_SUCCEEDED" if status == "EXECUTION_SUCCEEDED" else "CONDITION_FAILED",
                )
            self._update_job_reference(execution, status)

    def _tasks_of(self, exec_name: str) -> list[dict[str, Any]]:
        return [t for n, t in self.tasks.items() if n.startswith(exec_name + "/tasks/")]

    def reset(self) -> None:
        self.simulator.shutdown()
        with self._lock:
            self.jobs.clear()
            self.executions.clear()
            self.tasks.clear()
            self.operations.clear()
            self.secrets.clear()
        self.start_delay = 0.0
        self.start_gate = None
        self.template_shows_overrides = True
        self.server.faults.clear()


def _condition(resource: dict[str, Any], kind: str, state: str, **fields: Any) -> None:
    now = rfc3339(time.time())
    conditions = resource.setdefault("conditions", [])
    for condition in conditions:
        if condition["type"] == kind:
            condition.clear()
            condition.update(type=kind, state=state, lastTransitionTime=now, **fields)
            return
    conditions.append({"type": kind, "state": state, "lastTransitionTime": now, **fields})


class _Adapter:
    """The CloudSimulator adapter: turns process events into Cloud Run state and Cloud Logging entries."""

    def __init__(self, fake: FakeCloudRun) -> None:
        self.fake = fake

    def on_start(self, task: SimulatedTask) -> None:
        self.fake.on_start(task)

    def on_output(self, task: SimulatedTask, stream: str, timestamp: float, lines: list[str]) -> None:
        self.fake.on_output(task, stream, timestamp, lines)

    def on_exit(self, task: SimulatedTask, info: ExitInfo) -> None:
        self.fake.on_exit(task, info)
