"""Resolve an image reference against its registry (Docker Registry HTTP API v2 / OCI distribution spec).

One resolution, without a cache hit: ``GET /v2/<path>/manifests/<tag|digest>`` with an Accept header naming the
OCI index, OCI manifest, Docker manifest list v2 and Docker manifest v2. A ``401`` carries the challenge
(``WWW-Authenticate``): ``Bearer realm=…,service=…,scope=…`` sends us to the token service (anonymously, or
with a username and password), ``Basic`` takes the username and password directly; the request is then
repeated once with the answer. The manifest's digest is computed from its bytes and checked against
``Docker-Content-Digest`` and against a digest in the reference. An index (or list) is searched for the run's
platform; a single manifest's platform is read from its config blob. Decision 0801 says why the manifest
request comes first (no ``GET /v2/`` ping) and which digest is pinned.

Results are cached (``ResolutionCache``): per process and in ``<RUNVOY_HOME>/cache/images.json`` for
``[images] cache_ttl`` seconds (300 by default), so a second CLI invocation within the TTL asks no registry.

Secrets (passwords, tokens) travel only in ``Authorization`` headers: they are not logged, not cached on disk
and not put in an error or a ``repr``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runvoy_core.errors import (
    ImageAuthFailed,
    ImageCheckFailed,
    ImageNotFound,
    ImagePlatformMissing,
    RegistryUnreachable,
)
from runvoy_core.images.config import ImagesConfig, RegistryConfig
from runvoy_core.images.reference import DEFAULT_DOMAIN, Reference, parse_reference
from runvoy_core.logging import get_logger

if TYPE_CHECKING:
    # ssl and urllib.request cost ~12 ms to import: only a cache miss pays for them
    import ssl
    import urllib.request
    from email.message import Message

log = get_logger("runvoy.images")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))

DOCKER_HUB_API = "registry-1.docker.io"
MANIFEST_SIZE_MAX = 4 * 1024 * 1024  # the distribution registry's own limit on a manifest
CONFIG_SIZE_MAX = 1024 * 1024
USER_AGENT = "runvoy-image-check"

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}


# -- values ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """The platform a run needs, as image indexes name it (``linux/amd64``, ``linux/arm64/v8``)."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def for_architecture(cls, architecture: str, os_name: str = "linux") -> Platform:
        """From runvoy's ``x86_64``/``arm64`` (or Docker's ``amd64``/``aarch64``)."""
        return cls(os=os_name, architecture=_ARCH_ALIASES.get(architecture.lower(), architecture.lower()))

    def accepts(self, os_name: str, architecture: str, variant: str | None) -> bool:
        if os_name != self.os or _ARCH_ALIASES.get(architecture, architecture) != self.architecture:
            return False
        if self.variant is None:
            return True
        # arm64 images rarely name their variant: no variant there means v8
        default = "v8" if self.architecture == "arm64" else None
        return (variant or default) == self.variant

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class RegistryCredentials:
    """A username and password, or a bearer token, for one registry. The secrets never show in a ``repr``."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.token is None and (self.username is None or self.password is None):
            raise ValueError("registry credentials need a username and a password, or a token")
        if self.token is not None and self.password is not None:
            raise ValueError("registry credentials are a username and a password, or a token, not both")

    def basic(self) -> str | None:
        if self.username is None or self.password is None:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    @property
    def identity(self) -> str:
        """Who is asking, without the secret: for messages."""
        return f"user {self.username}" if self.username is not None else "the configured token"

    @property
    def cache_key(self) -> str:
        """Keys the in-memory token cache: a changed secret must not reuse what the old one obtained. A digest
        of the secret, kept in memory only, never written or shown."""
        secret = (self.password or self.token or "").encode()
        return f"{self.identity}/{hashlib.sha256(secret).hexdigest()[:16]}"


def credentials_from_config(
    host: str, config: ImagesConfig, environ: Mapping[str, str] | None = None
) -> RegistryCredentials | None:
    """The credentials ``[images.registries."HOST"]`` points at, read from the environment variables it names;
    None when the registry has none configured (anonymous access)."""
    env = os.environ if environ is None else environ
    registry = config.registry(host)

    def read(variable: str) -> str:
        value = env.get(variable)
        if not value:
            raise ImageAuthFailed(
                f"the credentials for registry {host} are read from the environment variable {variable}, "
                "which is not set",
                hint=f'export {variable}, or change [images.registries."{host}"] (docs/images.md)',
                registry=host,
            )
        return value

    if registry.token_env is not None:
        return RegistryCredentials(token=read(registry.token_env))
    if registry.username_env is not None and registry.password_env is not None:
        return RegistryCredentials(username=read(registry.username_env), password=read(registry.password_env))
    return None


@dataclass(frozen=True)
class ResolvedImage:
    """What a reference resolved to. ``digest`` is what the reference names (an index's digest when it is an
    index, decision 0801) and ``pinned`` runs exactly that; ``platform_digest`` is the manifest the run's
    platform gets from it (equal to ``digest`` for a single-platform image)."""

    reference: str
    digest: str
    platform_digest: str
    pinned: str
    platform: str
    media_type: str
    resolved_at: float
    from_cache: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("from_cache")
        return data


# -- HTTP --------------------------------------------------------------------------------------------------


@dataclass
class _Answer:
    status: int
    headers: Message
    body: bytes
    url: str


@dataclass(frozen=True)
class _Endpoint:
    host: str  # as in the reference (docker.io)
    base: str  # https://registry-1.docker.io
    plain_http: bool
    context: ssl.SSLContext | None


class _Challenge:
    def __init__(self, scheme: str, params: dict[str, str]) -> None:
        self.scheme = scheme
        self.params = params


def parse_challenges(values: list[str]) -> list[_Challenge]:
    """``WWW-Authenticate`` values (RFC 9110 11.6.1): ``Scheme k="v", k2=v2``; quoted values may hold commas."""
    challenges: list[_Challenge] = []
    for value in values:
        text = value.strip()
        while text:
            scheme, _, text = text.partition(" ")
            params: dict[str, str] = {}
            text = text.lstrip()
            while text:
                key, eq, rest = text.partition("=")
                if not eq or " " in key.strip() or "," in key:
                    break  # the next challenge's scheme
                rest = rest.lstrip()
                if rest.startswith('"'):
                    out, i = [], 1
                    while i < len(rest) and rest[i] != '"':
                        if rest[i] == "\\" and i + 1 < len(rest):
                            i += 1
                        out.append(rest[i])
                        i += 1
                    param, text = "".join(out), rest[i + 1 :]
                else:
                    param, _, text = rest.partition(",")
                params[key.strip().lower()] = param.strip()
                text = text.lstrip().removeprefix(",").lstrip()
            if scheme:
                challenges.append(_Challenge(scheme.strip().lower(), params))
    return challenges


class RegistryClient:
    """Talks to registries; keeps bearer tokens per process until they expire. Not thread-safe."""

    def __init__(
        self, config: ImagesConfig | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self.config = config or ImagesConfig()
        self.environ = environ
        self.requests = 0  # HTTP requests sent, for benchmarks and debugging
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._openers: dict[tuple[str | None, bool], urllib.request.OpenerDirector] = {}

    # -- public --------------------------------------------------------------------------------------------
    def resolve(
        self,
        reference: Reference | str,
        platform: Platform,
        credentials: RegistryCredentials | None = None,
    ) -> ResolvedImage:
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        if credentials is None:
            credentials = credentials_from_config(ref.domain, self.config, self.environ)
        endpoint = self._endpoint(ref.domain)
        manifest, media_type, digest = self._manifest(endpoint, ref, ref.manifest_reference, credentials)
        if ref.digest is not None and digest != ref.digest:
            raise ImageCheckFailed(
                f"registry {ref.domain} answered {ref.repository}@{ref.digest} with a manifest whose digest is "
                f"{digest}",
                hint="the registry (or something between) altered the manifest; do not run it",
                image=ref.canonical,
            )
        if media_type in INDEX_TYPES:
            platform_digest = self._platform_in_index(ref, manifest, platform)
        else:
            found = self._platform_of_manifest(endpoint, ref, manifest, credentials)
            if not platform.accepts(*found):
                have = "/".join(p for p in found if p)
                raise ImagePlatformMissing(
                    f"image {ref.familiar} is built for {have} only; this run needs {platform}",
                    image=ref.canonical,
                    platform=str(platform),
                    available=[have],
                )
            platform_digest = digest
        return ResolvedImage(
            reference=ref.canonical,
            digest=digest,
            platform_digest=platform_digest,
            pinned=ref.pinned(digest),
            platform=str(platform),
            media_type=media_type,
            resolved_at=time.time(),
        )

    # -- manifests -----------------------------------------------------------------------------------------
    def _manifest(
        self, endpoint: _Endpoint, ref: Reference, name: str, credentials: RegistryCredentials | None
    ) -> tuple[dict[str, Any], str, str]:
        answer = self._get(
            endpoint, ref, f"/v2/{ref.path}/manifests/{name}", ACCEPT, credentials, MANIFEST_SIZE_MAX
        )
        if answer.status == 404:
            raise self._not_found(endpoint, ref, answer, credentials)
        if answer.status != 200:
            raise self._unexpected(ref, answer, "the manifest")
        try:
            manifest = json.loads(answer.body)
        except ValueError:
            manifest = None
        if not isinstance(manifest, dict):
            raise ImageCheckFailed(
                f"registry {ref.domain} answered the manifest of {ref.familiar} with something that is not JSON",
                image=ref.canonical,
            )
        media_type = str(answer.headers.get("Content-Type", "")).split(";")[0].strip()
        if media_type not in INDEX_TYPES | MANIFEST_TYPES:
            declared = manifest.get("mediaType")
            if declared in INDEX_TYPES | MANIFEST_TYPES:
                media_type = str(declared)
            elif isinstance(manifest.get("manifests"), list):
                media_type = OCI_INDEX
            elif isinstance(manifest.get("config"), dict):
                media_type = OCI_MANIFEST
            else:
                raise ImageCheckFailed(
                    f"registry {ref.domain} answered the manifest of {ref.familiar} as {media_type or 'untyped'}, "
                    "which is neither an image index nor an image manifest (schema 1 images are not supported)",
                    hint="push the image again with a current docker or buildx",
                    image=ref.canonical,
                )
        return manifest, media_type, self._check_digest(ref, answer)

    def _check_digest(self, ref: Reference, answer: _Answer) -> str:
        announced = answer.headers.get("Docker-Content-Digest")
        algorithm = "sha512" if announced and announced.startswith("sha512:") else "sha256"
        computed = f"{algorithm}:{hashlib.new(algorithm, answer.body).hexdigest()}"
        if announced and announced != computed:
            raise ImageCheckFailed(
                f"registry {ref.domain} announced digest {announced} for {ref.familiar} but sent a manifest "
                f"whose digest is {computed}",
                hint="the registry (or a proxy) altered the manifest; do not run it",
                image=ref.canonical,
            )
        return computed

    def _platform_in_index(self, ref: Reference, index: Mapping[str, Any], platform: Platform) -> str:
        available: list[str] = []
        entries = index.get("manifests")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("platform"), dict):
                continue
            p = entry["platform"]
            os_name, arch, variant = str(p.get("os", "")), str(p.get("architecture", "")), p.get("variant")
            if os_name == "unknown":  # buildx attestations, not images
                continue
            available.append("/".join(x for x in (os_name, arch, variant) if x))
            if platform.accepts(os_name, arch, variant) and isinstance(entry.get("digest"), str):
                return str(entry["digest"])
        raise ImagePlatformMissing(
            f"image {ref.familiar} has no manifest for {platform}; it has: {', '.join(available) or 'none'}",
            image=ref.canonical,
            platform=str(platform),
            available=available,
        )

    def _platform_of_manifest(
        self,
        endpoint: _Endpoint,
        ref: Reference,
        manifest: Mapping[str, Any],
        credentials: RegistryCredentials | None,
    ) -> tuple[str, str, str | None]:
        config = manifest.get("config")
        digest = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(digest, str) or ":" not in digest:
            raise ImageCheckFailed(
                f"the manifest of {ref.familiar} names no config blob, so its platform is unknown",
                image=ref.canonical,
            )
        answer = self._get(
            endpoint, ref, f"/v2/{ref.path}/blobs/{digest}", "*/*", credentials, CONFIG_SIZE_MAX
        )
        if answer.status != 200:
            raise self._unexpected(ref, answer, "the image config")
        algorithm, _, expected = digest.partition(":")
        if (
            algorithm not in ("sha256", "sha512")
            or hashlib.new(algorithm, answer.body).hexdigest() != expected
        ):
            raise ImageCheckFailed(
                f"the config blob of {ref.familiar} does not match its digest {digest}", image=ref.canonical
            )
        try:
            image_config = json.loads(answer.body)
        except ValueError:
            image_config = None
        if not isinstance(image_config, dict):
            raise ImageCheckFailed(f"the config blob of {ref.familiar} is not JSON", image=ref.canonical)
        variant = image_config.get("variant")
        return (
            str(image_config.get("os", "")),
            str(image_config.get("architecture", "")),
            str(variant) if variant else None,
        )

    # -- errors --------------------------------------------------------------------------------------------
    @staticmethod
    def _error_codes(answer: _Answer) -> set[str]:
        try:
            errors = json.loads(answer.body).get("errors", [])
            return {str(e.get("code")) for e in errors if isinstance(e, dict)}
        except (ValueError, AttributeError):
            return set()

    def _not_found(
        self, endpoint: _Endpoint, ref: Reference, answer: _Answer, credentials: RegistryCredentials | None
    ) -> ImageCheckFailed:
        codes = self._error_codes(answer)
        tags: list[str] = []
        if "NAME_UNKNOWN" not in codes:
            # many registries say MANIFEST_UNKNOWN for a repository that does not exist either; its tag list
            # tells the two apart (and names tags that do exist), at the cost of a request on this failure only
            listing: _Answer | None
            try:
                listing = self._get(
                    endpoint,
                    ref,
                    f"/v2/{ref.path}/tags/list?n=100",
                    "application/json",
                    credentials,
                    MANIFEST_SIZE_MAX,
                )
            except ImageCheckFailed:  # a registry that hides its tag lists: the missing manifest is the news
                listing = None
            if listing is not None and listing.status == 404 and "NAME_UNKNOWN" in self._error_codes(listing):
                codes.add("NAME_UNKNOWN")
            elif listing is not None and listing.status == 200:
                with contextlib.suppress(ValueError, AttributeError, TypeError):
                    tags = [str(t) for t in json.loads(listing.body).get("tags") or []]
        if "NAME_UNKNOWN" in codes:
            return ImageNotFound(
                f"repository {ref.repository} does not exist on registry {ref.domain}",
                hint="check the repository name for typos (and the registry host); push the image first if it is new",
                image=ref.canonical,
                missing="repository",
            )
        what = f"digest {ref.digest}" if ref.digest else f"tag {ref.tag!r}"
        if tags:
            shown = ", ".join(tags[:10]) + (", ..." if len(tags) > 10 else "")
            hint = f"the repository has the tags: {shown}"
        else:
            hint = "check the tag for typos; push the image first if it is new"
        return ImageNotFound(
            f"image {ref.familiar} not found: repository {ref.repository} has no {what}",
            hint=hint,
            image=ref.canonical,
            missing="digest" if ref.digest else "tag",
        )

    def _unexpected(self, ref: Reference, answer: _Answer, what: str) -> ImageCheckFailed:
        codes = ", ".join(sorted(self._error_codes(answer))) or "no error code"
        if answer.status in (429,) or answer.status >= 500:
            return RegistryUnreachable(
                f"registry {ref.domain} answered HTTP {answer.status} ({codes}) when asked for {what} of "
                f"{ref.familiar}",
                hint="the registry is busy or failing; retry later, or skip the check with --no-image-check",
                image=ref.canonical,
            )
        return ImageCheckFailed(
            f"registry {ref.domain} answered HTTP {answer.status} ({codes}) when asked for {what} of {ref.familiar}",
            image=ref.canonical,
        )

    # -- transport and auth --------------------------------------------------------------------------------
    def _endpoint(self, host: str) -> _Endpoint:
        registry: RegistryConfig = self.config.registry(host)
        api_host = DOCKER_HUB_API if host == DEFAULT_DOMAIN else host
        scheme = "http" if registry.plain_http else "https"
        context = None
        if not registry.plain_http:
            import ssl

            try:
                context = ssl.create_default_context(
                    cafile=str(registry.ca_bundle) if registry.ca_bundle is not None else None
                )
            except OSError as exc:  # ssl.SSLError included
                raise RegistryUnreachable(
                    f"cannot read the CA bundle {registry.ca_bundle} configured for registry {host}: {exc}",
                    hint=f'fix ca_bundle in [images.registries."{host}"]: a readable PEM file of CA certificates',
                    registry=host,
                ) from None
        return _Endpoint(
            host=host, base=f"{scheme}://{api_host}", plain_http=registry.plain_http, context=context
        )

    def _opener(self, endpoint: _Endpoint) -> urllib.request.OpenerDirector:
        key = (endpoint.base, endpoint.plain_http)
        opener = self._openers.get(key)
        if opener is None:
            import urllib.request

            handlers: list[urllib.request.BaseHandler] = []
            if endpoint.context is not None:
                handlers.append(urllib.request.HTTPSHandler(context=endpoint.context))
            opener = urllib.request.build_opener(*handlers)
            self._openers[key] = opener
        return opener

    def _send(
        self,
        endpoint: _Endpoint,
        url: str,
        accept: str,
        authorization: str | None,
        limit: int,
    ) -> _Answer:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(url, method="GET")
        request.add_header("Accept", accept)
        request.add_header("User-Agent", USER_AGENT)
        if authorization is not None:
            # blob reads may be redirected to object storage: an unredirected header never follows a
            # redirect, so the secret stays with the registry (and S3 or GCS do not refuse a foreign one)
            request.add_unredirected_header("Authorization", authorization)
        self.requests += 1
        try:
            with self._opener(endpoint).open(request, timeout=self.config.timeout) as response:
                return _Answer(response.status, response.headers, _read(response, limit, url), response.url)
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                body = exc.read(64 * 1024) if exc.fp is not None else b""
            return _Answer(exc.code, exc.headers, body, url)
        except urllib.error.URLError as exc:
            raise _unreachable(endpoint, url, exc.reason) from None
        except OSError as exc:  # timeouts, resets, TLS errors
            raise _unreachable(endpoint, url, exc) from None

    def _get(
        self,
        endpoint: _Endpoint,
        ref: Reference,
        path: str,
        accept: str,
        credentials: RegistryCredentials | None,
        limit: int,
    ) -> _Answer:
        url = endpoint.base + path
        scope = f"repository:{ref.path}:pull"
        remembered = self._remembered(endpoint, scope, credentials)
        answer = self._send(endpoint, url, accept, remembered, limit)
        if answer.status != 401:
            return self._refuse_forbidden(ref, answer, credentials)
        authorization = self._authorize(endpoint, ref, answer, scope, credentials)
        answer = self._send(endpoint, url, accept, authorization, limit)
        if answer.status == 401:
            raise self._auth_failed(ref, credentials, f"registry {ref.domain} refused access")
        return self._refuse_forbidden(ref, answer, credentials)

    def _refuse_forbidden(
        self, ref: Reference, answer: _Answer, credentials: RegistryCredentials | None
    ) -> _Answer:
        if answer.status == 403:
            raise self._auth_failed(ref, credentials, f"registry {ref.domain} denied pull access")
        return answer

    def _auth_failed(
        self, ref: Reference, credentials: RegistryCredentials | None, what: str
    ) -> ImageAuthFailed:
        if credentials is None:
            return ImageAuthFailed(
                f"{what} to {ref.repository} without credentials: the repository is "
                f"private, or does not exist (no credentials are configured for {ref.domain})",
                image=ref.canonical,
                registry=ref.domain,
                hint=_auth_hint(ref.domain),
            )
        return ImageAuthFailed(
            f"{what} to {ref.repository} for {credentials.identity} (the configured "
            "credentials are wrong, expired, or lack pull permission on this repository)",
            image=ref.canonical,
            registry=ref.domain,
            hint=_auth_hint(ref.domain),
        )

    def _remembered(
        self, endpoint: _Endpoint, scope: str, credentials: RegistryCredentials | None
    ) -> str | None:
        identity = credentials.cache_key if credentials else "anonymous"
        remembered = self._tokens.get((endpoint.base, scope, identity))
        if remembered is not None and time.monotonic() < remembered[1]:
            return remembered[0]
        return None

    def _authorize(
        self,
        endpoint: _Endpoint,
        ref: Reference,
        answer: _Answer,
        scope: str,
        credentials: RegistryCredentials | None,
    ) -> str:
        challenges = parse_challenges(answer.headers.get_all("WWW-Authenticate") or [])
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            if credentials is not None and credentials.token is not None:
                return f"Bearer {credentials.token}"
            header, lifetime = self._fetch_token(endpoint, ref, bearer, scope, credentials)
            identity = credentials.cache_key if credentials else "anonymous"
            # renew a little early: a token that expires between two requests costs a refused request
            self._tokens[(endpoint.base, scope, identity)] = (
                header,
                time.monotonic() + max(0.0, lifetime - 10.0),
            )
            return header
        if basic is not None:
            basic_header = credentials.basic() if credentials is not None else None
            if basic_header is None:
                raise ImageAuthFailed(
                    f"registry {ref.domain} asks for a username and password (Basic auth) to read "
                    f"{ref.repository}, and {'only a token' if credentials else 'none'} is configured for it",
                    image=ref.canonical,
                    registry=ref.domain,
                    hint=_auth_hint(ref.domain),
                )
            assert credentials is not None  # a Basic header came from them
            self._tokens[(endpoint.base, scope, credentials.cache_key)] = (basic_header, float("inf"))
            return basic_header
        schemes = ", ".join(c.scheme for c in challenges) or "none"
        raise ImageAuthFailed(
            f"registry {ref.domain} asks for authentication runvoy does not speak (challenges: {schemes})",
            image=ref.canonical,
            registry=ref.domain,
            hint=_auth_hint(ref.domain),
        )

    def _fetch_token(
        self,
        endpoint: _Endpoint,
        ref: Reference,
        challenge: _Challenge,
        scope: str,
        credentials: RegistryCredentials | None,
    ) -> tuple[str, float]:
        realm = challenge.params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ImageAuthFailed(
                f"registry {ref.domain} names a token service that is not an http(s) URL: {realm!r}",
                image=ref.canonical,
                registry=ref.domain,
                hint=_auth_hint(ref.domain),
            )
        basic = credentials.basic() if credentials is not None else None
        if basic is not None and parts.scheme != "https" and not endpoint.plain_http:
            raise ImageAuthFailed(
                f"registry {ref.domain} sends its clients to the token service {realm} over plain HTTP; "
                "runvoy does not send a password there",
                hint=f'fix the registry\'s token realm, or set plain_http = true in [images.registries."{ref.domain}"]',
                image=ref.canonical,
                registry=ref.domain,
            )
        query = {"scope": challenge.params.get("scope") or scope}
        if "service" in challenge.params:
            query["service"] = challenge.params["service"]
        separator = "&" if parts.query else "?"
        url = realm + separator + urllib.parse.urlencode(query)
        token_endpoint = _Endpoint(
            host=parts.netloc,
            base=f"{parts.scheme}://{parts.netloc}",
            plain_http=parts.scheme == "http",
            context=endpoint.context,
        )
        answer = self._send(token_endpoint, url, "application/json", basic, 64 * 1024)
        if answer.status in (401, 403):
            raise self._auth_failed(
                ref, credentials, f"the token service {parts.netloc} of registry {ref.domain} refused access"
            )
        if answer.status != 200:
            raise RegistryUnreachable(
                f"the token service {parts.netloc} of registry {ref.domain} answered HTTP {answer.status}",
                image=ref.canonical,
                registry=ref.domain,
            )
        try:
            data = json.loads(answer.body)
            token = data.get("token") or data.get("access_token")
            lifetime = float(data.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token, lifetime = None, 0.0
        if not isinstance(token, str) or not token:
            raise ImageAuthFailed(
                f"the token service {parts.netloc} of registry {ref.domain} answered without a token",
                image=ref.canonical,
                registry=ref.domain,
                hint=_auth_hint(ref.domain),
            )
        return f"Bearer {token}", lifetime


def _auth_hint(host: str) -> str:
    return (
        f'configure credentials under [images.registries."{host}"] (username_env and password_env, or '
        "token_env, naming environment variables) and check they grant pull on the repository (docs/images.md)"
    )


def _read(response: Any, limit: int, url: str) -> bytes:
    body: bytes = response.read(limit + 1)
    if len(body) > limit:
        raise ImageCheckFailed(
            f"{url} answered more than {limit} bytes; a manifest or config is never that large"
        )
    return body


def _unreachable(endpoint: _Endpoint, url: str, reason: object) -> RegistryUnreachable:
    host = urllib.parse.urlsplit(url).netloc
    import ssl

    if isinstance(reason, ssl.SSLCertVerificationError):
        return RegistryUnreachable(
            f"the TLS certificate of registry {host} is not trusted: {reason.verify_message}",
            hint=f'if the registry uses a private CA, set ca_bundle in [images.registries."{endpoint.host}"] '
            "to a PEM file of it (docs/images.md)",
            registry=endpoint.host,
        )
    if isinstance(reason, TimeoutError):
        return RegistryUnreachable(f"registry {host} did not answer in time", registry=endpoint.host)
    return RegistryUnreachable(f"cannot reach registry {host}: {reason}", registry=endpoint.host)


# -- cache -------------------------------------------------------------------------------------------------


def cache_directory(home: Path) -> Path:
    """Where a run keeps its resolutions: ``<RUNVOY_HOME>/cache`` (the file is ``images.json``)."""
    return home / "cache"


_MEMORY: dict[tuple[str, str], ResolvedImage] = {}
CACHE_ENTRIES_MAX = 512


class ResolutionCache:
    """Resolutions for ``ttl`` seconds: in this process, and in ``<directory>/images.json`` for the next
    process. Only references, platforms and digests are stored (no credentials). Writers replace the file
    atomically; two processes writing at once may each lose the other's new entry, which costs a round trip."""

    def __init__(self, directory: Path | None, ttl: float) -> None:
        self.path = directory / "images.json" if directory is not None else None
        self.ttl = ttl

    def _fresh(self, entry: ResolvedImage, now: float) -> bool:
        # a clock set back must not keep an entry forever
        return entry.resolved_at - 5.0 <= now < entry.resolved_at + self.ttl

    def get(self, reference: str, platform: str) -> ResolvedImage | None:
        if self.ttl <= 0:
            return None
        now = time.time()
        key = (reference, platform)
        entry = _MEMORY.get(key)
        if entry is not None and self._fresh(entry, now):
            return entry
        stored = self._load().get(key)
        if stored is not None and self._fresh(stored, now):
            _MEMORY[key] = stored
            return stored
        return None

    def put(self, resolved: ResolvedImage) -> None:
        if self.ttl <= 0:
            return
        key = (resolved.reference, resolved.platform)
        _MEMORY[key] = resolved
        if self.path is None:
            return
        now = time.time()
        entries = {k: v for k, v in self._load().items() if self._fresh(v, now)}
        entries[key] = resolved
        newest = sorted(entries.values(), key=lambda e: e.resolved_at)[-CACHE_ENTRIES_MAX:]
        payload = json.dumps({"version": 1, "entries": [e.to_dict() for e in newest]}, sort_keys=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".images-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(payload)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            pass  # a cache that cannot be written costs a round trip next time, nothing else

    def _load(self) -> dict[tuple[str, str], ResolvedImage]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data["entries"] if data.get("version") == 1 else []
            loaded = {}
            for raw in entries:
                entry = ResolvedImage(**{k: raw[k] for k in _STORED_FIELDS})
                loaded[(entry.reference, entry.platform)] = ResolvedImage(
                    **{**entry.to_dict(), "from_cache": True}
                )
            return loaded
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # missing or damaged: as if empty


_STORED_FIELDS = ("reference", "digest", "platform_digest", "pinned", "platform", "media_type", "resolved_at")


def clear_process_cache() -> None:
    _MEMORY.clear()


class ImageResolver:
    """Policy-free resolution with the cache in front: what a run calls once its policy check passed."""

    def __init__(
        self,
        config: ImagesConfig | None = None,
        *,
        cache_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        client: RegistryClient | None = None,
    ) -> None:
        self.config = config or ImagesConfig()
        self.client = client or RegistryClient(self.config, environ=environ)
        self.cache = ResolutionCache(cache_dir, self.config.cache_ttl)

    def resolve(
        self,
        reference: Reference | str,
        platform: Platform,
        credentials: RegistryCredentials | None = None,
    ) -> ResolvedImage:
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        hit = self.cache.get(ref.canonical, str(platform))
        if hit is not None:
            if _debug_logging():
                log.debug(
                    "image.resolved",
                    image=ref.canonical,
                    pinned=hit.pinned,
                    platform=hit.platform,
                    cached=True,
                )
            return ResolvedImage(**{**hit.to_dict(), "from_cache": True})
        sent = self.client.requests
        resolved = self.client.resolve(ref, platform, credentials)
        self.cache.put(resolved)
        if _debug_logging():
            log.debug(
                "image.resolved",
                image=ref.canonical,
                pinned=resolved.pinned,
                platform=resolved.platform,
                platform_digest=resolved.platform_digest,
                cached=False,
                requests=self.client.requests - sent,
            )
        return resolved


def _debug_logging() -> bool:
    # a log call imports structlog (~25 ms), even one its level filters out; a run that logs nothing must
    # not pay that for a debug line (runvoy_core.logging has no public "is this level on" yet)
    from runvoy_core import logging as runvoy_logging

    return runvoy_logging._wanted[1] == "debug"


def resolve(
    reference: Reference | str,
    platform: Platform,
    credentials: RegistryCredentials | None = None,
    *,
    config: ImagesConfig | None = None,
    cache_dir: Path | None = None,
) -> ResolvedImage:
    """Resolve through the cache; ``cache_dir`` is ``<RUNVOY_HOME>/cache`` in a run."""
    return ImageResolver(config, cache_dir=cache_dir).resolve(reference, platform, credentials)
