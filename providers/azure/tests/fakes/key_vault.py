"""A fake of the Key Vault secrets API (``GET /secrets/{name}[/{version}]``) over HTTPS with a throw-away
self-signed certificate, for the real azure-keyvault-secrets client (which refuses plain HTTP).

It answers a request without a token with Key Vault's 401 challenge (``WWW-Authenticate: Bearer
authorization=..., resource=...``), as the client's challenge policy expects, then serves the secret.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

_SECRET = re.compile(r"^/secrets/(?P<name>[0-9A-Za-z-]{1,127})(?:/(?P<version>[0-9a-f]*))?/?$")
CHALLENGE = (
    'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", '
    'resource="https://vault.azure.net"'
)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "vault.pem", folder / "vault.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class FakeKeyVault:
    def __init__(self, folder: Path) -> None:
        self.cert, self._key = self_signed_certificate(folder)
        self.secrets: dict[str, str] = {}
        self.reads: list[str] = []
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> FakeKeyVault:
        vault = self

        class Handler(_Handler):
            pass

        Handler.vault = vault
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self._key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        httpd.daemon_threads = True
        self.httpd = httpd
        threading.Thread(target=httpd.serve_forever, name="fake-key-vault", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    vault: FakeKeyVault
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parsed = urlparse(self.path)
        if "api-version=" not in parsed.query:
            self._send(400, {"error": {"code": "BadParameter", "message": "api-version is required"}})
            return
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            self._send(
                401,
                {"error": {"code": "Unauthorized", "message": "token required"}},
                {"WWW-Authenticate": CHALLENGE},
            )
            return
        match = _SECRET.match(parsed.path)
        if match is None:
            self._send(404, {"error": {"code": "NotFound", "message": "no such path"}})
            return
        name = match["name"]
        self.vault.reads.append(name)
        value = self.vault.secrets.get(name)
        if value is None:
            self._send(
                404,
                {
                    "error": {
                        "code": "SecretNotFound",
                        "message": f"A secret with (name/id) {name} was not found in this key vault.",
                    }
                },
            )
            return
        self._send(
            200,
            {
                "value": value,
                "id": f"{self.vault.url}/secrets/{name}/0123456789abcdef",
                "attributes": {"enabled": True, "created": 1764200000, "updated": 1764200000},
            },
        )
