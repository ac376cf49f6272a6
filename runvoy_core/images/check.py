"""The image check of a run (issue 20): the ``[images]`` policy, then the registry, before the lock is taken, the
run is recorded or a task is started (decision 0804).

``check_request`` returns the request with ``image_digest`` (and ``image_platform_digest``) set; the runner
hands the task ``request.pinned_image()``, ``domain/repository@digest``, so what runs is what was checked.

Order, each step refusing with its own error (exit 125) before the next one is tried:

1. the reference parses (``InvalidImageReference``), and the policy allows it (``ImagePolicyRefused``, naming
   the rule). No network; done even with ``--no-image-check``, which skips the registry only: a policy that
   a flag could turn off would be no policy;
2. the registry has it, for the run's platform (linux and the run's architecture), and it resolves to a digest
   (``ImageNotFound``, ``ImagePlatformMissing``, ``ImageAuthFailed``, ``RegistryUnreachable``). A resolution
   is cached for ``[images] cache_ttl`` seconds in ``<RUNVOY_HOME>/cache/images.json``: a hit sends nothing
   and asks the provider for no credentials.

Credentials for the registry: the run's provider's own login when it implements ``RegistryLogin`` and has one
for that host (ECR, Artifact Registry, ACR), else what ``[images.registries."HOST"]`` names, else anonymous.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runvoy_core.errors import ConfigError, ImageAuthFailed, RegistryUnreachable, RunvoyError

if TYPE_CHECKING:
    from runvoy_core.images.config import ImagesConfig
    from runvoy_core.images.reference import Reference
    from runvoy_core.images.registry import Platform, RegistryCredentials, ResolvedImage
    from runvoy_core.models import ExecutionRequest


def images_config(section: Mapping[str, Any]) -> ImagesConfig:
    """The ``[images]`` section (its profile's, merged as every setting is), checked; a problem is a
    ConfigError naming the key, as ``runvoy config validate`` reports it."""
    from runvoy_core.config import describe_validation_error
    from runvoy_core.images.config import ImagesConfig

    try:
        return ImagesConfig.model_validate(dict(section))
    except ValueError as exc:
        detail = "; ".join(f"images.{part}" for part in describe_validation_error(exc).split("; "))
        raise ConfigError(
            f"invalid configuration: {detail}",
            hint="fix the [images] section of the config file (or [profiles.NAME.images], or RUNVOY_IMAGES__*); "
            "see docs/images.md",
        ) from None


def run_platform(request: ExecutionRequest, *, on_this_machine: bool = False) -> Platform:
    """linux and the run's architecture. A local run that names no ``--arch`` runs on this machine's."""
    from runvoy_core.images.registry import Platform

    architecture = request.resources.architecture.value
    if on_this_machine and "architecture" not in request.resources.explicit:
        architecture = os.uname().machine
    return Platform.for_architecture(architecture)


def provider_credentials(provider: object, provider_name: str, host: str) -> RegistryCredentials | None:
    """The provider's own login to ``host`` (``RegistryLogin``), or None when it has none."""
    from runvoy_core.ports.optional import RegistryLogin

    if not isinstance(provider, RegistryLogin):
        return None
    try:
        login = provider.registry_login(host)
    except RunvoyError:
        raise
    except Exception as exc:  # an SDK's own error: its type says enough, its text may quote a request
        raise ImageAuthFailed(
            f"the {provider_name} provider could not log in to registry {host} ({type(exc).__name__})",
            hint=f"check the {provider_name} provider's credentials and their permission to pull from {host} "
            "(docs/images.md); or skip the check with --no-image-check",
            registry=host,
        ) from None
    if login is None:
        return None
    from runvoy_core.images.registry import RegistryCredentials

    username, secret = login
    return RegistryCredentials(username=username, password=secret)


def resolve_for_run(
    reference: Reference,
    platform: Platform,
    config: ImagesConfig,
    *,
    home: Path,
    provider: object = None,
    provider_name: str = "",
    environ: Mapping[str, str] | None = None,
) -> ResolvedImage:
    """Through the cache; on a miss with the provider's login, else the configured credentials."""
    from runvoy_core.images.registry import ImageResolver, cache_directory

    resolver = ImageResolver(config, cache_dir=cache_directory(home), environ=environ)
    hit = resolver.cache.get(reference.canonical, str(platform))
    if hit is not None:  # no credentials needed: a provider login may cost a cloud API call
        return hit
    credentials = provider_credentials(provider, provider_name, reference.domain)
    try:
        return resolver.resolve(reference, platform, credentials)
    except RegistryUnreachable as exc:
        if (
            "--no-image-check" not in exc.hint
        ):  # a registry this machine cannot reach may still serve the cloud
            exc.hint += "; or start without asking it: --no-image-check"
        raise
    except ImageAuthFailed as exc:
        if credentials is None:
            raise
        raise ImageAuthFailed(
            f"{exc.message} (credentials from the {provider_name} provider's own login)",
            hint=f"check that the {provider_name} provider's credentials may pull from {reference.domain} "
            "(docs/images.md)",
            **exc.details,
        ) from None


def check_request(
    request: ExecutionRequest,
    *,
    images: Mapping[str, Any],
    home: Path,
    provider: object = None,
    provider_name: str = "",
    resolve: bool = True,
    on_this_machine: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ExecutionRequest:
    """The request with its image's digest recorded; raises the error of the first check that fails.
    ``resolve=False`` (``--no-image-check``) checks the policy only, and records the reference's own digest
    when it names one."""
    if not request.image:
        return request
    from runvoy_core.images.policy import check_policy

    config = images_config(images)
    reference = check_policy(request.image, config)
    if not resolve or not config.check:
        return request.model_copy(update={"image_digest": reference.digest, "image_platform_digest": None})
    platform = run_platform(request, on_this_machine=on_this_machine)
    resolved = resolve_for_run(
        reference,
        platform,
        config,
        home=home,
        provider=provider,
        provider_name=provider_name,
        environ=environ,
    )
    return request.model_copy(
        update={"image_digest": resolved.digest, "image_platform_digest": resolved.platform_digest}
    )
