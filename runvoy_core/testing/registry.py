"""A real container registry on 127.0.0.1 for tests: Debian's ``docker-registry`` (the CNCF distribution
registry), started on a port it picks itself, with no auth over HTTP, htpasswd (Basic) auth over TLS with a
certificate made here, or bearer-token auth backed by ``TokenServer``. Images are pushed through the registry
API itself (blob uploads, manifest PUTs); no Docker engine is involved.

Needs ``/usr/bin/docker-registry`` (package docker-registry), ``htpasswd`` (package apache2-utils) for the
htpasswd mode and the ``cryptography`` package for certificates and token signing; ``scripts/test.sh``
installs the Debian packages.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from runvoy_core.testing.waiting import wait_for, wait_for_file

REGISTRY_BINARY = "/usr/bin/docker-registry"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def registry_available() -> str | None:
    """None when the registry can run here, else why not (for ``pytest.skip``)."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        return f"{REGISTRY_BINARY} missing (apt-get install docker-registry; scripts/test.sh does it)"
    if shutil.which("htpasswd") is None:
        return "htpasswd missing (apt-get install apache2-utils; scripts/test.sh does it)"
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return "the cryptography package is missing"
    return None


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- TLS ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    ca_cert: Path  # the CA bundle a client trusts
    cert: Path  # the server's certificate (signed by the CA) for 127.0.0.1 and localhost
    key: Path


def make_tls_material(directory: Path) -> TlsMaterial:
    """A throw-away CA and a server certificate it signed, valid for 127.0.0.1 and localhost."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "runvoy test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    material = TlsMaterial(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    material.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    material.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    material.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return material


# -- token service -----------------------------------------------------------------------------------------


class TokenServer:
    """A bearer-token service as the distribution registry's ``auth: token`` expects: ``GET /token?service=…&
    scope=repository:NAME:pull`` answers ``{"token": JWT}`` (ES256, the signing certificate in the ``x5c``
    header, trusted through ``rootcertbundle``). ``users`` may pull and push anything; anonymous callers get
    pull on the repositories under ``public/`` and nothing else (a token without access, as Docker Hub does).
    ``requests`` counts the token requests."""

    issuer = "runvoy-test-issuer"
    service = "runvoy-test-registry"

    def __init__(self, directory: Path, users: dict[str, str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users = dict(users)
        self.requests = 0
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "runvoy test token signer")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        directory.mkdir(parents=True, exist_ok=True)
        self.root_bundle = directory / "token-signer.pem"
        self.root_bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> TokenServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests += 1
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                valid, user = owner._user(self.headers.get("Authorization"))
                if not valid:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                access = [owner._grant(scope, user) for scope in query.get("scope", [])]
                body = json.dumps(
                    {"token": owner.mint(str(user or ""), [a for a in access if a]), "expires_in": 300}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="token-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def _user(self, header: str | None) -> tuple[bool, str | None]:
        """(credentials valid, the user or None for anonymous)."""
        if not header:
            return True, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return self.users.get(user) == password, user

    @staticmethod
    def _grant(scope: str, user: str | None) -> dict[str, Any] | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind != "repository" or not name:
            return None
        if user is None:
            allowed = ["pull"] if name.startswith("public/") and "pull" in actions.split(",") else []
        else:
            allowed = actions.split(",")
        return {"type": "repository", "name": name, "actions": allowed}

    def mint(self, subject: str, access: list[dict[str, Any]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# -- the registry ------------------------------------------------------------------------------------------


@dataclass
class RegistryServer:
    """One ``docker-registry serve`` process. ``auth``: ``none`` (HTTP), ``htpasswd`` (Basic auth, HTTPS with
    ``tls``) or ``token`` (bearer tokens from ``token_server``, HTTP)."""

    directory: Path
    auth: str = "none"
    users: dict[str, str] = field(default_factory=dict)
    tls: TlsMaterial | None = None
    token_server: TokenServer | None = None
    port: int = 0
    _process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.directory / "registry.log"

    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.directory / 'data'}",
            "  delete:",
            "    enabled: true",
            "http:",
            "  addr: 127.0.0.1:0",
            "  secret: runvoy-test-secret",
        ]
        if self.tls is not None:
            lines += ["  tls:", f"    certificate: {self.tls.cert}", f"    key: {self.tls.key}"]
        if self.auth == "htpasswd":
            htpasswd = shutil.which("htpasswd")
            if htpasswd is None:
                raise RuntimeError(
                    "htpasswd missing (apt-get install apache2-utils; scripts/test.sh does it)"
                )
            entries = [
                subprocess.run(
                    [htpasswd, "-nbB", "-C", "4", user, password], capture_output=True, text=True, check=True
                ).stdout.strip()
                for user, password in self.users.items()
            ]
            (self.directory / "htpasswd").write_text("\n".join(entries) + "\n")
            lines += [
                "auth:",
                "  htpasswd:",
                "    realm: runvoy-test",
                f"    path: {self.directory / 'htpasswd'}",
            ]
        elif self.auth == "token":
            assert self.token_server is not None
            lines += [
                "auth:",
                "  token:",
                f"    realm: {self.token_server.realm}",
                f"    service: {self.token_server.service}",
                f"    issuer: {self.token_server.issuer}",
                f"    rootcertbundle: {self.token_server.root_bundle}",
            ]
        elif self.auth != "none":
            raise ValueError(f"unknown auth {self.auth!r}")
        return "\n".join(lines) + "\n"

    def start(self) -> RegistryServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.yml"
        config.write_text(self._config())
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        text = wait_for_file(self.log_path, containing="listening on ")
        found = re.search(r"listening on (?:127\.0\.0\.1|\[::\]|):(\d+)", text)
        assert found, f"no port in the registry's log: {text[-2000:]}"
        self.port = int(found.group(1))
        wait_for(self._answers, what=f"the registry at {self.url} to answer /v2/")
        return self

    def _answers(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"the registry exited: {self.log_path.read_text()[-2000:]}")
        try:
            status, _, _ = self.request("GET", "/v2/", auth=False)
        except OSError:
            return False
        return status in (200, 401)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- raw requests, authenticated as the first user -----------------------------------------------------
    def _context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.tls.ca_cert)) if self.tls else None

    def _authorization(self, repository: str | None) -> str | None:
        if self.auth == "htpasswd" and self.users:
            user, password = next(iter(self.users.items()))
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self.auth == "token" and self.token_server is not None and repository is not None:
            token = self.token_server.mint(
                "pusher", [{"type": "repository", "name": repository, "actions": ["pull", "push"]}]
            )
            return f"Bearer {token}"
        return None

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        repository: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        url = path if path.startswith("http") else self.url + path
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
        authorization = self._authorization(repository) if auth else None
        if authorization:
            request.add_header("Authorization", authorization)
        try:
            with urllib.request.urlopen(request, timeout=30, context=self._context()) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers), exc.read()

    # -- pushing -------------------------------------------------------------------------------------------
    def push_blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        status, headers, body = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/", body=b"", repository=repository
        )
        assert status == 202, f"blob upload start: {status} {body!r}"
        location = urllib.parse.urljoin(self.url, headers["Location"])
        separator = "&" if "?" in location else "?"
        status, _, body = self.request(
            "PUT",
            f"{location}{separator}digest={urllib.parse.quote(digest)}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
            repository=repository,
        )
        assert status == 201, f"blob upload: {status} {body!r}"
        return digest

    def push_manifest(self, repository: str, reference: str, manifest: dict[str, Any]) -> str:
        data = json.dumps(manifest, indent=2).encode()
        status, headers, body = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            body=data,
            headers={"Content-Type": manifest["mediaType"]},
            repository=repository,
        )
        assert status == 201, f"manifest put: {status} {body!r}"
        assert headers.get("Docker-Content-Digest") == digest_of(data)
        return digest_of(data)

    def push_image(
        self,
        repository: str,
        tag: str,
        platforms: list[str],
        *,
        docker_types: bool = False,
        single: bool = False,
    ) -> PushedImage:
        """Push an image for ``platforms`` (``linux/amd64``, ``linux/arm64/v8``): an index (OCI, or a Docker
        manifest list with ``docker_types``) over one manifest per platform, or with ``single`` (one platform)
        a lone manifest. Each manifest has a config naming its platform and a small layer."""
        manifest_type = DOCKER_MANIFEST if docker_types else OCI_MANIFEST
        entries: dict[str, tuple[str, int]] = {}
        for platform in platforms:
            os_name, arch, *variant = platform.split("/")
            layer = f"runvoy test layer {repository}:{tag} {platform}".encode()
            config: dict[str, Any] = {
                "architecture": arch,
                "os": os_name,
                "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
                "config": {"Cmd": ["/bin/sh"]},
            }
            if variant:
                config["variant"] = variant[0]
            config_data = json.dumps(config).encode()
            manifest = {
                "schemaVersion": 2,
                "mediaType": manifest_type,
                "config": {
                    "mediaType": DOCKER_CONFIG if docker_types else OCI_CONFIG,
                    "digest": self.push_blob(repository, config_data),
                    "size": len(config_data),
                },
                "layers": [
                    {
                        "mediaType": DOCKER_LAYER if docker_types else OCI_LAYER,
                        "digest": self.push_blob(repository, layer),
                        "size": len(layer),
                    }
                ],
            }
            if single:
                assert len(platforms) == 1, "a single manifest has one platform"
                digest = self.push_manifest(repository, tag, manifest)
                return PushedImage(repository, tag, digest, {platform: digest})
            data = json.dumps(manifest, indent=2).encode()
            entries[platform] = (self.push_manifest(repository, digest_of(data), manifest), len(data))
        index = {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST if docker_types else OCI_INDEX,
            "manifests": [
                {
                    "mediaType": manifest_type,
                    "digest": digest,
                    "size": size,
                    "platform": dict(
                        zip(("os", "architecture", "variant"), platform.split("/"), strict=False)
                    ),
                }
                for platform, (digest, size) in entries.items()
            ],
        }
        digest = self.push_manifest(repository, tag, index)
        return PushedImage(repository, tag, digest, {p: d for p, (d, _) in entries.items()})


@dataclass(frozen=True)
class PushedImage:
    repository: str
    tag: str
    digest: str  # what the tag points at: the index, or the lone manifest
    platforms: dict[str, str]  # platform -> its manifest's digest


USER, PASSWORD = "alice", "correct-horse-battery"
"""The user the htpasswd and token registries of the image tests know."""


@dataclass
class Registry:
    """A started registry and the images pushed into it, as the image tests' fixtures hand them out."""

    server: RegistryServer
    images: dict[str, PushedImage]
    tls: TlsMaterial | None = None
    token_server: TokenServer | None = None

    @property
    def host(self) -> str:
        return self.server.host
