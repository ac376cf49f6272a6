"""The RunvoyError tree. Every error carries a one-line hint a user can act on.

The CLI prints ``error: <message>`` and ``hint: <hint>`` and exits with ``exit_code``
(125 when runvoy itself fails, the ``docker run`` rule; 2 for usage errors; 75 for a held lock).
"""

from __future__ import annotations

from typing import Any


class RunvoyError(Exception):
    """Base of every error runvoy raises on purpose."""

    exit_code: int = 125
    default_hint: str = "run with --log-level debug for details"

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.details = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint, **self.details}


class UsageError(RunvoyError):
    """Bad input: a value or a request that can never be valid. Exit 125 like ``docker run --memory lots``;
    2 is left to the parser's own errors (unknown option, missing argument), as decision 0004 says."""

    exit_code = 125
    default_hint = "see --help for the accepted forms"


class ValidationFailed(UsageError):
    """A request or config value failed validation; the message names the field."""


class ConfigError(RunvoyError):
    default_hint = "check the file named above, or run: runvoy config validate"


class ProviderUnavailable(RunvoyError):
    default_hint = "run: runvoy providers"


class UnknownProvider(ProviderUnavailable):
    pass


class PluginError(RunvoyError):
    default_hint = "run: runvoy providers   (it lists plugins that failed to load, with the reason)"


class CapabilityMissing(UsageError):
    default_hint = "choose a provider that supports it (runvoy providers), or drop the option"


class NotFound(RunvoyError):
    default_hint = "run: runvoy list"


class AmbiguousId(UsageError):
    default_hint = "type more characters of the id"


class AlreadyExists(RunvoyError):
    pass


class VersionConflict(RunvoyError):
    """A compare-and-swap lost: somebody else wrote first."""

    default_hint = "re-read and try again"


class StaleFence(RunvoyError):
    """A write from a holder whose lock grant has been superseded."""

    default_hint = "the lock was taken over by a newer holder; this writer must stop"


class LockHeld(RunvoyError):
    exit_code = 75
    default_hint = "wait for it, use --on-conflict wait, or inspect it with: runvoy locks status NAME"


class LockTimeout(LockHeld):
    pass


class TaskUnrecorded(RunvoyError):
    """A task started but the store kept refusing to record it; it was stopped (``details["stopped"]``)."""

    default_hint = "check the store's health (runvoy reconcile finds a task that could not be stopped)"


class LockLost(RunvoyError):
    default_hint = "the lock could not be renewed in time; the run was stopped to keep the lock's guarantee"


class BudgetExceeded(RunvoyError):
    default_hint = "raise the budget (runvoy budget set), wait for the next period, or drop --enforce"


class ProviderError(RunvoyError):
    """The cloud (or the local machine) refused or failed an operation."""

    default_hint = "check the provider's credentials, quotas and status; retry later if it is transient"


class TransientProviderError(ProviderError):
    """Throttling, 5xx, timeouts: safe to retry after re-checking state."""


class StartFailed(ProviderError):
    pass


class ImageNotSupported(UsageError):
    default_hint = (
        "the local provider runs commands on this machine; configure a container runtime "
        "(RUNVOY_PROVIDERS__LOCAL__CONTAINER_RUNTIME=podman) or pick a cloud provider with --provider"
    )


class InvalidImageReference(UsageError):
    """An image reference that no registry could hold (Docker's reference grammar); the message says which part."""

    default_hint = "write it as [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST], repository in lower case (see docs/images.md)"


class ImagePolicyRefused(UsageError):
    """The ``[images]`` policy refuses the reference; the message names the rule."""

    default_hint = (
        "use an image the policy allows, or change [images] allow/block/require_digest (docs/images.md)"
    )


class ImageCheckFailed(RunvoyError):
    """Checking the image against its registry failed, before anything was recorded or started."""

    default_hint = (
        "check the image with: docker buildx imagetools inspect IMAGE; or skip the check: --no-image-check"
    )


class ImageNotFound(ImageCheckFailed):
    default_hint = "check the repository and tag for typos; push the image first if it is new"


class ImagePlatformMissing(ImageCheckFailed):
    default_hint = (
        "build and push the image for this platform (docker buildx build --platform ...), "
        "or run on an architecture it has (--arch)"
    )


class ImageAuthFailed(ImageCheckFailed):
    default_hint = (
        'configure credentials for this registry under [images.registries."HOST"] '
        "(username_env/password_env or token_env) and check they grant pull (docs/images.md)"
    )


class RegistryUnreachable(ImageCheckFailed):
    default_hint = (
        'check the registry host, the network and TLS (ca_bundle in [images.registries."HOST"]); '
        "retry later if it is transient"
    )
