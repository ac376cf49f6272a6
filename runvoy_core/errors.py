"""The RunvoyError tree. Every error carries a one-line hint a user can act on, and a link to its section
of the error reference (docs/errors.md).

The CLI prints ``error: <message>``, ``hint: <hint>`` and ``docs: <link>`` and exits with ``exit_code``
(125 when runvoy itself fails, the ``docker run`` rule; 2 for usage errors; 75 for a held lock). Every class
states its cause in its docstring's first line and its own ``default_hint``; its ``docs_anchor`` is its name
in lower case, the anchor of its ``## ClassName`` heading in docs/errors.md (tests/core/test_error_reference.py
checks all three for every subclass, providers' included).
"""

from __future__ import annotations

from typing import Any, ClassVar

DOCS_PAGE = "docs/errors.md"
"""Where the error reference lives (in the repository, and as errors/ on the documentation site)."""
DOCUMENTED_PACKAGES = frozenset({"runvoy_core", "runvoy_cli", "runvoy_aws", "runvoy_gcp", "runvoy_azure"})
"""The packages whose error classes each have a section of the error reference."""


class RunvoyError(Exception):
    """runvoy failed in a way no more precise error describes."""

    exit_code: int = 125
    default_hint: str = "run again with --log-level debug for details, and report it if it looks like a bug"
    docs_anchor: ClassVar[str] = "runvoyerror"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # runvoy's own classes each have a section; another package's subclass (a third-party provider's)
        # links its parent's section unless it names one of its own
        if "docs_anchor" not in cls.__dict__ and cls.__module__.split(".")[0] in DOCUMENTED_PACKAGES:
            cls.docs_anchor = cls.__name__.lower()

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.details = details

    def __str__(self) -> str:
        return self.message

    @property
    def docs(self) -> str:
        """The link to this error's section of the error reference."""
        return f"{DOCS_PAGE}#{self.docs_anchor}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "docs": self.docs,
            **self.details,
        }


class UsageError(RunvoyError):
    """Bad input: a value or a request that can never be valid. Exit 125 like ``docker run --memory lots``;
    2 is left to the parser's own errors (unknown option, missing argument), as decision 0004 says."""

    exit_code = 125
    default_hint = "see --help for the accepted forms"


class ValidationFailed(UsageError):
    """A request or config value failed validation; the message names the field."""

    default_hint = "fix the value named above; docs/inputs.md lists every accepted form"


class ConfigError(RunvoyError):
    """The config file, a profile or a RUNVOY_* variable is unreadable or invalid."""

    default_hint = "check the file named above, or run: runvoy config validate"


class ProviderUnavailable(RunvoyError):
    """The selected provider cannot be used: not installed, or its plugin could not start it."""

    default_hint = "run: runvoy providers   (it lists the installed providers and why one failed)"


class UnknownProvider(ProviderUnavailable):
    """No installed provider has this name."""

    default_hint = (
        "pick one listed by: runvoy providers; or install it: pip install 'runvoy[aws]' (or gcp, azure)"
    )


class PluginError(RunvoyError):
    """A provider plugin failed to load or broke its contract."""

    default_hint = "run: runvoy providers   (it lists plugins that failed to load, with the reason)"


class CapabilityMissing(UsageError):
    """The provider does not support an option the request uses."""

    default_hint = "choose a provider that supports it (runvoy providers), or drop the option"


class NotFound(RunvoyError):
    """No execution, lock, budget or cloud resource has this name or id."""

    default_hint = "run: runvoy list"


class AmbiguousId(UsageError):
    """An id prefix matches more than one execution."""

    default_hint = "type more characters of the id"


class AlreadyExists(RunvoyError):
    """Something with this name or id exists already."""

    default_hint = "use another name, or inspect the existing one (runvoy status ID, runvoy budget show NAME)"


class VersionConflict(RunvoyError):
    """A compare-and-swap lost: somebody else wrote first."""

    default_hint = "run the command again: it re-reads the record first"


class StaleFence(RunvoyError):
    """A write from a holder whose lock grant has been superseded."""

    default_hint = (
        "a newer run holds the lock now, so this one stopped writing; see it with: runvoy locks status NAME"
    )


class LockHeld(RunvoyError):
    """The named lock is held by another run (exit code 75)."""

    exit_code = 75
    default_hint = "wait for it, use --on-conflict wait, or inspect it with: runvoy locks status NAME"


class LockTimeout(LockHeld):
    """Waiting for the named lock (--on-conflict wait, queue or cancel) took longer than --lock-timeout."""

    default_hint = "wait longer (--lock-timeout), or see who holds it: runvoy locks status NAME"


class TaskUnrecorded(RunvoyError):
    """A task started but the store kept refusing to record it; it was stopped (``details["stopped"]``)."""

    default_hint = "check the store's health (runvoy reconcile finds a task that could not be stopped)"


class LockLost(RunvoyError):
    """The run's lock could not be renewed in time, so the run was stopped."""

    default_hint = (
        "check that the provider's store answers (runvoy list), then run again; a lock's lease is renewed "
        "through it"
    )


class BudgetExceeded(RunvoyError):
    """An enforced budget is spent for this period; the run was not started."""

    default_hint = "raise the budget (runvoy budget set), wait for the next period, or drop --enforce"


class ProviderError(RunvoyError):
    """The cloud (or the local machine) refused or failed an operation."""

    default_hint = "check the provider's credentials, quotas and status; retry later if it is transient"


class TransientProviderError(ProviderError):
    """The cloud throttled the call, failed with a 5xx or did not answer in time; retrying is safe."""

    default_hint = "retry in a minute (runvoy status ID shows whether a run started); check the cloud's status page if it persists"


class PermissionDenied(ProviderError):
    """The cloud identity runvoy uses lacks a permission (AWS AccessDenied, GCP 403, Azure AuthorizationFailed)."""

    default_hint = (
        "grant the permission named above to the identity runvoy uses; each cloud's minimal set is in its "
        "provider's README (providers/aws, providers/gcp, providers/azure)"
    )


class NotAuthenticated(ProviderError):
    """No cloud credentials were found, or they are invalid or expired."""

    default_hint = (
        "sign in again: aws sso login / aws configure, gcloud auth application-default login, or az login"
    )


class StartFailed(ProviderError):
    """The cloud refused or failed to start the run's task; nothing is running."""

    default_hint = "check what the provider needs with: runvoy setup --dry-run; then run again"


class ImageNotSupported(UsageError):
    """--image was given to the local provider, which has no container runtime configured."""

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
    """The registry has no such repository, tag or digest."""

    default_hint = "check the repository and tag for typos; push the image first if it is new"


class ImagePlatformMissing(ImageCheckFailed):
    """The image has no variant for the run's CPU architecture."""

    default_hint = (
        "build and push the image for this platform (docker buildx build --platform ...), "
        "or run on an architecture it has (--arch)"
    )


class ImageAuthFailed(ImageCheckFailed):
    """The registry refused runvoy's credentials (or asked for some) when checking the image."""

    default_hint = (
        'configure credentials for this registry under [images.registries."HOST"] '
        "(username_env/password_env or token_env) and check they grant pull (docs/images.md)"
    )


class RegistryUnreachable(ImageCheckFailed):
    """The image's registry did not answer, or its TLS certificate was refused."""

    default_hint = (
        'check the registry host, the network and TLS (ca_bundle in [images.registries."HOST"]); '
        "retry later if it is transient"
    )


class InvalidToken(RunvoyError):
    """The runvoy server refused the API key: unknown, revoked, expired, malformed, or its user is disabled."""

    exit_code = 77  # EX_NOPERM of sysexits.h, as for every refusal by the server
    default_hint = (
        "sign in again with a valid key: runvoy login (or set RUNVOY_TOKEN); an admin can create one"
    )


class AccessDenied(RunvoyError):
    """The runvoy server's roles and policies do not allow this action on this resource for this caller."""

    exit_code = 77
    default_hint = "ask an admin of the runvoy server for the role or policy that grants it (docs/server.md)"


class ServerUnavailable(RunvoyError):
    """The runvoy server did not answer, answered something that is not runvoy's API, or is overloaded."""

    default_hint = "check the server URL (runvoy config show, RUNVOY_SERVER) and its health: runvoy health"


class RequestTooLarge(UsageError):
    """The request's body is larger than the runvoy server accepts (``[serve] body_limit``; HTTP 413)."""

    default_hint = "send less (a shorter command, fewer or smaller --env values), or raise [serve] body_limit"


class TooManyRequests(RunvoyError):
    """This API key (or this address, after failed sign-ins) sent more requests than the server's rate limit
    (HTTP 429); ``details["retry_after"]`` is how many seconds to wait."""

    exit_code = 75  # EX_TEMPFAIL: trying again later works
    default_hint = "wait the seconds the server named and try again, or ask its admin to raise [serve] rate"


class RequestTimeout(ServerUnavailable):
    """The runvoy server did not answer the request within its timeout (``[serve] request_timeout``; HTTP 504)."""

    default_hint = (
        "try again; if it persists, check the server's health (runvoy health) and its provider's store"
    )


def error_class(code: str) -> type[RunvoyError]:
    """The error class whose ``docs_anchor`` is ``code`` (the stable ``code`` of a server's JSON error), so a
    client raises what the server raised, with the same exit code; RunvoyError for a code it does not know."""
    pending: list[type[RunvoyError]] = [RunvoyError]
    while pending:
        cls = pending.pop()
        if cls.docs_anchor == code:
            return cls
        pending.extend(cls.__subclasses__())
    return RunvoyError
