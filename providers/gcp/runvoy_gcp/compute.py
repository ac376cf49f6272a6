"""Compute on Cloud Run jobs (v2, REST).

One job per distinct content (image, entrypoint, cpu, memory, secrets, service account, working directory),
named ``<prefix>-<hash>`` and reused; each run is ``jobs:run`` with overrides (args, env, timeout,
taskCount 1) and ``maxRetries`` 0 in the job. ``jobs:run`` is not idempotent, so a start whose outcome is
unknown (timeout, 429, 5xx) compares the job's ``latestCreatedExecution`` with the one seen before and looks
for its own execution (tagged with ``RUNVOY_EXECUTION_ID`` in the env) before it runs the job again.

The task ref is the execution's resource name: ``projects/P/locations/L/jobs/J/executions/E``.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import run_v2

from runvoy_core.errors import (
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ProviderError,
    StartFailed,
    TransientProviderError,
    ValidationFailed,
)
from runvoy_core.models import ExecutionRequest
from runvoy_core.ports import TaskPhase, TaskSpec, TaskState
from runvoy_core.ports.compute import make_store_id
from runvoy_core.ratelimit import Retryable, RetryPolicy, retry_call
from runvoy_gcp.calls import classify, is_transient, translate, with_retry
from runvoy_gcp.clients import GcpClients
from runvoy_gcp.config import GcpConfig
from runvoy_gcp.registries import cloud_run_image
from runvoy_gcp.secrets import SecretRef, parse_secrets
from runvoy_gcp.sizes import effective_size

CONTAINER = "task"
EXECUTION_ID_ENV = "RUNVOY_EXECUTION_ID"
STORE_LABEL = "runvoy-store"
"""Label of a job (and its executions) naming the store (bucket + prefix) its runs' records are in: reconcile
touches only its own store's executions (decision 0016). Part of the job's content, so each store has its
own jobs."""
MAX_TIMEOUT = 168 * 3600
# how many of the newest executions find() looks through for an execution id
FIND_SCAN_LIMIT = 2000
# start() looks for an execution it may have started already among the job's executions this recent
START_DEDUP_WINDOW = timedelta(hours=1)
_DEADLINE_EXCEEDED = 4
# how many of a job's newest executions one round of the shared poller looks through for the followed ones
BATCH_SCAN_LIMIT = 300
ENDED_KEPT = 1000


def parse_ref(ref: str) -> dict[str, str]:
    parts = ref.split("/")
    if len(parts) != 8 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != "jobs":
        raise NotFound(f"{ref!r} is not a Cloud Run execution name", hint="run: runvoy list")
    return {"project": parts[1], "location": parts[3], "job": parts[5], "execution": parts[7]}


def _env_value(env: Any, name: str) -> str | None:
    for item in env or []:
        if item.name == name and item.value:
            return str(item.value)
    return None


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.timestamp() <= 0:
            return None  # an unset Timestamp
        return value.astimezone(UTC)
    return None


class _JobGone(Exception):
    """``jobs:run`` found no job: it was created again, and the run is tried again at once."""


def _start_verdict(exc: BaseException) -> Retryable | None:
    if isinstance(exc, _JobGone):
        return Retryable("the Cloud Run job disappeared", retry_after=0.0, throttled=False)
    return classify(exc)


class CloudRunCompute:
    def __init__(self, config: GcpConfig, clients: GcpClients, images: dict[str, Any] | None = None) -> None:
        self.config = config
        self.clients = clients
        self._images = images
        """The settings' raw ``[images]`` section: which registries the image check logs in to."""
        self._known_jobs: set[str] = set()
        self._started: dict[str, str] = {}
        """Execution id -> ref of the runs this process started (a repeated start() costs no call)."""
        self._ended: dict[str, TaskState] = {}
        """The final states of ended executions ``status_many`` saw (the oldest dropped first)."""
        self._ended_lock = threading.Lock()

    # -- helpers -------------------------------------------------------------------------------------
    def _retry(
        self, fn: Any, what: str, passthrough: tuple[type[BaseException], ...] = (gexc.NotFound,)
    ) -> Any:
        """Run ``fn`` with the transient-retry policy; ``passthrough`` errors reach the caller as they are,
        any other API error becomes a runvoy error."""
        try:
            return with_retry(
                fn, what, attempts=self.config.retry_attempts, backoff=self.config.retry_backoff
            )
        except passthrough:
            raise
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError) as exc:
            raise translate(exc, what) from None

    @property
    def _timeout(self) -> float:
        return self.config.request_timeout

    @property
    def store_id(self) -> str:
        return make_store_id("gcp", self.clients.bucket_name, self.config.bucket_prefix)

    def location(self, region: str | None) -> str:
        return f"projects/{self.clients.project}/locations/{region or self.config.region}"

    # -- validate ------------------------------------------------------------------------------------
    def image_for(self, image: str | None) -> str:
        """The image Cloud Run is given (through a mapped remote repository); refuses what it cannot pull."""
        return cloud_run_image(image or self.config.image, self.config.registry_remotes, self._images)

    def validate(self, request: ExecutionRequest) -> None:
        effective_size(request.resources)
        self.image_for(request.image)
        refs = parse_secrets(list(request.secrets))
        clash = sorted({r.env_name for r in refs} & set(request.env))
        if clash:
            raise ValidationFailed(
                f"environment variable {clash[0]} is also set from a secret",
                hint="rename the variable or drop the secret",
            )
        if request.timeout is not None and request.timeout > MAX_TIMEOUT:
            raise ValidationFailed(
                f"timeout {request.timeout:.0f}s is longer than Cloud Run's 168 hours",
                hint="choose a --timeout of at most 168h",
            )

    # -- jobs ----------------------------------------------------------------------------------------
    def job_content(self, spec: TaskSpec) -> dict[str, Any]:
        vcpu, memory = effective_size(spec.resources)
        return {
            "image": self.image_for(spec.image),
            "entrypoint": spec.argv[0],
            "cpu": str(vcpu),
            "memory": f"{memory}Mi",
            "secrets": [[r.env_name, r.secret, r.version] for r in parse_secrets(spec.secrets)],
            "service_account": self.config.service_account,
            "workdir": spec.workdir,
            "timeout": int(self.config.default_timeout),
            "labels": dict(sorted({**self.config.labels, STORE_LABEL: self.store_id}.items())),
        }

    def job_id(self, content: dict[str, Any]) -> str:
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.config.job_prefix}-{digest}"

    def _job_resource(self, content: dict[str, Any]) -> Any:
        env = [
            run_v2.EnvVar(
                name=env_name,
                value_source=run_v2.EnvVarSource(
                    secret_key_ref=run_v2.SecretKeySelector(secret=secret, version=version)
                ),
            )
            for env_name, secret, version in content["secrets"]
        ]
        container = run_v2.Container(
            name=CONTAINER,
            image=content["image"],
            command=[content["entrypoint"]],
            env=env,
            resources=run_v2.ResourceRequirements(
                limits={"cpu": content["cpu"], "memory": content["memory"]}
            ),
        )
        if content["workdir"]:
            container.working_dir = content["workdir"]
        task = run_v2.TaskTemplate(
            containers=[container], max_retries=0, timeout={"seconds": content["timeout"]}
        )
        if content["service_account"]:
            task.service_account = content["service_account"]
        labels = {"managed-by": "runvoy", "runvoy-hash": content_hash_label(content), **content["labels"]}
        return run_v2.Job(
            labels=labels,
            # executions take their labels from the execution template
            template=run_v2.ExecutionTemplate(
                task_count=1,
                parallelism=1,
                template=task,
                labels={k: v for k, v in content["labels"].items() if k == STORE_LABEL},
            ),
        )

    def ensure_job(self, location: str, content: dict[str, Any]) -> str:
        job_id = self.job_id(content)
        name = f"{location}/jobs/{job_id}"
        if name in self._known_jobs:
            return name
        try:
            self._retry(
                lambda: self.clients.jobs.get_job(name=name, timeout=self._timeout), "get Cloud Run job"
            )
        except gexc.NotFound:
            self._create_job(location, job_id, content)
        self._known_jobs.add(name)
        return name

    def _create_job(self, location: str, job_id: str, content: dict[str, Any]) -> None:
        job = self._job_resource(content)

        def create() -> None:
            try:
                operation = self.clients.jobs.create_job(
                    parent=location, job=job, job_id=job_id, timeout=self._timeout
                )
                operation.result(timeout=max(self._timeout, 60))
            except gexc.Conflict:
                # another runner (or our own attempt whose answer was lost) created the same content first:
                # it is the same job. Over REST a 409 is raised as Conflict, over gRPC as AlreadyExists
                pass

        try:
            self._retry(create, f"create Cloud Run job {job_id}", passthrough=())
        except (TransientProviderError, PermissionDenied, NotAuthenticated):
            raise  # a missing role is said as such, with the role to grant
        except ProviderError as exc:
            raise StartFailed(exc.message, hint=exc.hint) from None

    # -- start ---------------------------------------------------------------------------------------
    def _check_secrets(self, refs: list[SecretRef]) -> None:
        if not refs or not self.config.check_secrets:
            return
        project = self.clients.project
        for ref in refs:
            name = ref.resource_name(project)
            try:
                self._retry(
                    lambda name=name: self.clients.secrets.get_secret(name=name, timeout=self._timeout),
                    "read Secret Manager",
                )
            except gexc.NotFound:
                raise StartFailed(
                    f"secret {ref.secret_id!r} does not exist in Secret Manager",
                    hint=f"create it: gcloud secrets create {ref.secret_id} --data-file=-",
                ) from None

    def _overrides(self, spec: TaskSpec, env: dict[str, str]) -> Any:
        args = list(spec.argv[1:])
        override = run_v2.RunJobRequest.Overrides.ContainerOverride(
            name=CONTAINER,
            args=args,
            clear_args=not args,
            env=[run_v2.EnvVar(name=k, value=v) for k, v in sorted(env.items())],
        )
        timeout = math.ceil(min(spec.timeout or self.config.default_timeout, MAX_TIMEOUT))
        return run_v2.RunJobRequest.Overrides(
            container_overrides=[override], task_count=1, timeout={"seconds": timeout}
        )

    def _latest(self, job_name: str) -> str | None:
        job = self._retry(
            lambda: self.clients.jobs.get_job(name=job_name, timeout=self._timeout), "get Cloud Run job"
        )
        latest = job.latest_created_execution.name if "latest_created_execution" in job else ""
        return latest or None

    def start(self, spec: TaskSpec, idempotency_key: str) -> str:
        location = self.location(spec.region)
        content = self.job_content(spec)
        self._check_secrets(parse_secrets(spec.secrets))
        job_name = self.ensure_job(location, content)
        env = {**spec.env, EXECUTION_ID_ENV: idempotency_key}
        request = run_v2.RunJobRequest(name=job_name, overrides=self._overrides(spec, env))
        existing = self._started.get(idempotency_key) or self._recent_execution(job_name, idempotency_key)
        if existing is not None:
            return existing
        job = [job_name]
        errors: list[BaseException] = []
        gone = [0]

        def attempt() -> str:
            before: str | None = None
            try:
                before = self._latest(job[0])
                operation = self.clients.jobs.run_job(request=request, timeout=self._timeout)
            except gexc.NotFound:
                # the job was deleted behind our back (a person cleaning up): create it again
                self._known_jobs.discard(job[0])
                job[0] = self.ensure_job(location, content)
                gone[0] += 1
                raise _JobGone from None
            except Exception as exc:
                if not is_transient(exc):
                    if isinstance(exc, gexc.GoogleAPICallError):
                        err = translate(exc, f"run Cloud Run job {job[0].rsplit('/', 1)[1]}")
                        if isinstance(err, PermissionDenied | NotAuthenticated):
                            raise err from None
                        raise StartFailed(err.message, hint=err.hint) from None
                    raise
                errors.append(exc)
                # unknown outcome: the execution may exist server-side although the answer was lost
                found = self._find_since(job[0], before, idempotency_key)
                if found is not None:
                    return found
                raise
            return str(operation.metadata.name)

        policy = RetryPolicy(
            attempts=self.config.retry_attempts,
            base_delay=self.config.retry_backoff,
            max_delay=10.0,
            total=120.0,
        )
        try:
            ref = retry_call(
                attempt,
                what="run Cloud Run job",
                classify=_start_verdict,
                policy=policy,
                clock=self.clients.clock,
            )
        except TransientProviderError:
            if errors:
                raise translate(errors[-1], "run Cloud Run job") from None
            if gone[0]:
                raise StartFailed(
                    f"Cloud Run job {job[0]} keeps disappearing", hint="check who deletes runvoy jobs"
                ) from None
            raise
        self._started[idempotency_key] = ref
        return ref

    def _recent_execution(self, job_name: str, key: str) -> str | None:
        """A start repeated by another process (after a crash) returns the execution the first one created,
        when the job's recent executions show the key in their template (one list call; the deeper look-up
        through tasks is find()'s, which the runner calls after an ambiguous start)."""
        try:
            if self._latest(job_name) is None:
                return None
        except gexc.NotFound:
            return None
        horizon = datetime.now(UTC) - START_DEDUP_WINDOW
        for execution in self._executions(job_name):
            created = _when(execution.create_time)
            if created is not None and created < horizon:
                break
            if self.execution_key(execution, deep=False) == key:
                return str(execution.name)
        return None

    def _find_since(self, job_name: str, before: str | None, key: str) -> str | None:
        """After an ambiguous run: our execution, if the job got one since ``before``."""
        latest = self._latest(job_name)
        if latest is None or latest == before:
            return None
        for execution in self._executions(job_name):
            if execution.name == before:
                break
            if self.execution_key(execution) == key:
                return str(execution.name)
        return None

    def _executions(self, parent: str, limit: int = FIND_SCAN_LIMIT) -> Iterator[Any]:
        """Executions newest first; a throttled page is retried, not fatal."""
        pager = self._retry(
            lambda: self.clients.executions.list_executions(
                request={"parent": parent, "page_size": 100}, timeout=self._timeout
            ),
            "list Cloud Run executions",
        )
        count = 0
        while True:
            for execution in pager.executions if hasattr(pager, "executions") else []:
                yield execution
                count += 1
                if count >= limit:
                    return
            token = pager.next_page_token
            if not token:
                return
            pager = self._retry(
                lambda token=token: self.clients.executions.list_executions(
                    request={"parent": parent, "page_size": 100, "page_token": token}, timeout=self._timeout
                ),
                "list Cloud Run executions",
            )

    def execution_key(self, execution: Any, *, deep: bool = True) -> str | None:
        """The runvoy execution id in an execution's environment: in its template when Cloud Run shows the
        overrides there, else (``deep``) in its task's container (one more call)."""
        containers = execution.template.containers if "template" in execution else []
        for container in containers:
            value = _env_value(container.env, EXECUTION_ID_ENV)
            if value:
                return value
        if not deep or not execution.name:
            return None
        try:
            task = self._first_task(str(execution.name))
        except gexc.NotFound:
            return None
        for container in task.containers if task is not None else []:
            value = _env_value(container.env, EXECUTION_ID_ENV)
            if value:
                return value
        return None

    # -- describe ------------------------------------------------------------------------------------
    def describe(self, ref: str) -> TaskState:
        parse_ref(ref)
        try:
            execution = self._retry(
                lambda: self.clients.executions.get_execution(name=ref, timeout=self._timeout),
                "get Cloud Run execution",
            )
        except gexc.NotFound:
            return TaskState(
                ref=ref, phase=TaskPhase.UNKNOWN, reason="the Cloud Run execution no longer exists"
            )
        return self._state_of(ref, execution)

    def status_many(self, refs: Sequence[str]) -> dict[str, TaskState]:
        """The shared poller's round: one ``executions.list`` of each job that two or more of the refs run
        on (newest first, so the followed executions are on its first page), a get for the rest; an ended
        execution costs one more call, once (its state is final, and kept)."""
        by_job: dict[str, set[str]] = {}
        states: dict[str, TaskState] = {}
        for ref in dict.fromkeys(refs):
            parse_ref(ref)
            ended = self._ended.get(ref)
            if ended is not None:
                states[ref] = ended
            else:
                by_job.setdefault(ref.rsplit("/executions/", 1)[0], set()).add(ref)
        for job, wanted in by_job.items():
            if len(wanted) > 1:
                try:
                    for execution in self._executions(job, limit=BATCH_SCAN_LIMIT):
                        name = str(execution.name)
                        if name in wanted:
                            wanted.discard(name)
                            states[name] = self._state_of(name, execution)
                            if not wanted:
                                break
                except gexc.NotFound:
                    pass  # the job is gone: each execution is asked about (and found UNKNOWN) below
            for ref in wanted:
                states[ref] = self.describe(ref)
        return states

    def _state_of(self, ref: str, execution: Any) -> TaskState:
        if _when(execution.completion_time) is None:
            return self._active_state(ref, execution)
        state = self._ended_state(ref, execution, self._first_task(ref))
        with self._ended_lock:
            if len(self._ended) >= ENDED_KEPT:
                self._ended.pop(next(iter(self._ended)))
            self._ended[ref] = state
        return state

    def _first_task(self, ref: str) -> Any:
        page = self._retry(
            lambda: self.clients.tasks.list_tasks(
                request={"parent": ref, "page_size": 10}, timeout=self._timeout
            ),
            "list Cloud Run tasks",
        )
        for task in page.tasks:
            return task
        return None

    def _common(self, ref: str, execution: Any) -> dict[str, Any]:
        started = _when(execution.start_time)
        container = execution.template.containers[0] if execution.template.containers else None
        limits = dict(container.resources.limits) if container is not None else {}
        return {
            "ref": ref,
            "execution_id": self.execution_key(execution),
            "started_at": started,
            "billed_start": started,
            "detail": {
                "execution": execution.name,
                "job": execution.job,
                "log_uri": execution.log_uri,
                "cpu": limits.get("cpu"),
                "memory": limits.get("memory"),
            },
        }

    def _active_state(self, ref: str, execution: Any) -> TaskState:
        common = self._common(ref, execution)
        cancelling = any(
            c.execution_reason == run_v2.Condition.ExecutionReason.CANCELLING for c in execution.conditions
        )
        if cancelling:
            phase = TaskPhase.STOPPING
        elif common["started_at"] is not None:
            phase = TaskPhase.RUNNING
        elif any(
            c.type_ == "ResourcesAvailable" and c.state == run_v2.Condition.State.CONDITION_SUCCEEDED
            for c in execution.conditions
        ):
            phase = TaskPhase.STARTING
        else:
            phase = TaskPhase.PENDING
        return TaskState(phase=phase, **common)

    def _ended_state(self, ref: str, execution: Any, task: Any) -> TaskState:
        common = self._common(ref, execution)
        stopped = _when(execution.completion_time)
        completed = next((c for c in execution.conditions if c.type_ == "Completed"), None)
        cancelled = execution.cancelled_count > 0 or (
            completed is not None and completed.execution_reason == run_v2.Condition.ExecutionReason.CANCELLED
        )
        state: dict[str, Any] = {
            **common,
            "phase": TaskPhase.STOPPED,
            "stopped_at": stopped,
            "billed_stop": stopped if common["started_at"] is not None else None,
            "stopped_by_request": cancelled,
        }
        attempt = task.last_attempt_result if task is not None and "last_attempt_result" in task else None
        if execution.succeeded_count > 0:
            state["exit_code"] = 0
        elif attempt is not None:
            code = attempt.status.code if "status" in attempt else 0
            if attempt.term_signal:
                state["signal"] = attempt.term_signal
                state["exit_code"] = 128 + attempt.term_signal
                state["reason"] = f"killed by signal {attempt.term_signal}"
            else:
                state["exit_code"] = attempt.exit_code
            if code == _DEADLINE_EXCEEDED:
                state["timed_out"] = True
                state["reason"] = "Cloud Run stopped the task at its timeout"
            if not attempt.exit_code and not attempt.term_signal and not cancelled and code:
                state["exit_code"] = None
                state["reason"] = attempt.status.message or "the task failed"
        if common["started_at"] is None and not cancelled:
            state["failed_to_start"] = True
            state["exit_code"] = None
            state["reason"] = (completed.message if completed is not None else "") or "the task never started"
        if cancelled:
            state.setdefault("reason", "cancelled")
        return TaskState(**state)

    # -- stop ----------------------------------------------------------------------------------------
    def stop(self, ref: str, grace: float, *, force: bool = False) -> None:
        """Cloud Run offers no graceful stop with a chosen grace: ``cancel`` is the only stop (``grace`` and
        ``force`` make no difference)."""
        parse_ref(ref)

        def cancel() -> None:
            try:
                self.clients.executions.cancel_execution(name=ref, timeout=self._timeout)
            except (gexc.NotFound, gexc.FailedPrecondition):
                pass  # gone or already finished: nothing left to stop
            except gexc.BadRequest as exc:
                if "complete" not in str(exc).lower():
                    raise

        try:
            self._retry(cancel, "cancel Cloud Run execution")
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError) as exc:
            raise translate(exc, "cancel Cloud Run execution") from None

    # -- find / list_active / cleanup ----------------------------------------------------------------
    def _runvoy_executions(self) -> Iterator[Any]:
        prefix = self.config.job_prefix + "-"
        for execution in self._executions(f"{self.location(None)}/jobs/-"):
            if execution.job.startswith(prefix):
                yield execution

    def find(self, execution_id: str) -> str | None:
        for execution in self._runvoy_executions():
            if self.execution_key(execution) == execution_id:
                return str(execution.name)
        return None

    def list_active(self) -> list[TaskState]:
        active = []
        horizon = datetime.now(UTC) - timedelta(days=8)  # longer than any task can run (168 h)
        for execution in self._runvoy_executions():
            created = _when(execution.create_time)
            if created is not None and created < horizon:
                break
            if _when(execution.completion_time) is None:
                state = self._active_state(str(execution.name), execution)
                active.append(state.model_copy(update={"store_id": execution.labels.get(STORE_LABEL)}))
        return active

    def cleanup(self, ref: str) -> None:
        """Nothing to release: an ended execution holds no capacity, and the job is reused."""


def content_hash_label(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
