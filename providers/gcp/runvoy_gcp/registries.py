"""Private registries on Cloud Run jobs (issue 20, decision 0812).

What Cloud Run pulls, and how:
- **Artifact Registry** (``LOCATION-docker.pkg.dev``) and Container Registry hosts (``gcr.io``, ``*.gcr.io``, now
  served by Artifact Registry): with the job's service account (``service_account``, else the default
  compute service account), which needs ``roles/artifactregistry.reader`` on the repository; a repository in
  another project also needs it for that project's Cloud Run service agent.
- **Docker Hub and GHCR**: public images only.
- **Any other registry, and private Docker Hub / GHCR images**: Cloud Run takes no registry credentials. The
  platform's way is an Artifact Registry *remote repository* in front of the registry, whose upstream
  credentials live in Secret Manager. ``[providers.gcp] registry_remotes`` maps the registry host to that
  repository and runvoy runs the image through it (``ghcr.io/o/app:1`` ->
  ``us-docker.pkg.dev/p/ghcr/o/app:1``). An image of another host that is not mapped is refused before
  anything starts, and so is one of a registry that ``[images.registries]`` gives credentials for.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from runvoy_core.errors import InvalidImageReference, ValidationFailed
from runvoy_core.images.reference import Reference, parse_reference
from runvoy_core.logging import get_logger

log = get_logger("runvoy.gcp.registries")

ARTIFACT_REGISTRY_HOST = re.compile(r"^[a-z0-9-]+-docker\.pkg\.dev$")
CONTAINER_REGISTRY_HOST = re.compile(r"^(?:[a-z]+\.)?gcr\.io$")
PUBLIC_ONLY_HOSTS = frozenset({"docker.io", "ghcr.io"})
"""Registries Cloud Run pulls from directly, for public images only."""
ACCESS_TOKEN_USER = "oauth2accesstoken"


def is_google_registry(host: str) -> bool:
    return bool(ARTIFACT_REGISTRY_HOST.match(host) or CONTAINER_REGISTRY_HOST.match(host))


def _has_credentials(host: str, images: Mapping[str, Any] | None) -> bool:
    """Whether the ``[images.registries]`` section of the settings gives credentials for ``host``: the
    image check then logs in, so the registry is private, which Cloud Run cannot pull from directly."""
    registries = (images or {}).get("registries")
    if not isinstance(registries, Mapping):
        return False
    for name, entry in registries.items():
        same = name == host or (host == "docker.io" and name == "index.docker.io")
        if same and isinstance(entry, Mapping) and any(entry.get(k) for k in ("username_env", "token_env")):
            return True
    return False


def _remote_hint(host: str) -> str:
    return (
        f"create an Artifact Registry remote repository for {host} (with its credentials in Secret Manager: "
        "gcloud artifacts repositories create NAME --repository-format=docker --mode=remote-repository "
        "--remote-docker-repo=https://" + host + " --remote-username=USER "
        "--remote-password-secret-version=projects/P/secrets/S/versions/1 --location=LOCATION) and map it: "
        f'[providers.gcp] registry_remotes = {{"{host}" = "LOCATION-docker.pkg.dev/PROJECT/NAME"}} '
        "(docs/clouds/gcp.md#private-registries)"
    )


def cloud_run_image(image: str, remotes: Mapping[str, str], images: Mapping[str, Any] | None = None) -> str:
    """The image reference Cloud Run is given for ``image``: the same, or rewritten through the remote
    repository mapped to its registry; ``ValidationFailed`` when Cloud Run cannot pull it."""
    try:
        reference = parse_reference(image)
    except InvalidImageReference:
        return image  # the image check, when it runs, has refused it already; Cloud Run will say why
    host = reference.domain
    remote = remotes.get(host)
    if remote is not None:
        return _through(remote, reference)
    if is_google_registry(host):
        return image
    if _has_credentials(host, images):
        raise ValidationFailed(
            f"the image {image} is in the private registry {host}: Cloud Run takes no registry credentials",
            hint=_remote_hint(host),
        )
    if host in PUBLIC_ONLY_HOSTS:
        return image
    raise ValidationFailed(
        f"Cloud Run cannot pull {image}: it pulls from Artifact Registry, and public images from Docker Hub "
        f"and GHCR, not from {host}",
        hint=_remote_hint(host),
    )


def _through(remote: str, reference: Reference) -> str:
    text = f"{remote}/{reference.path}"
    if reference.tag is not None:
        text += f":{reference.tag}"
    if reference.digest is not None:
        text += f"@{reference.digest}"
    return text


class AccessTokenLogin:
    """``registry_login`` for Artifact Registry and Container Registry hosts: an OAuth access token of the
    provider's own credentials (``oauth2accesstoken`` is the username those registries expect), refreshed
    by google-auth when it is close to expiry. The token is never logged nor put in an error."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()

    def login(self, registry: str) -> tuple[str, str] | None:
        if not is_google_registry(registry):
            return None
        credentials = self._credentials()
        with self._lock:
            if not credentials.valid:
                import google.auth.transport.requests
                from google.auth import exceptions as auth_exc

                try:
                    credentials.refresh(google.auth.transport.requests.Request())
                except auth_exc.GoogleAuthError as exc:
                    from runvoy_core.errors import NotAuthenticated

                    raise NotAuthenticated(
                        f"could not get an access token for {registry}: {type(exc).__name__}",
                        hint="run: gcloud auth application-default login",
                    ) from None
            token = credentials.token
        if not token:
            return None  # anonymous credentials (emulators): nothing to log in with
        log.debug("gcp.registry_login", registry=registry)
        return ACCESS_TOKEN_USER, str(token)
