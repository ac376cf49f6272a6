"""The capabilities a provider declares (standard library only: plugin loading must stay cheap)."""

from __future__ import annotations

import enum


class Capability(enum.StrEnum):
    """What a provider can do, declared once in its ``ProviderSpec.capabilities``. The core refuses a request
    that needs one the provider lacks; the last ten name optional port features (``ports.optional``), and the
    conformance kit checks that a provider declares exactly the ones it implements."""

    IMAGE = "image"  # runs a container image
    SPOT = "spot"
    ARM64 = "arm64"
    GPU = "gpu"
    SECRETS = "secrets"
    GRACEFUL_STOP = "graceful_stop"
    NATIVE_TIMEOUT = "native_timeout"  # enforces the timeout itself, even with nobody watching
    NATIVE_LOG_TAIL = "native_log_tail"
    DETACHED_SUPERVISION = "detached_supervision"
    # optional port features, each a Protocol in runvoy_core.ports.optional
    NATIVE_WAIT = "native_wait"  # compute: WaitingCompute
    RAW_LOGS = "raw_logs"  # logs: RawChunkLogs
    FILE_LOGS = "file_logs"  # logs: FileRangeLogs
    LOG_ARCHIVE = "log_archive"  # logs: ArchivingLogs
    SETUP = "setup"  # provider: SettingUpProvider
    STORE_SCOPED = "store_scoped"  # compute: StoreScoped (tasks tagged with their store's id)
    LEFTOVER_SWEEP = "leftover_sweep"  # compute: LeftoverSweeping (ended tasks that hold resources)
    COST_ROLLUPS = "cost_rollups"  # store: CostRollups (hour buckets of ended runs' costs)
    BATCH_STATUS = "batch_status"  # compute: BatchStatus (many tasks' states in one call)
    DOCUMENTS = "documents"  # store: DocumentStore (namespaced JSON documents with compare-and-swap)
