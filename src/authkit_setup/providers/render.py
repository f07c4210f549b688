"""Render: Postgres and Key Value stores, and the web service whose environment we write.

Every Render endpoint the tool uses is in this file (facts: shared/reference/render-api.md).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from authkit_setup.errors import (
    ApiError,
    BadResponseError,
    NotFoundError,
    PlanConflictError,
)
from authkit_setup.http import ApiClient, expect_type, paginate_cursor, required_fields
from authkit_setup.inputs import one_of
from authkit_setup.providers.base import (
    ConnectionInfo,
    Kind,
    Readiness,
    Store,
    StoreSpec,
    Traits,
)
from authkit_setup.providers.regions import RENDER_REGIONS
from authkit_setup.providers.render_refusals import CREATE_REFUSALS, free_plan_refusal, refusal
from authkit_setup.timestamps import days_until

# Stores in the service's private network, whose URLs Render answers in any state.
TRAITS = Traits(beside_service=True, urls_before_ready=True)
REGIONS = RENDER_REGIONS
PITR_UNKNOWN = "UNKNOWN"
SERVICE_ID = re.compile(r"^srv-[a-z0-9]{20}$")
# Legacy Postgres plans are rejected for new databases; basic_256mb is the "starter" equivalent.
LEGACY_POSTGRES_PLANS = {"starter": "basic_256mb"}
POSTGRES_PLANS = frozenset(
    {"free", "basic_256mb", "basic_1gb", "basic_4gb"}
    | {f"pro_{n}gb" for n in (4, 8, 16, 32, 64, 128, 192, 256, 384, 512)}
    | {f"accelerated_{n}gb" for n in (16, 32, 64, 128, 256, 384, 512, 768, 1024)}
)
KEY_VALUE_PLANS = frozenset({"free", "starter", "standard", "pro", "pro_plus"})
MAXMEMORY_POLICIES = (
    "noeviction",
    "allkeys_lfu",
    "allkeys_lru",
    "allkeys_random",
    "volatile_lfu",
    "volatile_lru",
    "volatile_random",
    "volatile_ttl",
)
READY_STATUSES = frozenset({"available"})
PENDING_STATUSES = frozenset(
    {
        "unknown",
        "creating",
        "config_restart",
        "updating_instance",
        "maintenance_scheduled",
        "maintenance_in_progress",
        "recovery_in_progress",
    }
)
FAILED_STATUSES = frozenset({"suspended", "unavailable", "recovery_failed"})
DEPLOY_LIVE = "live"
DEPLOY_FAILED = frozenset(
    {"build_failed", "update_failed", "pre_deploy_failed", "canceled", "deactivated"}
)
CREDENTIALS_HINT = "pass --api-key or set RENDER_API_KEY; create a key under Render Dashboard → Account Settings → API Keys"


def normalize_postgres_plan(plan: str) -> str:
    return _render_plan(
        plan,
        POSTGRES_PLANS,
        "--postgres-plan",
        "Render Postgres",
        hint="use free, starter (= basic_256mb), basic_1gb, basic_4gb, pro_4gb, …",
        legacy=LEGACY_POSTGRES_PLANS,
    )


def normalize_key_value_plan(plan: str) -> str:
    return _render_plan(
        plan,
        KEY_VALUE_PLANS,
        "--redis-plan",
        "Render Key Value",
        hint="use free, starter, standard, pro or pro_plus",
    )


def _render_plan(
    plan: str,
    plans: Collection[str],
    flag: str,
    what: str,
    *,
    hint: str,
    legacy: Mapping[str, str] | None = None,
) -> str:
    """`plan` as Render spells it (lower case, `_` for `-`, a legacy name mapped), or a usage
    error naming `flag` and the plans there are."""
    value = plan.strip().lower().replace("-", "_")
    value = (legacy or {}).get(value, value)
    return one_of(value, plans, f"{flag} {value!r} is not a {what} plan", hint=hint)


def normalize_policy(policy: str) -> str:
    value = policy.strip().lower().replace("-", "_")
    return one_of(value, MAXMEMORY_POLICIES, f"--maxmemory-policy {policy!r} is not valid")


def readiness(status: str) -> Readiness:
    if status in READY_STATUSES:
        return Readiness.READY
    if status in FAILED_STATUSES:
        return Readiness.FAILED
    return Readiness.PENDING


class RenderClient(ApiClient):
    provider = "Render"
    credentials_hint = CREDENTIALS_HINT
    # Client-side limits (observed): GET 400/min; POST /postgres, /key-value, /services share
    # 20/hour; deploys 10/min per service. We wait instead of collecting 429s.
    rate_limits = {
        "get": (400, 60.0),
        "create": (20, 3600.0),
        "deploy": (10, 60.0),
        "mutate": (100, 60.0),
    }

    def bucket_for(self, method: str, path: str) -> str | None:
        if method == "GET":
            return "get"
        if method == "POST" and path in ("/postgres", "/key-value", "/services"):
            return "create"
        if method == "POST" and path.endswith("/deploys"):
            return "deploy"
        return "mutate"

    # -- account ------------------------------------------------------------------------
    def owners(self) -> Iterator[dict[str, Any]]:
        return paginate_cursor(self, "/owners", item_key="owner")

    # -- services -----------------------------------------------------------------------
    def service(self, service_id: str) -> dict[str, Any]:
        return self.get_object(f"/services/{service_id}", "service")

    def services_named(self, name: str, owner_id: str | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"name": name}
        if owner_id:
            params["ownerId"] = owner_id
        # The name filter's exactness is undocumented: filter exactly here as well.
        return [
            s
            for s in paginate_cursor(self, "/services", item_key="service", params=params)
            if s.get("name") == name
        ]

    def services(self, owner_id: str | None) -> Iterator[dict[str, Any]]:
        return paginate_cursor(
            self,
            "/services",
            item_key="service",
            params={"ownerId": owner_id} if owner_id else None,
        )

    def update_service(self, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            expect_type(
                self.request("PATCH", f"/services/{service_id}", json_body=body), dict, "service"
            )
        )

    # -- env vars: one key at a time, never the bulk PUT that replaces the whole set ----------
    def env_var(self, service_id: str, key: str) -> str | None:
        try:
            body = self.get(f"/services/{service_id}/env-vars/{quote(key, safe='')}")
        except NotFoundError:
            return None
        body = expect_type(body, dict, "env var")
        value = body.get("value")
        if value is None and isinstance(body.get("envVar"), dict):
            value = body["envVar"].get("value")
        return None if value is None else str(value)

    def put_env_var(self, service_id: str, key: str, value: str) -> None:
        self.request(
            "PUT",
            f"/services/{service_id}/env-vars/{quote(key, safe='')}",
            json_body={"value": value},
        )

    def delete_env_var(self, service_id: str, key: str) -> None:
        self.delete_if_present(f"/services/{service_id}/env-vars/{quote(key, safe='')}")

    # -- deploys --------------------------------------------------------------------------
    def create_deploy(self, service_id: str) -> dict[str, Any] | None:
        """201 → the deploy; 202 (queued, empty body) → None: find it in the list."""
        # A deploy POST is not idempotent but a duplicate deploy is harmless; still, do not retry
        # on ambiguous failures: the caller lists deploys first.
        body = self.request(
            "POST",
            f"/services/{service_id}/deploys",
            json_body={},
            idempotent=False,
            expect_json=False,
        )
        return dict(body) if isinstance(body, dict) and body.get("id") else None

    def deploys(
        self, service_id: str, limit: int = 5, *, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The service's latest deploys, newest first (only those in `status`, if given)."""
        query: dict[str, Any] = {"limit": limit}
        if status is not None:
            query["status"] = status
        page = expect_type(self.get(f"/services/{service_id}/deploys", query), list, "deploys")
        return [
            dict(e["deploy"])
            for e in page
            if isinstance(e, dict) and isinstance(e.get("deploy"), dict)
        ]

    def deploy(self, service_id: str, deploy_id: str) -> dict[str, Any]:
        return self.get_object(f"/services/{service_id}/deploys/{deploy_id}", "deploy")

    # -- stores ---------------------------------------------------------------------------
    def stores_named(self, kind: Kind, name: str, owner_id: str | None) -> list[dict[str, Any]]:
        path, item_key = _store_path(kind)
        params: dict[str, Any] = {"name": name}
        if owner_id:
            params["ownerId"] = owner_id
        if kind is Kind.POSTGRES:
            params["includeReplicas"] = "false"
        return [
            s
            for s in paginate_cursor(self, path, item_key=item_key, params=params)
            if s.get("name") == name
        ]

    def stores(self, kind: Kind, owner_id: str | None) -> Iterator[dict[str, Any]]:
        path, item_key = _store_path(kind)
        return paginate_cursor(
            self, path, item_key=item_key, params={"ownerId": owner_id} if owner_id else None
        )

    def store(self, kind: Kind, store_id: str) -> dict[str, Any]:
        path, _ = _store_path(kind)
        return self.get_object(f"{path}/{store_id}", "store")

    def create_store(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        path, _ = _store_path(kind)
        return self.create(path, body, "created store")

    def delete_store(self, kind: Kind, store_id: str) -> None:
        path, _ = _store_path(kind)
        self.delete_if_present(f"{path}/{store_id}")

    def connection_info(self, kind: Kind, store_id: str) -> dict[str, Any]:
        path, _ = _store_path(kind)
        return self.get_object(f"{path}/{store_id}/connection-info", "connection info")

    def recovery(self, postgres_id: str) -> dict[str, Any]:
        return self.get_object(f"/postgres/{postgres_id}/recovery", "recovery")

    def start_export(self, postgres_id: str) -> None:
        self.request(
            "POST",
            f"/postgres/{postgres_id}/export",
            json_body={},
            idempotent=False,
            expect_json=False,
        )

    def exports(self, postgres_id: str) -> list[dict[str, Any]]:
        return self.get_objects(f"/postgres/{postgres_id}/export", "exports")


def _store_path(kind: Kind) -> tuple[str, str]:
    return ("/postgres", "postgres") if kind is Kind.POSTGRES else ("/key-value", "keyValue")


def _allow_list(raw: Any) -> list[str]:
    # An empty allow list comes back as null.
    if not isinstance(raw, list):
        return []
    return [str(e.get("cidrBlock")) for e in raw if isinstance(e, dict) and e.get("cidrBlock")]


def store_from_api(kind: Kind, body: dict[str, Any], *, created: bool = False) -> Store:
    store_id, name = required_fields(
        body, "id", "name", what=f"Render returned a {kind.value} store"
    )
    status = str(body.get("status") or "unknown")
    return Store(
        provider="render",
        kind=kind,
        id=store_id,
        name=name,
        region=str(body.get("region") or ""),
        plan=str(body.get("plan") or ""),
        status=status,
        readiness=readiness(status),
        created=created,
        created_at=body.get("createdAt"),
        expires_at=body.get("expiresAt"),
        allow_cidrs=_allow_list(body.get("ipAllowList")),
        raw=body,
    )


class RenderStores:
    """Render Postgres and Key Value behind the StoreProvider interface."""

    name: ClassVar[str] = "render"
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.POSTGRES, Kind.REDIS})
    traits: ClassVar[Traits] = TRAITS
    # Render Postgres took about 40 s in a recording and "roughly a minute" in Render's own
    # guidance; Key Value is assumed quicker (UNCONFIRMED): it only orders the polling.
    typical_ready: ClassVar[Mapping[Kind, float]] = {Kind.POSTGRES: 60.0, Kind.REDIS: 20.0}

    def __init__(self, client: RenderClient, owner_id: str | None = None) -> None:
        self.client = client
        self.owner_id = owner_id

    def use_workspace(self, owner_id: str) -> None:
        """The workspace of the service (or --workspace): where stores are found and made."""
        self.owner_id = owner_id

    def find(self, kind: Kind, name: str) -> list[Store]:
        return [
            store_from_api(kind, s) for s in self.client.stores_named(kind, name, self.owner_id)
        ]

    def create(self, spec: StoreSpec) -> Store:
        allow = [{"cidrBlock": c, "description": "authkit-setup"} for c in spec.allow_cidrs]
        body: dict[str, Any]
        if spec.kind is Kind.POSTGRES:
            body = {
                "name": spec.name,
                "ownerId": self.owner_id,
                "plan": spec.plan,
                "version": str(spec.version),
                "region": spec.region,
                "databaseName": spec.database,
                "databaseUser": spec.user,
                "ipAllowList": allow,  # always sent: the default when omitted is undocumented
            }
        else:
            body = {
                "name": spec.name,
                "ownerId": self.owner_id,
                "plan": spec.plan,
                "region": spec.region,
                "maxmemoryPolicy": spec.maxmemory_policy,
                "ipAllowList": allow,
            }
        if spec.environment_id:
            body["environmentId"] = spec.environment_id
        try:
            answer = self.client.create_store(spec.kind, body)
        except ApiError as exc:
            if exc.status not in CREATE_REFUSALS:
                raise
            raise refusal(spec, exc, lambda: self._free_stores(spec)) from exc
        return store_from_api(spec.kind, answer, created=True)

    def check_quota(self, spec: StoreSpec) -> None:
        """Render allows one free Postgres per workspace (render-api.md §3.7) and refuses a
        second with a 400, by which time the Key Value beside it has been created: find the one
        in the way now, before any change. (A free Key Value limit is UNCONFIRMED, so only its
        refusal is explained, in `create`.)"""
        if spec.kind is not Kind.POSTGRES or spec.plan != "free" or self.owner_id is None:
            return
        in_the_way = self._free_stores(spec)
        if in_the_way:
            message, hint = free_plan_refusal(spec, in_the_way, now=datetime.now(UTC))
            raise PlanConflictError(message, hint=f"{hint} (nothing has been changed)")

    def _free_stores(self, spec: StoreSpec) -> list[Store]:
        """The workspace's free stores of `spec.kind`, but one named `spec.name`: a concurrent
        run may just have made that one, and the create step will find and use it."""
        return [
            store_from_api(spec.kind, body)
            for body in self.client.stores(spec.kind, self.owner_id)
            if body.get("plan") == "free" and body.get("name") != spec.name
        ]

    def refresh(self, store: Store) -> Store:
        return store.refreshed(store_from_api(store.kind, self.client.store(store.kind, store.id)))

    def connection_info(self, store: Store) -> ConnectionInfo:
        info = self.client.connection_info(store.kind, store.id)
        internal = info.get("internalConnectionString")
        external = info.get("externalConnectionString")
        if not isinstance(internal, str) or not internal:
            raise BadResponseError(
                f"Render returned no internal connection string for {store.name}"
            )
        from authkit_setup.secrets import register

        # The URLs are registered by ConnectionInfo; the bare password is said here as well.
        password = info.get("password")
        register(password if isinstance(password, str) else None)
        external_url = external if isinstance(external, str) and external else None
        reachable = bool(store.allow_cidrs)
        reason = None
        if not reachable:
            reason = (
                f"{store.name}'s IP allow list is empty, so Render refuses connections from outside "
                "its private network"
            )
        if store.kind is Kind.POSTGRES and external_url and "sslmode=" not in external_url:
            # Render requires TLS from outside; the internal URL stays exactly as returned.
            external_url += ("&" if "?" in external_url else "?") + "sslmode=require"
        return ConnectionInfo(
            app_url=internal,
            external_url=external_url,
            external_reachable=reachable,
            unreachable_reason=reason,
        )

    def delete(self, store: Store) -> None:
        self.client.delete_store(store.kind, store.id)

    def region_for(self, render_region: str) -> str:
        return render_region

    def backup_facts(self, store: Store, now: datetime) -> dict[str, Any] | None:
        """Expiry, point-in-time recovery and backups of a Postgres; a Key Value has no backup
        or restore API (paid plans persist to disk, which is durability, not a backup:
        render-api.md §4), so None."""
        if store.kind is not Kind.POSTGRES:
            return None
        return backup_facts(self.client, store, now=now)


def backup_facts(
    client: RenderClient, store: Store, *, now: datetime | None = None
) -> dict[str, Any]:
    """Backup facts of one Render Postgres `store` (for `backup` and `status`). One API call.

    Keys (a JSON contract):
    - `pitr`: Render's recoveryStatus: "AVAILABLE", "BACKUP_NOT_READY", "NOT_AVAILABLE", or
      "UNKNOWN" when Render does not say;
    - `pitr_starts_at`: the earliest restorable time (ISO 8601) or None;
    - `expires_at`: when Render deletes a free database (ISO 8601) or None;
    - `expires_in_days`: whole days left (negative once expired) or None;
    - `backups`: True when Render keeps backups of it (paid plans; free ones have none);
    - `plan`: the database's plan, as the API spells it.
    """
    try:
        recovery = client.recovery(store.id)
    except NotFoundError:
        recovery = {}
    except ApiError as exc:
        # Render answers 400 for a free database, which has no recovery: not a failure.
        if exc.status != 400 or store.plan != "free":
            raise
        recovery = {"recoveryStatus": "NOT_AVAILABLE"}
    status = recovery.get("recoveryStatus")
    expires_raw = store.expires_at or store.raw.get("expiresAt")
    days = days_until(expires_raw, now or datetime.now(UTC))
    starts_at = recovery.get("startsAt")
    return {
        "pitr": str(status) if isinstance(status, str) and status else PITR_UNKNOWN,
        "pitr_starts_at": starts_at if isinstance(starts_at, str) else None,
        "expires_at": expires_raw if isinstance(expires_raw, str) and expires_raw else None,
        "expires_in_days": days,
        "backups": store.plan != "free",
        "plan": store.plan,
    }
