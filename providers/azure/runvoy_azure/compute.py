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

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from runvoy_azure.archive import BlobArchive
from runvoy_azure.clients import (
    AzureClients,
    azure_call,
    error_message,
    is_not_found,
    retryable,
    status_of,
)
from runvoy_azure.config import AzureConfig
from runvoy_azure.logs import AciLogs
from runvoy_azure.names import TAG_EXECUTION, TAG_MARKER, TAG_REQUEST, group_name, make_ref, split_ref
from runvoy_azure.registries import group_credentials
from runvoy_azure.secrets import SecretResolver
from runvoy_azure.sizes import validate_size
from runvoy_azure.states import task_state
from runvoy_core.errors import NotFound, StartFailed, UsageError
from runvoy_core.logging import get_logger
from runvoy_core.models import ExecutionRequest
from runvoy_core.ports import TaskPhase, TaskSpec, TaskState
from runvoy_core.ports.compute import make_store_id
from runvoy_core.ratelimit import Retryable, RetryPolicy, parse_retry_after, retry_call

log = get_logger("runvoy.azure.compute")

CREATE_ATTEMPTS = 4
MAX_CREATE_DELAY = 30.0
# an ended group nobody cleaned up (its watcher died) is a leftover for reconcile after this long
LEFTOVER_AFTER = timedelta(minutes=10)
TAG_STORE = "runvoy-store"
TAG_SECRETS = "runvoy-secrets"
"""The run's ``--secret`` names, comma-separated, when they fit in a tag: the archives written before a stop
and at cleanup mask their values (decision 1901); the runner's archive masks them in any case."""
MAX_TAG_VALUE = 256
"""The id of the store (account + executions table) a group's record is in: reconcile touches only its own."""


def _create_verdict(exc: BaseException) -> Retryable | None:
    """A create that may succeed when sent again, after a fresh look-up: throttling and 5xx (Retry-After
    honoured), a 409 while an earlier PUT of the group is still in progress, and no answer at all (looked
    up at once: the create may have been carried out)."""
    from azure.core import exceptions as azexc

    if isinstance(exc, azexc.ServiceResponseError):
        return Retryable(f"no answer from Azure ({type(exc).__name__})", retry_after=0.0, throttled=False)
    if status_of(exc) == 409:
        return Retryable(error_message(exc), parse_retry_after(_headers(exc).get("Retry-After")), False)
    return retryable(exc)


def _headers(exc: BaseException) -> Any:
    return getattr(getattr(exc, "response", None), "headers", None) or {}


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

    @property
    def store_id(self) -> str:
        config = self._config
        account = config.storage_account or config.table_endpoint or ""
        if not account and config.storage_connection_string:
            found = re.search(r"AccountName=([^;]+)", config.storage_connection_string.get_secret_value())
            account = found.group(1) if found else ""
        return make_store_id("azure", account, config.executions_table)

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
        tags = {**self._config.tags, TAG_MARKER: "1", TAG_EXECUTION: key, TAG_STORE: self.store_id}
        if spec.request_id:
            tags[TAG_REQUEST] = spec.request_id
        if spec.secrets and len(names := ",".join(sorted(spec.secrets))) <= MAX_TAG_VALUE:
            tags[TAG_SECRETS] = names  # names only: the archives this provider writes mask their values
        image = spec.image or self._config.default_image
        registry_credentials, identity = group_credentials(image, self._config, self._secrets)
        container = m.Container(
            name=self._config.container_name,
            image=image,
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
            image_registry_credentials=registry_credentials or None,
            identity=identity,
        )

    def _get(self, group_rg: str, name: str) -> Any | None:
        def call() -> Any | None:
            try:
                return self._aci.container_groups.get(
                    group_rg, name, read_timeout=self._config.request_timeout, retry_total=0
                )
            except Exception as exc:
                if is_not_found(exc):
                    return None
                raise

        return self._clients.arm_read(f"read container group {name}", call)

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

        def attempt() -> str:
            # every attempt looks first: a create whose answer was lost may have succeeded
            existing = self._get(group_rg, name)
            if existing is not None:
                return self._adopt(existing, idempotency_key, group_rg, name)
            self._aci.container_groups.begin_create_or_update(
                group_rg,
                name,
                body,
                polling=False,  # placement can take minutes: describe() follows it
                retry_total=0,
                read_timeout=self._config.create_timeout,
            )
            return make_ref(group_rg, name)

        def on_retry(attempt: int, verdict: Retryable, delay: float) -> None:
            log.warning("aci.create_retry", group=name, attempt=attempt, error=verdict.reason)

        policy = RetryPolicy(
            attempts=CREATE_ATTEMPTS, base_delay=1.0, max_delay=MAX_CREATE_DELAY, total=120.0
        )
        with azure_call(f"create container group {name}"):
            return retry_call(
                attempt,
                what=f"create container group {name}",
                classify=_create_verdict,
                policy=policy,
                clock=self._clients.clock,
                on_retry=on_retry,
            )

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

    def _runvoy_groups(self) -> list[TaskState]:
        """Every runvoy group in the resource group, read only (a listing carries no instance view: each
        runvoy group is read)."""
        group_rg = self._config.resource_group
        try:
            with azure_call(f"list container groups in {group_rg}"):
                listed = list(self._aci.container_groups.list_by_resource_group(group_rg))
        except NotFound:
            return []  # no resource group yet: nothing of runvoy's runs there
        states: list[TaskState] = []
        for item in listed:
            if (item.tags or {}).get(TAG_MARKER) != "1":
                continue
            group = self._get(group_rg, item.name)
            if group is None:
                continue
            state = task_state(make_ref(group_rg, item.name), group, self._config.container_name)
            states.append(state.model_copy(update={"store_id": (group.tags or {}).get(TAG_STORE)}))
        return states

    def list_active(self) -> list[TaskState]:
        return [state for state in self._runvoy_groups() if not state.ended]

    def leftovers(self) -> list[TaskState]:
        """Ended groups nobody deleted (their watcher died) for a while; reconcile cleans up its own store's.
        Listing them deletes nothing: ``reconcile --dry-run`` must change nothing (decision 0015)."""
        now = datetime.now(UTC)
        return [
            state
            for state in self._runvoy_groups()
            if state.ended and state.stopped_at is not None and now - state.stopped_at > LEFTOVER_AFTER
        ]

    # -- stop / cleanup ---------------------------------------------------------------------------------------
    def _mask(self, group: Any) -> Callable[[str], str] | None:
        """What hides the group's secrets in the archive this provider writes (decision 1901)."""
        names = [
            n for n in ((group.tags or {}).get(TAG_SECRETS, "") if group is not None else "").split(",") if n
        ]
        if not names:
            return None
        from runvoy_core.masking import text_masker

        masker = text_masker(self._secrets.resolve(names).values())
        return masker.mask if masker is not None else None

    def stop(self, ref: str, grace: float, *, force: bool = False) -> None:
        """ACI's stop ends every container at once (no grace period is offered by the API)."""
        group_rg, name = split_ref(ref, self._config.resource_group)
        try:
            mask = self._mask(self._get(group_rg, name))
        except Exception as exc:  # unmasked for now: the runner's archive at the end masks it again
            log.warning("aci.pre_stop_mask_failed", group=name, error=str(exc))
            mask = None
        try:
            self._logs.archive(ref, mask=mask)
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
        self._logs.archive(ref, state.execution_id, mask=self._mask(group))
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
