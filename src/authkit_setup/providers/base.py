"""The provider interface: every store provider (Render, Neon, Supabase, Upstash) fits it.

A provider finds stores by exact name, creates one, refreshes its status, reads its connection
strings and deletes it. `flow/` drives providers only through this interface.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable


class Kind(StrEnum):
    POSTGRES = "postgres"
    REDIS = "redis"


class Readiness(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class StoreSpec:
    """What to get-or-create. Provider-specific fields are ignored by providers that lack them."""

    kind: Kind
    name: str
    region: str
    plan: str
    database: str = "authkit"
    user: str = "authkit_user"
    version: str = "16"
    maxmemory_policy: str = "noeviction"
    allow_cidrs: tuple[str, ...] = ()
    environment_id: str | None = None


@dataclass
class Store:
    provider: str
    kind: Kind
    id: str
    name: str
    region: str
    plan: str
    status: str
    readiness: Readiness
    created: bool = False
    created_at: str | None = None
    expires_at: str | None = None
    allow_cidrs: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def refreshed(self, fresh: Store) -> Store:
        """`fresh`, this store read again, still marked as created when this run created it."""
        fresh.created = self.created
        return fresh

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "provider": self.provider,
            "name": self.name,
            "id": self.id,
            "region": self.region,
            "plan": self.plan,
            "status": self.status,
            "created": self.created,
        }


@dataclass(frozen=True)
class ConnectionInfo:
    """`app_url` goes into the service; `external_url` is for checks and local .env files."""

    app_url: str
    external_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. DIRECT_URL for Prisma migrations
    external_reachable: bool = True
    unreachable_reason: str | None = None
    # Seconds a fresh store's endpoint may refuse its first connections (Upstash answers the
    # API at once, the TCP endpoint possibly a little later): verification retries that long.
    verify_grace: float = 0.0

    def __post_init__(self) -> None:
        # Whoever reads a store's URLs learns its password: register them the moment they exist.
        from authkit_setup.secrets import register

        register(self.app_url, self.external_url, *self.extra_env.values())


class StoreProvider(Protocol):
    name: ClassVar[str]
    kinds: ClassVar[frozenset[Kind]]

    def find(self, kind: Kind, name: str) -> list[Store]: ...

    def create(self, spec: StoreSpec) -> Store: ...

    def refresh(self, store: Store) -> Store: ...

    def connection_info(self, store: Store) -> ConnectionInfo: ...

    def delete(self, store: Store) -> None: ...

    def region_for(self, render_region: str) -> str:
        """This provider's region nearest a Render region (oregon, ohio, …), in its spelling."""
        ...


@runtime_checkable
class RecoversPasswords(Protocol):
    """A provider that cannot read a store's password back (Supabase) takes it from URLs it
    wrote earlier (the service's or the .env file's DATABASE_URL / DIRECT_URL)."""

    def recover_password(self, urls: Iterable[str]) -> None: ...
