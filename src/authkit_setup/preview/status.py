"""`status`: where a preview's (or the base) stores are, what state they are in, and whether the
service points at them. Also the lookups `teardown` shares: scope, exact-name find, "points at".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from authkit_setup.ci import OutputValue
from authkit_setup.errors import CredentialsError, NotFoundError, UsageError
from authkit_setup.inputs import require_nonempty
from authkit_setup.output import Output
from authkit_setup.pipeline.names import (
    DEFAULT_DB_NAME,
    DEFAULT_REDIS_NAME,
    store_names,
    validate_preview,
)
from authkit_setup.pipeline.plan import recover_passwords
from authkit_setup.pipeline.service import ServiceRef, resolve_service, resolve_workspace
from authkit_setup.providers.base import (
    ConnectionInfo,
    InWorkspace,
    Kind,
    KnowsBackups,
    Readiness,
    RecoversPasswords,
    Store,
    StoreProvider,
    traits_of,
)
from authkit_setup.providers.registry import (
    DEFAULT_PROVIDER,
    ProviderChoice,
    ProviderSettings,
    default_providers,
)
from authkit_setup.providers.render import SERVICE_ID, RenderClient
from authkit_setup.secrets import register
from authkit_setup.timestamps import days_until

EXPIRY_WARNING_DAYS = 7


@dataclass(frozen=True)
class Scope:
    """Which workspace to look in, and the service whose variables we read (if any)."""

    owner_id: str
    service: ServiceRef | None


@dataclass(frozen=True)
class Target:
    """One store the command is about: its kind, exact name, and the preview it belongs to."""

    kind: Kind
    name: str
    base: str
    preview: str | None
    provider: str = DEFAULT_PROVIDER


@dataclass
class StoreStatus:
    kind: Kind
    provider: str
    name: str
    store: Store | None = None
    expires_in_days: int | None = None
    wired: bool | None = None
    pitr: str | None = None
    backups: bool = False

    @property
    def status(self) -> str:
        return self.store.status if self.store else "missing"

    def to_json(self) -> dict[str, Any]:
        s = self.store
        return {
            "kind": self.kind.value,
            "provider": self.provider,
            "name": self.name,
            "id": s.id if s else None,
            "region": s.region if s else None,
            "plan": (s.plan or None) if s else None,
            "status": self.status,
            "created_at": s.created_at if s else None,
            "expires_at": s.expires_at if s else None,
            "expires_in_days": self.expires_in_days,
            "wired": self.wired,
            "pitr": self.pitr,
            "backups": self.backups,
        }


@dataclass
class StatusReport:
    preview: str | None
    service: ServiceRef | None
    stores: list[StoreStatus]
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every store exists and is available."""
        return all(
            s.store is not None and s.store.readiness is Readiness.READY for s in self.stores
        )

    def github_outputs(self) -> dict[str, OutputValue]:
        """Non-secret results for `$GITHUB_OUTPUT`: ok, and per kind its name, id and status."""
        outputs: dict[str, OutputValue] = {
            "ok": self.ok,
            "service_id": self.service.id if self.service else "",
            "preview": self.preview,
        }
        for entry in self.stores:  # the first store of a kind wins (duplicates are warned about)
            kind = entry.kind.value
            outputs.setdefault(f"{kind}_name", entry.name)
            outputs.setdefault(f"{kind}_id", entry.store.id if entry.store else "")
            outputs.setdefault(f"{kind}_status", entry.status)
        return outputs

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "preview": self.preview,
            "service": self.service.to_json() if self.service else None,
            "stores": [s.to_json() for s in self.stores],
            "warnings": list(self.warnings),
        }


# -- lookups shared with teardown --------------------------------------------------------------


def _service_is_gone(client: RenderClient, service: str) -> bool:
    """True when no service has this srv-ID or exact name (not when several have the name)."""
    ref = service.strip()
    if SERVICE_ID.match(ref):
        try:
            client.service(ref)
        except NotFoundError:
            return True
        return False
    return not client.services_named(ref, None)


def resolve_scope(
    client: RenderClient,
    service: str | None,
    workspace: str | None,
    *,
    out: Output | None = None,
    missing_service_ok: bool = False,
) -> Scope:
    """The service's workspace, else --workspace, else the only workspace this key can see.

    `missing_service_ok` (teardown): a pull request's preview service is often deleted when the
    pull request closes, maybe before the teardown job runs; its stores must still go.
    """
    if service is not None:
        try:
            ref = resolve_service(client, service, workspace)
        except UsageError:
            if not (missing_service_ok and service.strip() and _service_is_gone(client, service)):
                raise
            if out is not None:
                out.warn(f"no service {service!r} (deleted already?): no variables to remove")
        else:
            return Scope(ref.owner_id, ref)
    if workspace is not None:
        return Scope(resolve_workspace(client, workspace), None)
    owners = list(client.owners())
    if len(owners) == 1 and owners[0].get("id"):
        return Scope(str(owners[0]["id"]), None)
    listed = ", ".join(f"{o.get('name')} ({o.get('id')})" for o in owners) or "none"
    raise UsageError(
        f"this API key can see {len(owners)} workspaces ({listed}): say which one",
        hint="pass --service NAME or --workspace tea-… [env var: RENDER_WORKSPACE]",
    )


def targets_for(
    preview: str | None,
    db_name: str,
    redis_name: str,
    *,
    include_base: bool = False,
    postgres: str = DEFAULT_PROVIDER,
    redis: str = DEFAULT_PROVIDER,
) -> list[Target]:
    """The stores a command is about: the preview's, and the base ones if asked (or no preview),
    on the providers named (`postgres` / `redis`)."""
    result: list[Target] = []
    if preview is not None:
        names = store_names(preview, db_name, redis_name, postgres=postgres, redis=redis)
        result += [
            Target(Kind.POSTGRES, names.db, db_name, preview, postgres),
            Target(Kind.REDIS, names.redis, redis_name, preview, redis),
        ]
    if preview is None or include_base:
        result += [
            Target(Kind.POSTGRES, db_name, db_name, None, postgres),
            Target(Kind.REDIS, redis_name, redis_name, None, redis),
        ]
    return result


def lookup_only(
    providers: Mapping[Kind, StoreProvider],
    scope: Scope,
    read: Callable[[str], str | None] | None,
) -> None:
    """Prepare providers for `status` / `teardown`, which only look stores up: Render's look in
    the scope's workspace; a provider that cannot read a password back (Supabase) takes it
    from the service's URLs (`read`) when there is a service, and an unknown password no
    longer stops the lookup."""
    for provider in providers.values():
        if isinstance(provider, InWorkspace):
            provider.use_workspace(scope.owner_id)
    if read is not None:
        recover_passwords(providers.values(), read)
    for provider in providers.values():
        if isinstance(provider, RecoversPasswords):
            provider.password_needed = False


def connection_info_or_none(provider: StoreProvider, store: Store) -> ConnectionInfo | None:
    """The store's URLs, or None when they cannot be read (e.g. a Supabase password nobody
    knows, or a Neon branch without the expected role): then "points at" cannot be told."""
    try:
        return provider.connection_info(store)
    except (CredentialsError, UsageError):
        return None


def find_exact(provider: StoreProvider, target: Target) -> list[Store]:
    """Stores named exactly `target.name` (the API's name filter may match more loosely)."""
    return [s for s in provider.find(target.kind, target.name) if s.name == target.name]


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def points_at(value: str | None, store: Store, info: ConnectionInfo | None) -> bool:
    """Does a DATABASE_URL / REDIS_URL value point at `store`?

    The same URL as the store's connection strings, or a host that is the store's id: Render's
    internal host is the bare id (`dpg-…-a`, `red-…`), the external Postgres host starts with it
    (`dpg-…-a.oregon-postgres.render.com`), render-api.md §3.3 and §4.3.
    """
    if not value:
        return False
    if info is not None and value in {info.app_url, info.external_url}:
        return True
    host, store_id = _host(value), store.id.lower()
    return bool(store_id) and (host == store_id or host.startswith(store_id + "."))


def read_service_env(
    client: RenderClient, out: Output, service: ServiceRef, kinds: Iterable[Kind]
) -> dict[Kind, str | None]:
    """The service's DATABASE_URL / REDIS_URL, masked in GitHub Actions as soon as read."""
    values = {kind: client.env_var(service.id, kind.env_var) for kind in dict.fromkeys(kinds)}
    register(*values.values())
    return values


# -- status --------------------------------------------------------------------------------------


def _store_facts(provider: StoreProvider, entry: StoreStatus, now: datetime) -> None:
    """Expiry, point-in-time recovery and backups of one existing store, from a provider that
    knows them; otherwise (Neon / Supabase / Upstash, a Render Key Value) those facts stay null
    rather than guessed."""
    store = entry.store
    assert store is not None
    facts = provider.backup_facts(store, now) if isinstance(provider, KnowsBackups) else None
    if facts is None:
        entry.expires_in_days = days_until(store.expires_at, now)
        entry.pitr, entry.backups = None, False
    else:
        entry.expires_in_days = facts["expires_in_days"]
        entry.pitr = facts["pitr"]
        entry.backups = bool(facts["backups"])


def collect_status(
    client: RenderClient,
    request: PreviewScope,
    out: Output,
    *,
    providers: Mapping[Kind, StoreProvider] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> StatusReport:
    preview = request.preview
    scope = resolve_scope(client, request.service, request.workspace)
    chosen = dict(providers or default_providers(ProviderSettings(out=out, render_client=client)))
    svc = scope.service
    lookup_only(chosen, scope, (lambda key: client.env_var(svc.id, key)) if svc else None)
    targets = targets_for(
        preview,
        request.db_name,
        request.redis_name,
        postgres=chosen[Kind.POSTGRES].name,
        redis=chosen[Kind.REDIS].name,
    )
    env = (
        read_service_env(client, out, scope.service, [t.kind for t in targets])
        if scope.service
        else {}
    )
    report = StatusReport(preview, scope.service, [])
    for target in targets:
        provider = chosen[target.kind]
        found = find_exact(provider, target)
        if not found:
            entry = StoreStatus(target.kind, provider.name, target.name)
            if scope.service is not None:
                entry.wired = False
            report.stores.append(entry)
            continue
        if len(found) > 1:
            ids = ", ".join(s.id for s in found)
            report.warnings.append(
                f"{len(found)} {target.kind.value} stores are named {target.name!r} ({ids}); "
                "`render` stops until only one is left: delete the others"
            )
        for store in found:
            entry = StoreStatus(target.kind, store.provider, store.name, store)
            _store_facts(provider, entry, now())
            days = entry.expires_in_days
            if days is not None and days < EXPIRY_WARNING_DAYS:
                when = (
                    "has expired"
                    if days < 0
                    else ("expires within a day" if days == 0 else f"expires in {days} days")
                )
                report.warnings.append(
                    f"{store.name} ({store.id}) is a free database and {when} "
                    f"({store.expires_at}); upgrade it to a paid plan (e.g. basic_256mb) in the "
                    "Render Dashboard, or export the data before then"
                )
            if scope.service is not None:
                info = connection_info_or_none(provider, store)
                entry.wired = points_at(env.get(target.kind), store, info)
                if traits_of(provider).beside_service and store.region != scope.service.region:
                    report.warnings.append(
                        f"{store.name} is in {store.region} but {scope.service.name} runs in "
                        f"{scope.service.region}: internal URLs do not cross regions"
                    )
            if store.readiness is Readiness.FAILED:
                report.warnings.append(f"{store.name} ({store.id}) is {store.status}")
            report.stores.append(entry)
    for warning in report.warnings:
        out.warn(warning)
    missing = [s.name for s in report.stores if s.store is None]
    if missing:
        flags = f" --preview {preview}" if preview else ""
        service_name = scope.service.name if scope.service else "NAME"
        out.info(
            f"missing: {', '.join(missing)}; `authkit-setup render --service {service_name}"
            f"{flags}` creates them"
        )
    return report


# -- the `status` command's request ----------------------------------------------------------


@dataclass(frozen=True)
class PreviewScope(ProviderChoice):
    """What `status` and `teardown` are about: a preview's stores (or the base ones) on the
    chosen providers, and the service whose variables may point at them."""

    postgres: str | None = DEFAULT_PROVIDER
    redis: str | None = DEFAULT_PROVIDER
    preview: str | None = None
    service: str | None = None
    workspace: str | None = None
    db_name: str = DEFAULT_DB_NAME
    redis_name: str = DEFAULT_REDIS_NAME
    api_key: str | None = None

    def check(self) -> None:
        """A one-line usage error (exit 2) for a bad preview name or an empty store name."""
        if self.preview is not None:
            validate_preview(self.preview)
        require_nonempty(("--db-name", self.db_name), ("--redis-name", self.redis_name))


class StatusRequest(PreviewScope):
    """`authkit-setup status`'s options, as given."""


def status(request: StatusRequest, out: Output) -> StatusReport:
    """Check the request, look the stores up, and publish the non-secret results."""
    from authkit_setup.ci import write_outputs
    from authkit_setup.pipeline.names import render_and_preview_stores

    request.check()
    with render_and_preview_stores(out, request) as (client, providers):
        report = collect_status(client, request, out, providers=providers)
    write_outputs(out, report.github_outputs())
    return report
