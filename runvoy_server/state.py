"""What one server process holds: its settings, ONE engine (a LocalBackend on the configured provider, shared by
every request, so one poller per provider), the provider's document store and what is built on it (keys,
audit), and the rate limiters. Nothing here is state another replica needs (decision 1501)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runvoy_core.errors import CapabilityMissing
from runvoy_core.logging import get_logger
from runvoy_core.ports.optional import DocumentStore
from runvoy_server.middleware.rate_limit import Buckets

if TYPE_CHECKING:
    from runvoy_core.config import Settings
    from runvoy_core.engine import LocalBackend
    from runvoy_core.team.audit import AuditLog
    from runvoy_core.team.context import Caller
    from runvoy_core.team.keys import KeyRing

log = get_logger("runvoy.server")


def document_store(engine: LocalBackend) -> DocumentStore:
    """The provider's DocumentStore, where the team state lives; a provider without one cannot host a server."""
    store = engine.store
    if not isinstance(store, DocumentStore):
        raise CapabilityMissing(
            f"provider {engine.provider_name!r} has no document store, which the runvoy server keeps its users, "
            "keys, policies and audit log in",
            hint="serve with a provider that declares the 'documents' capability (runvoy providers): local, "
            "aws, gcp or azure",
        )
    return store


@dataclass
class ServerState:
    settings: Settings
    engine: LocalBackend
    documents: DocumentStore
    keyring: KeyRing
    audit: AuditLog
    keys: Buckets
    """One bucket per API key."""
    failures: Buckets
    """One bucket per client address, spent by failed sign-ins only."""
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, engine: LocalBackend | None = None) -> ServerState:
        from runvoy_core.engine import LocalBackend
        from runvoy_core.team.audit import AuditLog
        from runvoy_core.team.keys import KeyRing

        engine = engine or LocalBackend(settings=settings)
        documents = document_store(engine)
        serve = settings.serve
        return cls(
            settings=settings,
            engine=engine,
            documents=documents,
            keyring=KeyRing(documents),
            audit=AuditLog(documents),
            keys=Buckets(serve.rate, serve.burst),
            failures=Buckets(serve.rate, serve.burst),
        )

    def audit_refused(self, action: str, resource: str, address: str | None, reason: str) -> None:
        """An audit entry for a refused sign-in; the refusal stands even when the store cannot take it."""
        try:
            self.audit.append(action, resource, "denied", address=address, detail={"reason": reason})
        except Exception as exc:
            log.error("server.audit_failed", action=action, error=type(exc).__name__)

    def verify_totp(self, caller: Caller, code: str) -> bool:
        from runvoy_server.second_factor import verify

        return verify(self.documents, caller, code)
