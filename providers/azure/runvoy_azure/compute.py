"""Compute on Azure Container Instances: one container group per execution.

- The group's name is derived from the execution id alone, and start looks the group up before creating
  it: a create that timed out on the client but succeeded in Azure is found, never created twice. The
  create PUT is sent without SDK retries (a repeated PUT on an ended group would redeploy it and run the
  command again); throttling and ambiguous failures are retried here, each time after a fresh look-up.
- ``restartPolicy: Never`` (the default, Always, would rerun the command forever); Linux; Spot on request.
- Secrets go in ``secure_value`` environment variables.
- stop = archive the log so far (ACI drops a stopped group's logs), then the ``stop`` API. Ended groups
  are deleted by ``cleanup`` once their log is archived; their final state is kept in Blob storage so that
  a later ``describe`` still answers.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from runvoy_azure.archive import BlobArchive
from runvoy_azure.clients import AzureClients, azure_call, error_message, is_not_found, status_of
from runvoy_azure.config import AzureConfig
from runvoy_azure.logs import AciLogs
from runvoy_azure.names import TAG_EXECUTION, TAG_MARKER, TAG_REQUEST, group_name, make_ref, split_ref
from runvoy_azure.secrets import SecretResolver
from runvoy_azure.sizes import validate_size
from runvoy_azure.states import task_state
from runvoy_core.errors import NotFound, StartFailed, TransientProviderError, UsageError
from runvoy_core.logging import get_logger
from runvoy_core.models import ExecutionRequest
from runvoy_core.ports import TaskPhase, TaskSpec, TaskState

log = get_logger("runvoy.azure.compute")

CREATE_ATTEMPTS = 4
MAX_RETRY_AFTER = 30.0
# an ended group nobody cleaned up (its watcher died) is removed by list_active after this long
LEFTOVER_AFTER = timedelta(minutes=10)


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return min(float(value), MAX_RETRY_AFTER) if value is not None else None
    except ValueError:
        return None


class AciCompute:
    def __init__(
        self,
        clients: AzureClients,
        config: AzureConfig,
        logs: AciLogs,
        archive: BlobArchive,
        secrets: SecretResolver,
    ) -> None:
        self._clients = clients
        self._config = config
        self._logs = logs
        self._archive = archive
        self._secrets = secrets

    @property
    def _aci(self) -> Any:
        return self._clients.aci

    # -- validate ---------------------------------------------------------------------------------------------
    def validate(self, request: ExecutionRequest) -> None:
        resources = request.resources
        if resources.architecture.value != "x86_64":
            raise UsageError(
                f"--arch {resources.architecture.value}: Azure Container Instances runs Linux containers on x86_64 only",
                hint="drop --arch, or pick a provider with arm64 (runvoy providers)",
            )
        validate_size(resources, max_cpu=self._config.max_cpu, max_memory_gb=self._config.max_memory_gb)

    # -- start ------------------------------------------------------------------------------------------------
    def _group_body(self, spec: TaskSpec, key: str) -> Any:
        from azure.mgmt.containerinstance import models as m

        cpu, memory_gb = validate_size(
            spec.resources, max_cpu=self._config.max_cpu, max_memory_gb=self._config.max_memory_gb
        )
        env = [m.EnvironmentVariable(name=k, value=v) for k, v in sorted(spec.env.items())]
        if spec.secrets:
            env += [
                m.EnvironmentVariable(name=k, secure_value=v)
                for k, v in sorted(self._secrets.resolve(spec.secrets).items())
            ]
        command = list(spec.argv)
        if spec.workdir:  # ACI has no working-directory field
            command = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', spec.workdir, *command]
        tags = {**self._config.tags, TAG_MARKER: "1", TAG_EXECUTION: key}
        if spec.request_id:
            tags[TAG_REQUEST] = spec.request_id
        container = m.Container(
            name=self._config.container_name,
            image=spec.image or self._config.default_image,
            command=command,
            environment_variables=env,
            resources=m.ResourceRequirements(requests=m.ResourceRequests(cpu=cpu, memory_in_gb=memory_gb)),
        )
        return m.ContainerGroup(
            location=spec.region or self._config.location,
            containers=[container],
            os_type="Linux",
            restart_policy="Never",
            priority="Spot" if spec.resources.spot else None,
            tags=tags,
        )

    def _get(self, group_rg: str, name: str) -> Any | None:
        with azure_call(f"read container group {name}"):
            try:
                return self._aci.container_groups.get(
                    group_rg, name, read_timeout=self._config.request_timeout
                )
            except Exception as exc:
                if is_not_found(exc):
                    return None
                raise

    def _adopt(self, group: Any, key: str, group_rg: str, name: str) -> str:
        owner = (group.tags or {}).get(TAG_EXECUTION)
        if owner != key:
            raise StartFailed(
                f"container group {group_rg}/{name} already exists and belongs to {owner or 'something else'}",
                hint="delete it (az container delete) or choose another resource group",
            )
        return make_ref(group_rg, name)

    def start(self, spec: TaskSpec, idempotency_key: str) -> str:
        group_rg, name = self._config.resource_group, group_name(idempotency_key)
        body = self._group_body(spec, idempotency_key)
        delay = 1.0
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            existing = self._get(group_rg, name)
            if existing is not None:
                return self._adopt(existing, idempotency_key, group_rg, name)
            try:
                self._aci.container_groups.begin_create_or_update(
                    group_rg,
                    name,
                    body,
                    polling=False,  # placement can take minutes: describe() follows it
                    retry_total=0,
                    read_timeout=self._config.create_timeout,
                )
                return make_ref(group_rg, name)
            except Exception as exc:
                wait = self._create_retry_wait(exc, name, delay)
                log.warning("aci.create_retry", group=name, attempt=attempt, error=error_message(exc))
                if attempt == CREATE_ATTEMPTS:
                    raise TransientProviderError(
                        f"creating container group {name} did not succeed after {attempt} attempts "
                        f"({error_message(exc)})"
                    ) from None
                time.sleep(wait)
                delay = min(delay * 2, MAX_RETRY_AFTER)
        raise AssertionError("unreachable")

    def _create_retry_wait(self, exc: Exception, name: str, delay: float) -> float:
        """How long to wait before looking again; raises for a create that can never succeed."""
        from azure.core import exceptions as azexc

        if isinstance(exc, azexc.ServiceRequestError | azexc.ServiceResponseError):
            return 0.0 if isinstance(exc, azexc.ServiceResponseError) else delay
        status = status_of(exc)
        if status == 429 or (status is not None and status >= 500) or status == 409:
            return _retry_after(exc) or delay
        if isinstance(exc, azexc.HttpResponseError):
            with azure_call(f"create container group {name}"):
                raise exc
        raise exc

    # -- observe ----------------------------------------------------------------------------------------------
    def describe(self, ref: str) -> TaskState:
        group_rg, name = split_ref(ref, self._config.resource_group)
        group = self._get(group_rg, name)
        if group is not None:
            return task_state(ref, group, self._config.container_name)
        final = self._archive.read_state(name)
        if final is not None:
            return final.model_copy(update={"ref": ref})
        return TaskState(
            ref=ref, phase=TaskPhase.UNKNOWN, reason=f"container group {group_rg}/{name} no longer exists"
        )

    def find(self, execution_id: str) -> str | None:
        group_rg, name = self._config.resource_group, group_name(execution_id)
        group = self._get(group_rg, name)
        if group is not None and (group.tags or {}).get(TAG_EXECUTION) == execution_id:
            return make_ref(group_rg, name)
        if self._archive.read_state(name) is not None:
            return make_ref(group_rg, name)
        return None

    def list_active(self) -> list[TaskState]:
        group_rg = self._config.resource_group
        try:
            with azure_call(f"list container groups in {group_rg}"):
                listed = list(self._aci.container_groups.list_by_resource_group(group_rg))
        except NotFound:
            return []  # no resource group yet: nothing of runvoy's runs there
        active: list[TaskState] = []
        for item in listed:
            if (item.tags or {}).get(TAG_MARKER) != "1":
                continue
            # a listing carries no instance view: read each runvoy group
            group = self._get(group_rg, item.name)
            if group is None:
                continue
            ref = make_ref(group_rg, item.name)
            state = task_state(ref, group, self._config.container_name)
            if not state.ended:
                active.append(state)
            elif state.stopped_at is not None and datetime.now(UTC) - state.stopped_at > LEFTOVER_AFTER:
                try:
                    self.cleanup(ref)
                except Exception as exc:
                    log.warning("aci.leftover_cleanup_failed", group=item.name, error=str(exc))
        return active

    # -- stop / cleanup ---------------------------------------------------------------------------------------
    def stop(self, ref: str, grace: float, *, force: bool = False) -> None:
        """ACI's stop ends every container at once (no grace period is offered by the API)."""
        group_rg, name = split_ref(ref, self._config.resource_group)
        try:
            self._logs.archive(ref)
        except Exception as exc:  # the stop matters more than the snapshot
            log.warning("aci.pre_stop_archive_failed", group=name, error=str(exc))
        with azure_call(f"stop container group {name}"):
            try:
                self._aci.container_groups.stop(group_rg, name, read_timeout=self._config.request_timeout)
            except Exception as exc:
                if is_not_found(exc):
                    return
                raise

    def cleanup(self, ref: str) -> None:
        """Delete an ended group, after its log is archived and its final state saved."""
        group_rg, name = split_ref(ref, self._config.resource_group)
        group = self._get(group_rg, name)
        if group is None:
            return
        state = task_state(ref, group, self._config.container_name)
        if not state.ended:
            log.warning("aci.cleanup_refused", group=name, phase=state.phase.value)
            return
        self._logs.archive(ref, state.execution_id)
        self._archive.write_state(name, state)
        with azure_call(f"delete container group {name}"):
            try:
                self._aci.container_groups.begin_delete(
                    group_rg, name, polling=False, read_timeout=self._config.request_timeout
                )
            except Exception as exc:
                if is_not_found(exc):
                    return
                raise
