"""The provider interface: every store provider (Render, Neon, Supabase, Upstash) fits it.

A provider finds stores by exact name, creates one, refreshes its status, reads its connection
strings and deletes it. The pipeline, `status` and `teardown` drive providers only through this
interface; what sets one provider apart is declared in its `traits` and the optional protocols
below, never found out from its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from authkit_setup.kinds import Kind as Kind


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
    # The name is the one --db-name / --redis-name gave, so naming an existing store there
    # reuses it; False for a preview's derived name (`<name>-pr-9`).
    name_from_flag: bool = True


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


@dataclass(frozen=True)
class Traits:
    """What sets a provider's stores apart, declared once by the provider (and at its
    registration), so no caller has to know providers by name."""

    # The stores live beside the Render service, in its private network: in the service's
    # region (one elsewhere cannot be used), sized by --postgres-plan / --redis-plan with an IP
    # allow list, never placed by --provider-region, with free-plan and backup rules of their own.
    beside_service: bool = False
    # The provider answers a store's connection URLs while it is still being created.
    urls_before_ready: bool = False
    # A preview's Postgres is a branch `<prefix><preview>` of the base project (Neon), rather
    # than a store of its own named `<base>-<preview>`.
    preview_branch_prefix: str | None = None


NO_TRAITS = Traits()


def traits_of(provider: object) -> Traits:
    """A provider's declared traits (none declared: a plain provider)."""
    traits = getattr(provider, "traits", NO_TRAITS)
    return traits if isinstance(traits, Traits) else NO_TRAITS


class StoreProvider(Protocol):
    name: ClassVar[str]
    kinds: ClassVar[frozenset[Kind]]
    # Seconds a new store of each kind typically takes to become available: the wait step polls
    # the store expected to be ready last closely and the others sparingly (pipeline wait).
    typical_ready: ClassVar[Mapping[Kind, float]]

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

    # False while stores are only looked up (`status`, `teardown`): an unknown password must
    # not stop the lookup.
    password_needed: bool

    def recover_password(self, urls: Iterable[str]) -> None: ...


@runtime_checkable
class InWorkspace(Protocol):
    """A provider whose stores belong to the workspace of the Render service (Render): it
    learns the workspace once the service (or `--workspace`) is resolved."""

    def use_workspace(self, owner_id: str) -> None: ...


@runtime_checkable
class ChecksQuotas(Protocol):
    """A provider with a limit it enforces only when asked to create (Render: one free
    Postgres per workspace). The plan step asks before any change, so a run that would be
    refused half-way stops while nothing has been created."""

    def check_quota(self, spec: StoreSpec) -> None:
        """Raise PlanConflictError naming what is in the way of creating `spec`, and the ways
        out; return when nothing is known to be."""
        ...


@runtime_checkable
class PreviewBranches(Protocol):
    """A provider whose previews are branches of the base store (Neon)."""

    def for_preview(self, base_name: str) -> StoreProvider: ...


@runtime_checkable
class KnowsBackups(Protocol):
    """A provider that can tell a store's expiry, point-in-time recovery and backups (Render):
    the facts `status` shows. None: this store has no such API (a Render Key Value)."""

    def backup_facts(self, store: Store, now: datetime) -> dict[str, Any] | None: ...
