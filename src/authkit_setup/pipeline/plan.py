"""Plan step: look every store and variable up, and refuse before any change.

For each kind asked for, the store is found by exact name on its provider (two of one name stop
the run) and checked to be in the region planned for it; a store to be created is checked
against the provider's quotas (Render: one free Postgres per workspace); and the target's
variable is checked not to point elsewhere (unless --force, or a person says replace it).
Nothing is created or written until every refusal has had its chance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from authkit_setup.errors import PlanConflictError
from authkit_setup.output import Output
from authkit_setup.pipeline.service import ServiceRef
from authkit_setup.providers.base import (
    ChecksQuotas,
    ConnectionInfo,
    Kind,
    Readiness,
    RecoversPasswords,
    Store,
    StoreProvider,
    StoreSpec,
    traits_of,
)
from authkit_setup.settings import DATABASE_URL, DIRECT_URL
from authkit_setup.targets.base import EnvTarget


@dataclass
class StorePlan:
    spec: StoreSpec
    provider: StoreProvider
    existing: Store | None
    info: ConnectionInfo | None = None
    store: Store | None = None

    def read_info(self, store: Store) -> None:
        """The store's URLs; ConnectionInfo registers them as secrets the moment they exist."""
        self.info = self.provider.connection_info(store)

    def to_json(self, *, planned: bool) -> dict[str, Any]:
        """The store's entry in `resources`; a dry run (`planned`) adds what it would do."""
        store = self.store or self.existing
        if store is not None:
            doc = store.to_json()
        else:
            doc = {
                "kind": self.spec.kind.value,
                "provider": self.provider.name,
                "name": self.spec.name,
                "id": None,
                "region": self.spec.region,
                "plan": self.spec.plan,
                "status": "planned",
                "created": True,
            }
        if planned:
            doc["action"] = "reuse" if self.existing else "create"
        return doc


@dataclass(frozen=True)
class Near:
    """Where the stores belong: beside a Render service (`render`), or near a Render region
    (`provision`, whose app runs elsewhere)."""

    region: str  # a Render region
    service: ServiceRef | None = None

    @property
    def why(self) -> str:
        """Why a store in another region is refused (appended to the message)."""
        if self.service is None:
            return ""
        return f" near {self.service.name} ({self.region}): every query would cross regions"

    def announce(self, plan: StorePlan, out: Output) -> None:
        spec, existing, provider = plan.spec, plan.existing, plan.provider
        where = "" if self.service is not None else f" on {provider.name}"
        if existing is None:
            region = "" if self.service is not None else f" in {spec.region}"
            out.step(f"{spec.name}: will be created{where}{region}")
        else:
            out.step(f"{spec.name}: exists{where} ({existing.id}, {existing.status})")


@dataclass(frozen=True)
class Wanted:
    """What the command line asks for, by kind (sizes apply to providers that take them)."""

    db_name: str = "authkit-db"
    redis_name: str = "authkit-redis"
    database: str = "authkit"
    db_user: str = "authkit_user"
    postgres_version: str = "16"
    postgres_plan: str = "free"
    redis_plan: str = "free"
    maxmemory_policy: str = "noeviction"
    postgres_allow: tuple[str, ...] = ("0.0.0.0/0",)
    redis_allow: tuple[str, ...] = ()
    environment_id: str | None = None
    names_from_flags: bool = True  # False for a preview's names (derived from the flags)

    def spec(self, kind: Kind, provider: StoreProvider, near: Near) -> StoreSpec:
        """The store of `kind` on `provider`: in its region nearest `near`; a provider that
        lives beside the service takes the plan and allow list asked for."""
        postgres = kind is Kind.POSTGRES
        spec = StoreSpec(
            kind=kind,
            name=self.db_name if postgres else self.redis_name,
            region=provider.region_for(near.region),
            plan="default",
            database=self.database,
            user=self.db_user,
            version=self.postgres_version,
            name_from_flag=self.names_from_flags,
        )
        if traits_of(provider).beside_service:
            spec = replace(
                spec,
                plan=self.postgres_plan if postgres else self.redis_plan,
                maxmemory_policy=self.maxmemory_policy,
                allow_cidrs=self.postgres_allow if postgres else self.redis_allow,
                environment_id=self.environment_id,
            )
        return spec


def plan_stores(
    wanted: Wanted,
    providers: Mapping[Kind, StoreProvider],
    near: Near,
    target: EnvTarget,
    out: Output,
    *,
    force: bool,
    confirm: Callable[[str], bool] | None = None,
) -> tuple[list[StorePlan], dict[str, str | None]]:
    """Look everything up and stop before any change if something is wrong. Returns the plans
    (in kind order) and the target's current values."""
    # e.g. Supabase: the password lives only in the URLs written last time
    recover_passwords(providers.values(), target.read)
    plans: list[StorePlan] = []
    for kind in Kind:
        if kind not in providers:
            continue
        provider = providers[kind]
        spec = wanted.spec(kind, provider, near)
        existing = ensure_single(provider.find(kind, spec.name), spec)
        refuse_other_network(provider, spec, existing, near)
        refuse_other_region(provider, spec, existing, near=near.why)
        if existing is None and isinstance(provider, ChecksQuotas):
            provider.check_quota(spec)  # e.g. Render's one free Postgres per workspace
        plan = StorePlan(spec, provider, existing)
        near.announce(plan, out)
        if existing is not None and (
            traits_of(provider).urls_before_ready or existing.readiness is Readiness.READY
        ):
            plan.read_info(existing)
        plans.append(plan)

    current = target.current([p.spec.kind.env_var for p in plans])
    refuse_overwrites(plans, current, out, conflict=target.conflict, force=force, confirm=confirm)
    return plans, current


def ensure_single(found: list[Store], spec: StoreSpec) -> Store | None:
    """The one store of this name, or None; several are a conflict for a person to settle."""
    if len(found) > 1:
        ids = ", ".join(f"{s.id} ({s.region}, {s.status})" for s in found)
        raise PlanConflictError(
            f"{len(found)} {spec.kind.value} stores are named {spec.name!r}: {ids}",
            hint="delete or rename the extra ones in the dashboard, or choose another name "
            f"with {spec.kind.name_flag}",
        )
    return found[0] if found else None


def recover_passwords(
    providers: Iterable[StoreProvider], read: Callable[[str], str | None]
) -> None:
    """A provider that cannot read a password back (Supabase) gets the DATABASE_URL and
    DIRECT_URL written last time; they are `read` only when such a provider is in use."""
    recovering = [p for p in providers if isinstance(p, RecoversPasswords)]
    if recovering:
        written = [read(key) for key in (DATABASE_URL, DIRECT_URL)]
        for provider in recovering:
            provider.recover_password(v for v in written if v)


def refuse_other_network(
    provider: StoreProvider, spec: StoreSpec, existing: Store | None, near: Near
) -> None:
    """A store that lives beside the service is reached through the service's private network,
    which ends at its region: one elsewhere cannot be used."""
    service = near.service
    if (
        existing is None
        or service is None
        or not traits_of(provider).beside_service
        or existing.region == service.region
    ):
        return
    raise PlanConflictError(
        f"{spec.name} ({existing.id}) is in {existing.region}, but {service.name} runs in "
        f"{service.region}: its internal URL would not reach the service",
        hint=f"use another name ({spec.kind.name_flag}) to create one in "
        f"{service.region}, or move the service",
    )


def refuse_other_region(
    provider: StoreProvider, spec: StoreSpec, existing: Store | None, *, near: str = ""
) -> None:
    """Stop when the store named `spec.name` exists, but not in the region planned for it."""
    if existing is not None and existing.region != spec.region:
        raise PlanConflictError(
            f"{provider.name} {spec.name} ({existing.id}) is in {existing.region}, not in "
            f"{spec.region}{near}",
            hint=f"pass --provider-region {existing.region} to use it anyway, or another "
            f"{spec.kind.name_flag} to create one in {spec.region}",
        )


def refuse_overwrites(
    plans: list[StorePlan],
    current: Mapping[str, str | None],
    out: Output,
    *,
    conflict: Callable[[str, str, str], str],
    force: bool,
    confirm: Callable[[str], bool] | None = None,
) -> None:
    """Stop when a variable in `current` already points elsewhere than its plan's store
    (`conflict(key, value, store name)` says so), unless --force or `confirm` says replace it."""
    for plan in plans:
        key = plan.spec.kind.env_var
        value = current.get(key)
        if value is None or (plan.info is not None and value == plan.info.app_url):
            continue
        message = conflict(key, value, plan.spec.name)
        if force:
            out.warn(message + "; --force: it will be replaced")
        elif confirm is None or not confirm(message + ". Replace it?"):
            raise PlanConflictError(
                message, hint="re-run with --force to replace it (nothing has been changed)"
            )
