"""A fake of Render's REST API (``https://api.render.com/v1``): a real HTTP server holding state.

The behaviour follows ``/work/shared/reference/render-api.md`` (facts tagged with their sources);
section numbers below (``§3.1``) point into that document. Stdlib only, apart from the lazily
imported drivers in :class:`RealBackend`.

Usage::

    with FakeRenderAPI(api_keys={FAKE_RENDER_KEY}, clock=ManualClock()) as fake:
        owner = fake.add_owner("AuthKit Team")
        web = fake.add_service("authkit-web", owner_id=owner["id"])
        client = httpx.Client(base_url=fake.base_url,
                              headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"})

What it models (all paths under ``/v1``):

- ``GET /users``, ``GET /owners`` (+ ``/{id}``), services (seeded with :meth:`add_service`,
  listed, read, PATCHed), service env vars (bulk PUT *replaces*; per-key GET/PUT/DELETE),
  deploys, ``/postgres`` and ``/key-value`` (create, list, read, PATCH, DELETE, connection info,
  suspend/resume; Postgres recovery and exports).
- Store status ``unknown -> creating -> available`` and deploy status
  ``created -> build_in_progress -> live`` driven by the injected clock.
- Cursor pagination on every list (``limit`` 1..100, default 20; the end is ``[]``).
- Rate limits with ``Ratelimit-*`` headers on every response (fixed windows on the clock).
- Fault injection (:meth:`FakeRenderAPI.inject`), a request log, inspection helpers.

Deliberate simplifications, so tests do not rely on them:

- Unknown JSON fields are ignored silently, as a Go server decoding into structs would. In
  particular ``serviceDetails.envSpecificDetails.preDeployCommand`` in a PATCH does nothing
  (the PATCH location is ``serviceDetails.preDeployCommand``, §7): assert through a GET.
- The backend is called at create time (not when the store becomes available) and connection
  info is served as soon as the store exists, whatever its status.
- IP allow lists are stored and echoed, never enforced.
- Error messages the reference does not quote are invented (marked ``invented`` below).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import random
import re
import secrets
import string
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes import common
from tests.fakes.common import (
    JSON_TYPE,
    ROUTE_ERRORS,
    ApiRequest,
    ApiResponse,
    BearerKeys,
    InjectedFault,
    ManualClock,
    PgCredentials,
    RecordedRequest,
    RedisCredentials,
    _HttpHandler,
    auth_scheme,
    bearer_token,
    encode_body,
    find_route,
    hand_out,
    json_response,
    random_password,
    split_prefix,
)

__all__ = [
    "DATABASE_STATUSES",
    "FAKE_OWNER_NAME",
    "FAKE_RENDER_KEY",
    "LEGACY_POSTGRES_PLAN_MESSAGE",
    "FakeRenderAPI",
    "Fault",
    "InjectedFault",
    "ManualClock",
    "NullBackend",
    "PgCredentials",
    "RateLimits",
    "RealBackend",
    "RecordedRequest",
    "RedisCredentials",
    "StoreBackend",
]

FAKE_RENDER_KEY = "rnd_fake-render-key-for-tests-0123"
"""An API key the fixtures accept (hyphens keep it from looking like a real ``rnd_`` key)."""
FAKE_OWNER_NAME = "AuthKit Team"
"""The name of the team owner the fixtures seed."""

REGIONS = frozenset({"frankfurt", "oregon", "ohio", "singapore", "virginia"})
SERVICE_TYPES = frozenset(
    {"static_site", "web_service", "private_service", "background_worker", "cron_job"}
)
SERVICE_PLANS = frozenset(
    {"free", "starter", "standard", "pro", "pro_plus", "pro_max", "pro_ultra"}
)
RUNTIMES = frozenset({"docker", "elixir", "go", "node", "python", "ruby", "rust", "image"})

# §3.1: the enum still lists the legacy plans, but new databases reject them.
POSTGRES_PLANS = frozenset(
    {"free", "starter", "standard", "pro", "pro_plus", "custom"}
    | {"basic_256mb", "basic_1gb", "basic_4gb"}
    | {f"pro_{size}gb" for size in (4, 8, 16, 32, 64, 128, 192, 256, 384, 512)}
    | {f"accelerated_{size}gb" for size in (16, 32, 64, 128, 256, 384, 512, 768, 1024)}
)
LEGACY_POSTGRES_PLANS = frozenset({"starter", "standard", "pro", "pro_plus"})
LEGACY_POSTGRES_PLAN_MESSAGE = (
    "Legacy Postgres plans, including 'starter', are no longer supported for new databases."
)
POSTGRES_VERSIONS = frozenset(str(v) for v in range(11, 19))
KEY_VALUE_PLANS = frozenset({"free", "starter", "standard", "pro", "pro_plus"})
MAXMEMORY_POLICIES = frozenset(
    {
        "noeviction",
        "allkeys_lfu",
        "allkeys_lru",
        "allkeys_random",
        "volatile_lfu",
        "volatile_lru",
        "volatile_random",
        "volatile_ttl",
    }
)
PERSISTENCE_MODES = frozenset({"journal_snapshot", "snapshot", "off"})
DATABASE_STATUSES = frozenset(
    {
        "creating",
        "available",
        "unavailable",
        "config_restart",
        "suspended",
        "maintenance_scheduled",
        "maintenance_in_progress",
        "recovery_failed",
        "recovery_in_progress",
        "unknown",
        "updating_instance",
    }
)
DEPLOY_STATUSES = frozenset(
    {
        "created",
        "queued",
        "build_in_progress",
        "update_in_progress",
        "live",
        "deactivated",
        "build_failed",
        "update_failed",
        "canceled",
        "pre_deploy_in_progress",
        "pre_deploy_failed",
    }
)
KEY_VALUE_VERSION = "8.1.4"  # §4.1, as recorded
FREE_POSTGRES_LIFETIME = timedelta(days=30)  # §3.7: 30 vs 90 days is UNCONFIRMED

_ID_ALPHABET = string.ascii_lowercase + string.digits
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,57}")


# --------------------------------------------------------------------------------------------
# Store backends: what really exists behind a fake Postgres / Key Value


class StoreBackend(Protocol):
    """Creates the real database / ACL user behind a fake store, so verification is real."""

    def create_postgres(self, database: str, user: str) -> PgCredentials: ...

    def drop_postgres(self, database: str, user: str) -> None: ...

    def create_redis(self, username: str) -> RedisCredentials: ...

    def drop_redis(self, username: str) -> None: ...


class NullBackend(common.NullBackend):
    """Fabricates credentials and touches nothing. Hosts end in ``.invalid`` (never resolve).

    :class:`tests.fakes.common.NullBackend` with Render-looking default hosts."""

    default_pg_host = "oregon-postgres.render.invalid"
    default_redis_host = "oregon-keyvalue.render.invalid"


class RealBackend:
    """Creates real roles + databases (psycopg) and real ACL users (redis-py).

    Roles are cluster-global: two fake databases with the same ``databaseUser`` share one role,
    and creating the second one resets that role's password (``ALTER ROLE``). On Render each
    database is its own cluster, so avoid relying on the first store's password after that.
    Dropping a database drops its role only when the role owns nothing else.
    """

    def __init__(
        self,
        pg_superuser_url: str,
        pg_external_host: str,
        pg_external_port: int,
        redis_admin_url: str,
        redis_external_host: str,
        redis_external_port: int,
    ) -> None:
        self.pg_superuser_url = pg_superuser_url
        self.pg_external_host = pg_external_host
        self.pg_external_port = pg_external_port
        self.redis_admin_url = redis_admin_url
        self.redis_external_host = redis_external_host
        self.redis_external_port = redis_external_port

    def create_postgres(self, database: str, user: str) -> PgCredentials:
        import psycopg
        from psycopg import sql

        password = random_password()
        with psycopg.connect(self.pg_superuser_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            # Roles are cluster-global: a second store with the same user resets its password.
            statement = (
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}")
                if exists
                else sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}")
            )
            conn.execute(statement.format(sql.Identifier(user), sql.Literal(password)))
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(user)
                )
            )
        return PgCredentials(self.pg_external_host, self.pg_external_port, database, user, password)

    def drop_postgres(self, database: str, user: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.pg_superuser_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            try:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))
            except psycopg.errors.DependentObjectsStillExist:
                pass  # the role still owns another fake database

    def create_redis(self, username: str) -> RedisCredentials:
        import redis

        password = random_password()
        client = redis.Redis.from_url(self.redis_admin_url)
        try:
            # ACL SETUSER <name> reset on ><pw> ~* &* +@all
            client.acl_setuser(
                username,
                reset=True,
                enabled=True,
                passwords=[f"+{password}"],
                keys=["*"],
                channels=["*"],
                categories=["+@all"],
            )
        finally:
            client.close()
        return RedisCredentials(
            self.redis_external_host, self.redis_external_port, username, password
        )

    def drop_redis(self, username: str) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_admin_url)
        try:
            client.acl_deluser(username)
        finally:
            client.close()


# --------------------------------------------------------------------------------------------
# Faults, request log, rate-limit configuration


class Fault(common.Fault):
    """What to do to a matching request instead of (or on top of) answering it normally.

    :class:`tests.fakes.common.Fault` (same kinds and class methods) plus Render's 429 and
    401. ``status`` answers with the given code *without applying the request*; ``headers``
    override the usual ones (``Render-Request-Id``, ``Ratelimit-*``) and a ``None`` value
    removes that header.
    """

    @classmethod
    def status(
        cls, code: int, body: Any = None, headers: Mapping[str, str | None] | None = None
    ) -> Fault:
        """Answer ``code``. ``body``: None -> ``{"message": <reason>}``; str/bytes sent raw."""
        if body is None:
            try:
                reason = HTTPStatus(code).phrase.lower()
            except ValueError:
                reason = "error"
            raw = json.dumps({"message": reason}).encode()
        elif isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(body).encode()
        return cls("status", status_code=code, body=raw, headers=dict(headers or {}))

    @classmethod
    def rate_limited(cls, reset: int | None = 1, retry_after: int | None = None) -> Fault:
        """A 429 as Render sends it; ``reset=None`` omits ``Ratelimit-Reset``."""
        headers: dict[str, str | None] = {
            "Ratelimit-Remaining": "0",
            "Ratelimit-Reset": None if reset is None else str(reset),
        }
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return cls.status(429, {"message": "rate limit exceeded"}, headers)

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls.status(401, {"message": "unauthorized"})


@dataclass
class RateLimits:
    """Observed limits from Render's testing environment (§8.3). ``enabled=False``: headers only.

    Buckets: every GET (per API key, per minute); POST ``/postgres``, ``/key-value``,
    ``/services`` together (per key, per hour); PATCH ``/services/{id}`` and POST
    ``/services/{id}/deploys`` (per service, per minute); every other mutation (per key, per
    minute). ``retry_after`` adds a ``Retry-After`` header to 429s (Render's is UNCONFIRMED).
    """

    get_per_minute: int = 400
    creates_per_hour: int = 20
    service_changes_per_minute: int = 10
    mutations_per_minute: int = 100
    enabled: bool = True
    retry_after: bool = False


# --------------------------------------------------------------------------------------------
# Internal state records


@dataclass
class _Owner:
    id: str
    seq: int
    name: str
    email: str
    type: str


@dataclass
class _EnvVar:
    key: str
    value: str
    seq: int


@dataclass
class _Service:
    id: str
    seq: int
    name: str
    owner_id: str
    type: str
    region: str
    plan: str
    runtime: str
    build_command: str
    start_command: str
    pre_deploy_command: str | None
    env: dict[str, _EnvVar]
    created: datetime
    updated: datetime
    auto_deploy: str = "yes"
    health_check_path: str = ""


@dataclass
class _Deploy:
    id: str
    seq: int
    service_id: str
    created_clock: float
    created: datetime
    build_after: float
    finish_after: float
    final_status: str
    env: dict[str, str]
    commit_id: str | None
    canceled_at: float | None = None


@dataclass
class _Postgres:
    id: str
    seq: int
    name: str
    owner_id: str
    plan: str
    version: str
    region: str
    database_name: str
    database_user: str
    disk_size_gb: int
    high_availability: bool
    disk_autoscaling: bool
    ip_allow_list: list[dict[str, str]]
    environment_id: str | None
    created_clock: float
    created: datetime
    updated: datetime
    credentials: PgCredentials
    status_override: str | None = None
    exports: list[dict[str, str]] = field(default_factory=list)


@dataclass
class _KeyValue:
    id: str
    seq: int
    name: str
    owner_id: str
    plan: str
    region: str
    maxmemory_policy: str
    persistence_mode: str
    ip_allow_list: list[dict[str, str]]
    environment_id: str | None
    created_clock: float
    created: datetime
    updated: datetime
    credentials: RedisCredentials
    status_override: str | None = None


@dataclass
class _Window:
    limit: int
    seconds: float
    started: float
    used: int = 0


class _Request(ApiRequest):
    """:class:`tests.fakes.common.ApiRequest` as Render reads it: ``path`` without ``/v1`` but
    still percent-encoded, no comma splitting in :meth:`many`, 400 on invalid JSON."""

    def many(self, name: str) -> list[str]:
        return [value for value in self.query.get(name, []) if value != ""]

    def json(self) -> Any:
        if not self.raw_body.strip():
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            raise _ApiError(400, "invalid JSON body") from None


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


Handler = Callable[[_Request, dict[str, str]], ApiResponse]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


# --------------------------------------------------------------------------------------------
# The fake


class ExternalFronts(Protocol):
    """Where a store's external URL points when the fake enforces ``ipAllowList`` (see
    ``tests.servers.AllowListFronts``): one port per store that asks ``allowed(ip)`` on every
    connection and pipes the allowed ones to the backend's host and port."""

    def open(
        self, key: str, upstream_host: str, upstream_port: int, allowed: Callable[[str], bool]
    ) -> int: ...

    def close_front(self, key: str) -> None: ...


class FakeRenderAPI(BearerKeys):
    """The fake Render API server. Starts serving in ``__init__``; stop with :meth:`close`.

    ``postgres_ready_after`` / ``redis_ready_after``: clock seconds from create to
    ``available``; the status is ``creating`` from ``creating_fraction`` of that on, ``unknown``
    before. ``deploy_build_after`` / ``deploy_finish_after``: clock seconds from a deploy's
    creation to ``build_in_progress`` and to its final status (``deploy_final_status``, e.g.
    ``"build_failed"``). ``deploy_response``: 201 (deploy object) or 202 (empty body).
    ``free_postgres_per_owner``: how many free Postgres an owner may have (§3.7; None = no
    limit; the 400 message is invented). Timestamps (``createdAt``...) are wall-clock time at
    construction plus clock time elapsed since, so they move with a :class:`ManualClock`.
    ``external_fronts``: enforce each store's ``ipAllowList`` as Render does (an empty list
    means private network only: every external connection is refused); the external URLs
    then point at a per-store front on 127.0.0.1. Without it the list is only stored.
    """

    thread_name = "fake-render-api"

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (FAKE_RENDER_KEY,),
        backend: StoreBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
        postgres_ready_after: float = 40.0,
        redis_ready_after: float = 20.0,
        creating_fraction: float = 0.25,
        deploy_build_after: float = 5.0,
        deploy_finish_after: float = 30.0,
        deploy_final_status: str = "live",
        deploy_response: Literal[201, 202] = 201,
        rate_limits: RateLimits | None = None,
        free_postgres_per_owner: int | None = 1,
        user: Mapping[str, str] | None = None,
        seed: int | None = None,
        external_fronts: ExternalFronts | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if deploy_final_status not in DEPLOY_STATUSES:
            raise ValueError(f"unknown deploy status {deploy_final_status!r}")
        super().__init__()
        self._clock = clock
        self._clock_epoch = clock()
        self._wall_epoch = datetime.now(UTC)
        self._rng = random.Random(seed)
        self._cursor_salt = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(6))
        self._seq = 0

        self.backend: StoreBackend = backend if backend is not None else NullBackend()
        self.postgres_ready_after = postgres_ready_after
        self.redis_ready_after = redis_ready_after
        self.creating_fraction = creating_fraction
        self.deploy_build_after = deploy_build_after
        self.deploy_finish_after = deploy_finish_after
        self.deploy_final_status = deploy_final_status
        self.deploy_response: Literal[201, 202] = deploy_response
        self.rate_limits = rate_limits if rate_limits is not None else RateLimits()
        self.free_postgres_per_owner = free_postgres_per_owner
        self.user: dict[str, str] = dict(user or {"email": "dev@example.com", "name": "Dev User"})

        self._accept_keys(api_keys)
        self._owners: dict[str, _Owner] = {}
        self._services: dict[str, _Service] = {}
        self._deploys: dict[str, _Deploy] = {}
        self._postgres: dict[str, _Postgres] = {}
        self._key_values: dict[str, _KeyValue] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._bulk_env_puts: list[tuple[str, Any]] = []
        self.external_fronts = external_fronts
        self._front_ports: dict[str, int] = {}  # store id -> its external front's port
        from tests.fakes.render_jobs import FakeJobs  # one-off jobs and /logs, run for real

        self.jobs = FakeJobs(self)
        self._routes = self._build_routes()

        bound_port = self._start_server(host, port)
        self.base_url = f"http://{host}:{bound_port}/v1"

    def close(self) -> None:
        self.jobs.close()  # no job process or private-network forwarder outlives the fake
        super().close()

    # -- seeding and configuration -----------------------------------------------------------

    def add_owner(
        self, name: str, *, type: Literal["team", "user"] = "team", email: str | None = None
    ) -> dict[str, Any]:
        """Add a workspace; ``tea-`` id for teams, ``usr-`` for users."""
        with self._lock:
            prefix = "tea" if type == "team" else "usr"
            owner = _Owner(
                id=self._new_id(prefix),
                seq=self._next_seq(),
                name=name,
                email=email or f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}@example.com",
                type=type,
            )
            self._owners[owner.id] = owner
            return self._owner_json(owner)

    @property
    def owner_id(self) -> str:
        """The id of the first owner added."""
        with self._lock:
            if not self._owners:
                raise LookupError("the fake has no owner; call add_owner() first")
            return next(iter(self._owners))

    def add_service(
        self,
        name: str,
        *,
        region: str = "oregon",
        owner_id: str | None = None,
        type: str = "web_service",
        plan: str = "starter",
        env: Mapping[str, str] | None = None,
        build_command: str = "npm install",
        start_command: str = "npm start",
        pre_deploy_command: str | None = None,
        runtime: str = "node",
    ) -> dict[str, Any]:
        """Seed a service (``srv-`` + 20 chars); returns it as ``GET /services/{id}`` would."""
        if region not in REGIONS or type not in SERVICE_TYPES or runtime not in RUNTIMES:
            raise ValueError(f"bad region/type/runtime: {region!r} {type!r} {runtime!r}")
        if plan not in SERVICE_PLANS:
            raise ValueError(f"bad service plan {plan!r}")
        with self._lock:
            owner = owner_id if owner_id is not None else self.owner_id
            if owner not in self._owners:
                raise ValueError(f"unknown owner {owner!r}")
            now = self._wall_now()
            service = _Service(
                id=self._new_id("srv"),
                seq=self._next_seq(),
                name=name,
                owner_id=owner,
                type=type,
                region=region,
                plan=plan,
                runtime=runtime,
                build_command=build_command,
                start_command=start_command,
                pre_deploy_command=pre_deploy_command,
                env={},
                created=now,
                updated=now,
            )
            for key, value in (env or {}).items():
                service.env[key] = _EnvVar(key, value, self._next_seq())
            self._services[service.id] = service
            return self._service_json(service)

    def set_status(self, resource_id: str, status: str | None) -> None:
        """Pin a Postgres / Key Value status (e.g. ``"suspended"``); None: back to the clock."""
        if status is not None and status not in DATABASE_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._lock:
            store: _Postgres | _KeyValue | None = self._postgres.get(resource_id)
            if store is None:
                store = self._key_values.get(resource_id)
            if store is None:
                raise KeyError(resource_id)
            store.status_override = status

    def inject(
        self, method: str, path_pattern: str, fault: common.Fault, times: int | None = 1
    ) -> InjectedFault:
        """Apply ``fault`` to the next ``times`` (None: every) requests that match.

        ``method``: ``"GET"``... or ``"*"``. ``path_pattern``: a regex that must match the
        WHOLE path without ``/v1`` and without the query, e.g. ``r"/postgres"`` (only the
        collection) or ``r"/services/[^/]+/env-vars/.*"``. Faults fire in injection order.
        """
        return self._add_fault(method, path_pattern, fault, times)

    def reset_rate_limits(self) -> None:
        """Forget all rate-limit windows (the counters start again from zero)."""
        with self._lock:
            self._windows.clear()

    # -- request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        """How many logged requests match (a ``/v1`` on ``path_prefix`` is ignored)."""
        if path_prefix is not None and path_prefix.startswith("/v1/"):
            path_prefix = path_prefix[3:]
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (method is None or r.method == method.upper())
                and (path_prefix is None or r.path.startswith(path_prefix))
            )

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()
            self._bulk_env_puts.clear()

    @property
    def bulk_env_put_calls(self) -> list[tuple[str, Any]]:
        """Every bulk ``PUT /services/{id}/env-vars`` as ``(service_id, body)``, even failed."""
        with self._lock:
            return list(self._bulk_env_puts)

    # -- inspection --------------------------------------------------------------------------

    def service(self, service_id: str) -> dict[str, Any]:
        with self._lock:
            return self._service_json(self._get_service(service_id))

    def env(self, service_id: str) -> dict[str, str]:
        with self._lock:
            service = self._get_service(service_id)
            return {var.key: var.value for var in self._ordered_env(service)}

    def deploys(self, service_id: str) -> list[dict[str, Any]]:
        """The service's deploys as the API shows them, newest first."""
        with self._lock:
            self._get_service(service_id)
            return [self._deploy_json(d) for d in self._service_deploys(service_id)]

    def deploy_count(self, service_id: str) -> int:
        with self._lock:
            return len(self._service_deploys(service_id))

    def deploy_env(self, deploy_id: str) -> dict[str, str]:
        """The env vars the service had when the deploy was triggered."""
        with self._lock:
            return dict(self._deploys[deploy_id].env)

    def postgres_named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [self._pg_json(pg) for pg in self._postgres.values() if pg.name == name]

    def key_values_named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [self._kv_json(kv) for kv in self._key_values.values() if kv.name == name]

    def connection_info(self, resource_id: str) -> dict[str, str]:
        """What ``GET /postgres|key-value/{id}/connection-info`` would answer."""
        with self._lock:
            if resource_id in self._postgres:
                return self._pg_connection_info(self._postgres[resource_id])
            return self._kv_connection_info(self._key_values[resource_id])

    def drop_backend_stores(self) -> None:
        """Drop, through the backend, every store the fake still holds (API state is kept)."""
        with self._lock:
            for pg in self._postgres.values():
                self.backend.drop_postgres(pg.credentials.database, pg.credentials.user)
            for kv in self._key_values.values():
                self.backend.drop_redis(kv.credentials.username)
            for store_id in list(self._front_ports):
                self._close_front(store_id)

    # -- internals: the external URL and its IP allow list -----------------------------------

    def _external(self, store_id: str, host: str, port: int) -> tuple[str, int]:
        """The external URL's host and port: the backend's, or the store's allow-list front."""
        if self.external_fronts is None:
            return host, port
        if store_id not in self._front_ports:
            self._front_ports[store_id] = self.external_fronts.open(
                store_id, host, port, lambda ip: self._allows(store_id, ip)
            )
        return "127.0.0.1", self._front_ports[store_id]

    def _allows(self, store_id: str, ip: str) -> bool:
        """Whether the store's ipAllowList admits `ip` (§3.1/§4.1: empty = internal only).
        Called on the front's thread without the lock (a dict read), so a handler holding the
        lock while it opens a front cannot deadlock with it."""
        store = self._postgres.get(store_id) or self._key_values.get(store_id)
        if store is None:
            return False
        address = ipaddress.ip_address(ip)
        return any(
            address in ipaddress.ip_network(entry["cidrBlock"], strict=False)
            for entry in store.ip_allow_list
        )

    def _close_front(self, store_id: str) -> None:
        if self.external_fronts is not None and store_id in self._front_ports:
            del self._front_ports[store_id]
            self.external_fronts.close_front(store_id)

    # -- internals: ids, time, status ---------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _random(self, length: int) -> str:
        return "".join(self._rng.choice(_ID_ALPHABET) for _ in range(length))

    def _new_id(self, prefix: str, suffix: str = "") -> str:
        return f"{prefix}-{self._random(20)}{suffix}"

    def _wall_now(self) -> datetime:
        return self._wall_epoch + timedelta(seconds=self._clock() - self._clock_epoch)

    def _wall_at(self, clock_time: float) -> datetime:
        return self._wall_epoch + timedelta(seconds=clock_time - self._clock_epoch)

    def _store_status(self, store: _Postgres | _KeyValue) -> str:
        if store.status_override is not None:
            return store.status_override
        ready_after = (
            self.postgres_ready_after if isinstance(store, _Postgres) else self.redis_ready_after
        )
        elapsed = self._clock() - store.created_clock
        if elapsed >= ready_after:
            return "available"
        if elapsed >= ready_after * self.creating_fraction:
            return "creating"
        return "unknown"

    # -- internals: request handling ----------------------------------------------------------

    def _serve(self, handler: _HttpHandler) -> None:
        split = urlsplit(handler.path)
        request = _Request(
            method=handler.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            raw_body=handler.read_body(),
            authorization=handler.headers.get("Authorization"),
        )
        response = self._handle(request)
        if response is None:  # an injected drop: no status line, no bytes at all
            handler.drop()
        else:
            handler.write(response)

    def _handle(self, request: _Request) -> ApiResponse | None:
        """Answer one request; None means: close the connection without a response."""
        if self._closing.is_set():
            return None
        request_id = f"api-{secrets.token_hex(10)}"
        request.path, request.in_prefix = split_prefix(request.path, "/v1")
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query={k: list(v) for k, v in request.query.items()},
            body=request.logged_body(),
            auth_scheme=auth_scheme(request.authorization),
            request_id=request_id,
        )
        return self._pipeline(
            request,
            record,
            lambda fault: self._answer(request, fault),
            {"Render-Request-Id": request_id},
        )

    def _answer(self, request: _Request, fault: common.Fault | None) -> ApiResponse:
        if fault is None:
            return self._process(request)
        with self._lock:
            headers = self._rate_limit_headers(self._window_for(request))
        response = ApiResponse(fault.status_code, encode_body(fault.body), headers)
        if fault.body or fault.kind != "status":
            response.headers["Content-Type"] = JSON_TYPE
        return response

    def _api_key(self, request: _Request) -> str | None:
        return bearer_token(request.authorization)

    def _process(self, request: _Request) -> ApiResponse:
        with self._lock:
            key = self._api_key(request)
            window = self._window_for(request)
            if key is None or key not in self._api_keys:
                response = json_response(401, {"message": "unauthorized"})
                response.headers.update(self._rate_limit_headers(window))
                return response
            allowed = self._consume(window)
            headers = self._rate_limit_headers(window)
            if not allowed:
                response = json_response(429, {"message": "rate limit exceeded"})
                if self.rate_limits.retry_after:
                    headers["Retry-After"] = headers["Ratelimit-Reset"]
            else:
                try:
                    handler, params = self._route(request)
                    response = handler(request, params)
                except _ApiError as error:
                    response = json_response(error.status, {"message": error.message})
            response.headers.update(headers)
            return response

    def _route(self, request: _Request) -> tuple[Handler, dict[str, str]]:
        found = find_route(self._routes, request.method, request.path) if request.in_prefix else 404
        if isinstance(found, int):
            raise _ApiError(found, ROUTE_ERRORS[found])
        route, params = found
        return route.handler, {k: unquote(v) for k, v in params.items()}

    # -- internals: rate limits --------------------------------------------------------------

    _CREATE_PATH = re.compile(r"/(?:postgres|key-value|redis|services)")
    _SERVICE_CHANGE_PATH = re.compile(r"/services/(?P<id>[^/]+)/(?:deploys|suspend|resume|restart)")
    _SERVICE_PATH = re.compile(r"/services/(?P<id>[^/]+)")

    def _window_for(self, request: _Request) -> _Window:
        limits = self.rate_limits
        key = self._api_key(request) or "anonymous"
        method, path = request.method, request.path
        name, scope, limit, seconds = "mutation", key, limits.mutations_per_minute, 60.0
        if method in ("GET", "HEAD"):
            name, limit = "get", limits.get_per_minute
        elif method == "POST" and self._CREATE_PATH.fullmatch(path):
            name, limit, seconds = "create", limits.creates_per_hour, 3600.0
        else:
            match = None
            if method == "POST":
                match = self._SERVICE_CHANGE_PATH.fullmatch(path)
            elif method == "PATCH":
                match = self._SERVICE_PATH.fullmatch(path)
            if match is not None:
                name, scope = "service", match["id"]
                limit = limits.service_changes_per_minute
        now = self._clock()
        window = self._windows.get((name, scope))
        if (
            window is None
            or now >= window.started + window.seconds
            or (window.limit, window.seconds) != (limit, seconds)
        ):
            window = _Window(limit, seconds, now)
            self._windows[(name, scope)] = window
        return window

    def _consume(self, window: _Window) -> bool:
        if self.rate_limits.enabled and window.used >= window.limit:
            return False
        window.used += 1
        return True

    def _rate_limit_headers(self, window: _Window) -> dict[str, str]:
        reset = max(0, math.ceil(window.started + window.seconds - self._clock()))
        return {
            "Ratelimit-Limit": str(window.limit),
            "Ratelimit-Remaining": str(max(0, window.limit - window.used)),
            "Ratelimit-Reset": str(reset),
        }

    # -- internals: pagination ---------------------------------------------------------------

    def _encode_cursor(self, kind: str, seq: int) -> str:
        raw = f"{kind}:{seq}:{self._cursor_salt}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_cursor(self, kind: str, cursor: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            got_kind, seq, salt = raw.split(":")
            if got_kind != kind or salt != self._cursor_salt:
                raise ValueError(raw)
            return int(seq)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise _ApiError(400, "invalid cursor") from None

    def _page(
        self,
        request: _Request,
        kind: str,
        wrapper: str,
        items: list[tuple[int, dict[str, Any]]],
        *,
        newest_first: bool = False,
    ) -> ApiResponse:
        """One page of ``items`` (sorted by seq, ascending unless ``newest_first``)."""
        raw_limit = request.one("limit")
        limit = 20
        if raw_limit is not None:
            try:
                limit = int(raw_limit)
            except ValueError:
                limit = 0
            if not 1 <= limit <= 100:
                raise _ApiError(400, "limit must be between 1 and 100")
        items = sorted(items, key=lambda item: item[0], reverse=newest_first)
        cursor = request.one("cursor")
        if cursor:
            after = self._decode_cursor(kind, cursor)
            items = [i for i in items if (i[0] < after if newest_first else i[0] > after)]
        page = [{wrapper: obj, "cursor": self._encode_cursor(kind, seq)} for seq, obj in items]
        return json_response(200, page[:limit])

    # -- internals: validation helpers -------------------------------------------------------

    @staticmethod
    def _body_object(request: _Request, *, required: bool = True) -> dict[str, Any]:
        body = request.json()
        if body is None and not required:
            return {}
        if not isinstance(body, dict):
            raise _ApiError(400, "request body must be a JSON object")
        return body

    @staticmethod
    def _string(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
        value = body.get(name)
        if value is None:
            if required:
                raise _ApiError(400, f"{name} is required")
            return None
        if not isinstance(value, str) or (required and not value):
            raise _ApiError(400, f"{name} must be a non-empty string")
        return value

    @staticmethod
    def _bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
        value = body.get(name, default)
        if not isinstance(value, bool):
            raise _ApiError(400, f"{name} must be a boolean")
        return value

    @staticmethod
    def _ip_allow_list(value: Any) -> list[dict[str, str]]:
        if not isinstance(value, list):
            raise _ApiError(400, "ipAllowList must be an array")
        entries = []
        for entry in value:
            if not isinstance(entry, dict) or not isinstance(entry.get("cidrBlock"), str):
                raise _ApiError(400, "ipAllowList entries need a cidrBlock")
            try:
                ipaddress.ip_network(entry["cidrBlock"], strict=False)
            except ValueError:
                raise _ApiError(400, f"invalid cidrBlock: {entry['cidrBlock']}") from None
            description = entry.get("description", "")
            if not isinstance(description, str):
                raise _ApiError(400, "ipAllowList description must be a string")
            entries.append({"cidrBlock": entry["cidrBlock"], "description": description})
        return entries

    def _owner_filter_ok(self, request: _Request, owner_id: str) -> bool:
        owners = request.many("ownerId")
        return not owners or owner_id in owners

    def _check_regions(self, request: _Request) -> list[str]:
        regions = request.many("region")
        for region in regions:
            if region not in REGIONS:
                raise _ApiError(400, f"invalid region: {region}")
        return regions

    # -- internals: JSON shapes --------------------------------------------------------------

    def _owner_json(self, owner: _Owner) -> dict[str, Any]:
        return {"id": owner.id, "name": owner.name, "email": owner.email, "type": owner.type}

    def _ordered_env(self, service: _Service) -> list[_EnvVar]:
        return sorted(service.env.values(), key=lambda var: var.seq)

    def _service_json(self, service: _Service) -> dict[str, Any]:
        env_specific: dict[str, Any] = {
            "buildCommand": service.build_command,
            "startCommand": service.start_command,
        }
        if service.pre_deploy_command:
            # §7: GET shows preDeployCommand INSIDE envSpecificDetails (PATCH takes it outside).
            env_specific["preDeployCommand"] = service.pre_deploy_command
        details: dict[str, Any] = {
            "region": service.region,
            "runtime": service.runtime,
            "env": service.runtime,
            "plan": service.plan,
            "numInstances": 1,
            "healthCheckPath": service.health_check_path,
            "url": f"https://{service.name}.onrender.com",
            "envSpecificDetails": env_specific,
            "pullRequestPreviewsEnabled": "no",
        }
        return {
            "id": service.id,
            "name": service.name,
            "ownerId": service.owner_id,
            "type": service.type,
            "repo": f"https://github.com/example/{service.name}",
            "branch": "main",
            "autoDeploy": service.auto_deploy,
            "notifyOnFail": "default",
            "rootDir": "",
            "slug": service.name,
            "suspended": "not_suspended",
            "suspenders": [],
            "createdAt": _iso(service.created),
            "updatedAt": _iso(service.updated),
            "dashboardUrl": f"https://dashboard.render.com/web/{service.id}",
            "serviceDetails": details,
        }

    def _service_deploys(self, service_id: str) -> list[_Deploy]:
        deploys = [d for d in self._deploys.values() if d.service_id == service_id]
        return sorted(deploys, key=lambda d: d.seq, reverse=True)

    def _deploy_reached_live(self, deploy: _Deploy, now: float) -> bool:
        return (
            deploy.canceled_at is None
            and deploy.final_status == "live"
            and now - deploy.created_clock >= deploy.finish_after
        )

    def _deploy_status(self, deploy: _Deploy) -> str:
        now = self._clock()
        elapsed = now - deploy.created_clock
        if deploy.canceled_at is not None:
            return "canceled"
        if elapsed < deploy.build_after:
            return "created"
        if elapsed < deploy.finish_after:
            return "build_in_progress"
        if deploy.final_status == "live" and any(
            other.seq > deploy.seq and self._deploy_reached_live(other, now)
            for other in self._service_deploys(deploy.service_id)
        ):
            return "deactivated"
        return deploy.final_status

    def _deploy_json(self, deploy: _Deploy) -> dict[str, Any]:
        status = self._deploy_status(deploy)
        started = finished = None
        if status not in ("created", "canceled"):
            started = _iso(self._wall_at(deploy.created_clock + deploy.build_after))
        if deploy.canceled_at is not None:
            finished = _iso(self._wall_at(deploy.canceled_at))
        elif status not in ("created", "build_in_progress"):
            finished = _iso(self._wall_at(deploy.created_clock + deploy.finish_after))
        commit = None
        if deploy.commit_id is not None:
            commit = {"id": deploy.commit_id, "message": "", "createdAt": _iso(deploy.created)}
        return {
            "id": deploy.id,
            "commit": commit,
            "status": status,
            "trigger": "api",
            "createdAt": _iso(deploy.created),
            "updatedAt": finished or started or _iso(deploy.created),
            "startedAt": started,
            "finishedAt": finished,
        }

    def _pg_json(self, pg: _Postgres) -> dict[str, Any]:
        status = self._store_status(pg)
        payload: dict[str, Any] = {
            "id": pg.id,
            "name": pg.name,
            "status": status,
            "region": pg.region,
            "plan": pg.plan,
            "version": pg.version,
            "databaseName": pg.database_name,
            "databaseUser": pg.database_user,
            "diskSizeGB": pg.disk_size_gb,
            "diskAutoscalingEnabled": pg.disk_autoscaling,
            "highAvailabilityEnabled": pg.high_availability,
            "ipAllowList": [dict(e) for e in pg.ip_allow_list] or None,  # §0.8: [] comes back null
            "readReplicas": [],
            "role": "primary",
            "suspended": "suspended" if status == "suspended" else "not_suspended",
            "suspenders": ["user"] if status == "suspended" else [],
            "owner": self._owner_json(self._owners[pg.owner_id]),
            "dashboardUrl": f"https://dashboard.render.com/d/{pg.id}",
            "createdAt": _iso(pg.created),
            "updatedAt": _iso(pg.updated),
        }
        if pg.environment_id is not None:
            payload["environmentId"] = pg.environment_id
        if pg.plan == "free":
            payload["expiresAt"] = _iso(pg.created + FREE_POSTGRES_LIFETIME)
        return payload

    def _kv_json(self, kv: _KeyValue) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": kv.id,
            "name": kv.name,
            "plan": kv.plan,
            "region": kv.region,
            "status": self._store_status(kv),
            "version": KEY_VALUE_VERSION,
            "ipAllowList": [dict(e) for e in kv.ip_allow_list] or None,
            "options": {
                "maxmemoryPolicy": kv.maxmemory_policy,
                "persistenceMode": kv.persistence_mode,
            },
            "owner": self._owner_json(self._owners[kv.owner_id]),
            "dashboardUrl": f"https://dashboard.render.com/r/{kv.id}",
            "createdAt": _iso(kv.created),
            "updatedAt": _iso(kv.updated),
        }
        if kv.environment_id is not None:
            payload["environmentId"] = kv.environment_id
        return payload

    def _pg_connection_info(self, pg: _Postgres) -> dict[str, str]:
        c = pg.credentials
        host, port = self._external(pg.id, c.host, c.port)
        return {
            "password": c.password,
            # §3.3: the internal host is the bare id, no port.
            "internalConnectionString": f"postgresql://{c.user}:{c.password}@{pg.id}/{c.database}",
            "externalConnectionString": (
                f"postgresql://{c.user}:{c.password}@{host}:{port}/{c.database}"
            ),
            "psqlCommand": f"PGPASSWORD={c.password} psql -h {host} -p {port} -U {c.user} {c.database}",
        }

    def _kv_connection_info(self, kv: _KeyValue) -> dict[str, str]:
        c = kv.credentials
        host, port = self._external(kv.id, c.host, c.port)
        return {
            # §4.3: internal URL has no credentials; external is TLS, ACL user = the red- id.
            "internalConnectionString": f"redis://{kv.id}:6379",
            "externalConnectionString": f"rediss://{c.username}:{c.password}@{host}:{port}",
            "cliCommand": (
                f"REDISCLI_AUTH={c.password} valkey-cli --user {c.username}"
                f" -h {host} -p {port} --tls"
            ),
        }

    # -- routes ------------------------------------------------------------------------------

    def _build_routes(self) -> list[_Route]:
        seg = r"(?P<{}>[^/]+)"
        srv, pg, kv = seg.format("service_id"), seg.format("pg_id"), seg.format("kv_id")
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/users", self._get_user),
            ("GET", r"/owners", self._list_owners),
            ("GET", r"/owners/" + seg.format("owner_id"), self._get_owner),
            ("GET", r"/services", self._list_services),
            ("GET", rf"/services/{srv}", self._get_service_route),
            ("PATCH", rf"/services/{srv}", self._patch_service),
            ("GET", rf"/services/{srv}/env-vars", self._list_env_vars),
            ("PUT", rf"/services/{srv}/env-vars", self._replace_env_vars),
            ("GET", rf"/services/{srv}/env-vars/" + seg.format("key"), self._get_env_var),
            ("PUT", rf"/services/{srv}/env-vars/" + seg.format("key"), self._put_env_var),
            ("DELETE", rf"/services/{srv}/env-vars/" + seg.format("key"), self._delete_env_var),
            ("POST", rf"/services/{srv}/deploys", self._create_deploy),
            ("GET", rf"/services/{srv}/deploys", self._list_deploys),
            ("GET", rf"/services/{srv}/deploys/" + seg.format("deploy_id"), self._get_deploy),
            (
                "POST",
                rf"/services/{srv}/deploys/" + seg.format("deploy_id") + "/cancel",
                self._cancel_deploy,
            ),
            ("POST", r"/postgres", self._create_postgres),
            ("GET", r"/postgres", self._list_postgres),
            ("GET", rf"/postgres/{pg}", self._get_postgres),
            ("PATCH", rf"/postgres/{pg}", self._patch_postgres),
            ("DELETE", rf"/postgres/{pg}", self._delete_postgres),
            ("GET", rf"/postgres/{pg}/connection-info", self._postgres_connection_info),
            ("GET", rf"/postgres/{pg}/recovery", self._postgres_recovery),
            ("POST", rf"/postgres/{pg}/export", self._create_export),
            ("GET", rf"/postgres/{pg}/export", self._list_exports),
            ("POST", rf"/postgres/{pg}/suspend", self._suspend_postgres),
            ("POST", rf"/postgres/{pg}/resume", self._resume_postgres),
            ("POST", r"/key-value", self._create_key_value),
            ("GET", r"/key-value", self._list_key_values),
            ("GET", rf"/key-value/{kv}", self._get_key_value),
            ("PATCH", rf"/key-value/{kv}", self._patch_key_value),
            ("DELETE", rf"/key-value/{kv}", self._delete_key_value),
            ("GET", rf"/key-value/{kv}/connection-info", self._key_value_connection_info),
            ("POST", rf"/key-value/{kv}/suspend", self._suspend_key_value),
            ("POST", rf"/key-value/{kv}/resume", self._resume_key_value),
            *self.jobs.routes(srv),
        ]
        return [_Route(method, re.compile(pattern), handler) for method, pattern, handler in table]

    # -- handlers: users, owners -------------------------------------------------------------

    def _get_user(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        return json_response(200, dict(self.user))

    def _list_owners(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        names, emails = request.many("name"), request.many("email")
        items = [
            (o.seq, self._owner_json(o))
            for o in self._owners.values()
            if (not names or o.name in names) and (not emails or o.email in emails)
        ]
        return self._page(request, "owner", "owner", items)

    def _get_owner(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        owner = self._owners.get(params["owner_id"])
        if owner is None:
            raise _ApiError(404, f"not found: {params['owner_id']}")
        return json_response(200, self._owner_json(owner))

    # -- handlers: services ------------------------------------------------------------------

    def _get_service(self, service_id: str) -> _Service:
        service = self._services.get(service_id)
        if service is None:
            raise _ApiError(404, f"not found: {service_id}")
        return service

    def _list_services(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        names, types = request.many("name"), request.many("type")
        for service_type in types:
            if service_type not in SERVICE_TYPES:
                raise _ApiError(400, f"invalid service type: {service_type}")
        regions = self._check_regions(request)
        items = [
            (s.seq, self._service_json(s))
            for s in self._services.values()
            if (not names or s.name in names)  # exact match (§2: Terraform treats it so)
            and (not types or s.type in types)
            and (not regions or s.region in regions)
            and self._owner_filter_ok(request, s.owner_id)
        ]
        return self._page(request, "service", "service", items)

    def _get_service_route(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        return json_response(200, self._service_json(self._get_service(params["service_id"])))

    def _patch_service(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        service = self._get_service(params["service_id"])
        body = self._body_object(request)
        name = self._string(body, "name")
        auto_deploy = self._string(body, "autoDeploy")
        if auto_deploy is not None and auto_deploy not in ("yes", "no"):
            raise _ApiError(400, "autoDeploy must be 'yes' or 'no'")
        details = body.get("serviceDetails") or {}
        if not isinstance(details, dict):
            raise _ApiError(400, "serviceDetails must be an object")
        plan = self._string(details, "plan") or service.plan
        if plan not in SERVICE_PLANS:
            raise _ApiError(400, f"invalid plan: {plan}")
        health_check_path = self._string(details, "healthCheckPath")
        # §7: in a PATCH, preDeployCommand sits directly under serviceDetails ...
        pre_deploy = service.pre_deploy_command
        if "preDeployCommand" in details:
            value = details["preDeployCommand"]
            if value is not None and not isinstance(value, str):
                raise _ApiError(400, "preDeployCommand must be a string")
            pre_deploy = value or None
        # ... while buildCommand / startCommand go under serviceDetails.envSpecificDetails.
        env_specific = details.get("envSpecificDetails") or {}
        if not isinstance(env_specific, dict):
            raise _ApiError(400, "envSpecificDetails must be an object")
        build = self._string(env_specific, "buildCommand")
        start = self._string(env_specific, "startCommand")
        if pre_deploy and plan == "free":
            # §7 [BLOG-PD]: pre-deploy is for paid instances only. Message invented.
            raise _ApiError(
                400, "preDeployCommand is not available for services on the free instance type"
            )
        service.name = name or service.name
        service.auto_deploy = auto_deploy or service.auto_deploy
        service.plan = plan
        service.pre_deploy_command = pre_deploy
        service.build_command = build if build is not None else service.build_command
        service.start_command = start if start is not None else service.start_command
        if health_check_path is not None:
            service.health_check_path = health_check_path
        service.updated = self._wall_now()
        return json_response(200, self._service_json(service))

    # -- handlers: env vars ------------------------------------------------------------------

    def _list_env_vars(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        service = self._get_service(params["service_id"])
        items = [
            (var.seq, {"key": var.key, "value": var.value}) for var in self._ordered_env(service)
        ]
        return self._page(request, "envVar", "envVar", items)

    @staticmethod
    def _env_value(body: Mapping[str, Any], key: str) -> str:
        if body.get("generateValue") is True:
            generated = base64.b64encode(secrets.token_bytes(32)).decode()
            hand_out(generated)
            return generated
        value = body.get("value")
        if not isinstance(value, str):
            raise _ApiError(400, f"env var {key}: value (a string) or generateValue is required")
        return value

    def _replace_env_vars(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        # §0.1 / §5.1: this REPLACES the whole set. Recorded so tests can assert it was unused.
        self._bulk_env_puts.append((params["service_id"], request.logged_body()))
        service = self._get_service(params["service_id"])
        body = request.json()
        if not isinstance(body, list):
            raise _ApiError(400, "request body must be a JSON array of env vars")
        new_values: dict[str, str] = {}
        for entry in body:
            key = entry.get("key") if isinstance(entry, dict) else None
            if not isinstance(key, str) or not key:
                raise _ApiError(400, "every env var needs a non-empty key")
            new_values[key] = self._env_value(entry, key)
        service.env = {k: _EnvVar(k, v, self._next_seq()) for k, v in new_values.items()}
        service.updated = self._wall_now()
        items = [
            {
                "envVar": {"key": var.key, "value": var.value},
                "cursor": self._encode_cursor("envVar", var.seq),
            }
            for var in self._ordered_env(service)
        ]
        return json_response(200, items)

    def _get_env_var(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        service = self._get_service(params["service_id"])
        var = service.env.get(params["key"])
        if var is None:
            raise _ApiError(404, "not found")
        return json_response(200, {"key": var.key, "value": var.value})

    def _put_env_var(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        service = self._get_service(params["service_id"])
        key = params["key"]
        value = self._env_value(self._body_object(request), key)
        existing = service.env.get(key)
        if existing is not None:
            existing.value = value
        else:
            service.env[key] = _EnvVar(key, value, self._next_seq())
        service.updated = self._wall_now()
        return json_response(200, {"key": key, "value": value})

    def _delete_env_var(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        service = self._get_service(params["service_id"])
        if service.env.pop(params["key"], None) is None:
            raise _ApiError(404, "not found")
        service.updated = self._wall_now()
        return ApiResponse(204)

    # -- handlers: deploys -------------------------------------------------------------------

    def _create_deploy(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        service = self._get_service(params["service_id"])
        body = self._body_object(request, required=False)
        clear_cache = self._string(body, "clearCache")
        if clear_cache is not None and clear_cache not in ("clear", "do_not_clear"):
            raise _ApiError(400, "clearCache must be 'clear' or 'do_not_clear'")
        deploy_mode = self._string(body, "deployMode")
        if deploy_mode is not None and deploy_mode not in ("deploy_only", "build_and_deploy"):
            raise _ApiError(400, "deployMode must be 'deploy_only' or 'build_and_deploy'")
        commit_id = self._string(body, "commitId")
        if deploy_mode is not None and (commit_id or clear_cache or body.get("imageUrl")):
            raise _ApiError(
                400, "deployMode cannot be combined with commitId, imageUrl, clearCache"
            )
        now = self._clock()
        deploy = _Deploy(
            id=self._new_id("dep"),
            seq=self._next_seq(),
            service_id=service.id,
            created_clock=now,
            created=self._wall_at(now),
            build_after=self.deploy_build_after,
            finish_after=max(self.deploy_finish_after, self.deploy_build_after),
            final_status=self.deploy_final_status,
            env={var.key: var.value for var in self._ordered_env(service)},
            commit_id=commit_id,
        )
        self._deploys[deploy.id] = deploy
        if self.deploy_response == 202:
            return ApiResponse(202)  # §6.1: "202 Queued", empty body; find it in the list
        return json_response(201, self._deploy_json(deploy))

    def _list_deploys(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        service = self._get_service(params["service_id"])
        statuses = request.many("status")
        items = [
            (d.seq, self._deploy_json(d))
            for d in self._service_deploys(service.id)
            if not statuses or self._deploy_status(d) in statuses
        ]
        return self._page(request, "deploy", "deploy", items, newest_first=True)

    def _find_deploy(self, params: dict[str, str]) -> _Deploy:
        self._get_service(params["service_id"])
        deploy = self._deploys.get(params["deploy_id"])
        if deploy is None or deploy.service_id != params["service_id"]:
            raise _ApiError(404, f"not found: {params['deploy_id']}")
        return deploy

    def _get_deploy(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        return json_response(200, self._deploy_json(self._find_deploy(params)))

    def _cancel_deploy(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        deploy = self._find_deploy(params)
        if self._deploy_status(deploy) not in ("created", "build_in_progress"):
            raise _ApiError(409, "deploy is not in progress")  # message invented
        deploy.canceled_at = self._clock()
        return json_response(200, self._deploy_json(deploy))

    # -- handlers: Postgres ------------------------------------------------------------------

    def _get_pg(self, pg_id: str) -> _Postgres:
        pg = self._postgres.get(pg_id)
        if pg is None:
            raise _ApiError(404, f"not found: {pg_id}")
        return pg

    def _owner_for_create(self, body: Mapping[str, Any]) -> _Owner:
        owner_id = self._string(body, "ownerId", required=True)
        assert owner_id is not None
        owner = self._owners.get(owner_id)
        if owner is None:
            raise _ApiError(404, f"not found: {owner_id}")  # §8.2 (bad ownerId -> "not found")
        return owner

    def _create_postgres(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        body = self._body_object(request)
        name = self._string(body, "name", required=True)
        plan = self._string(body, "plan", required=True)
        assert name is not None and plan is not None
        owner = self._owner_for_create(body)
        if "version" not in body:
            raise _ApiError(400, "version is required")
        version = body["version"]
        if not isinstance(version, str):
            raise _ApiError(400, 'version must be a string, e.g. "16"')  # §3.1
        if version not in POSTGRES_VERSIONS:
            raise _ApiError(400, f"invalid version: {version}")
        if plan in LEGACY_POSTGRES_PLANS:
            raise _ApiError(400, LEGACY_POSTGRES_PLAN_MESSAGE)  # §0.3
        if plan not in POSTGRES_PLANS or plan == "custom":
            raise _ApiError(400, f"invalid plan: {plan}")
        region = self._string(body, "region") or "oregon"
        if region not in REGIONS:
            raise _ApiError(400, f"invalid region: {region}")
        base = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "db"
        if not base[0].isalpha():
            base = f"db_{base}"
        database_name = self._string(body, "databaseName") or base
        database_user = self._string(body, "databaseUser") or f"{base}_user"
        for label, identifier in (("databaseName", database_name), ("databaseUser", database_user)):
            if not _IDENTIFIER.fullmatch(identifier):
                raise _ApiError(400, f"{label} must be letters, digits and underscores")
        disk = body.get("diskSizeGB")
        if disk is not None:
            if plan == "free":
                raise _ApiError(400, "diskSizeGB cannot be set on the free plan")  # §3.7 [MCP]
            if not isinstance(disk, int) or isinstance(disk, bool) or disk < 1:
                raise _ApiError(400, "diskSizeGB must be a positive integer")
            if disk != 1 and disk % 5:
                raise _ApiError(400, "diskSizeGB must be 1 or a multiple of 5")
        ip_allow_list = (
            self._ip_allow_list(body["ipAllowList"])
            if body.get("ipAllowList") is not None
            # Omitted: UNCONFIRMED (§14). Guess the Dashboard's default, open to everyone.
            else [{"cidrBlock": "0.0.0.0/0", "description": "everywhere"}]
        )
        high_availability = self._bool(body, "enableHighAvailability", False)
        disk_autoscaling = self._bool(body, "enableDiskAutoscaling", False)
        environment_id = self._string(body, "environmentId")
        if plan == "free" and self.free_postgres_per_owner is not None:
            free = [
                p for p in self._postgres.values() if p.owner_id == owner.id and p.plan == "free"
            ]
            if len(free) >= self.free_postgres_per_owner:
                # §3.7: one free Postgres per workspace. Status and message invented.
                raise _ApiError(400, "cannot have more than one active free tier database")
        pg_id = self._new_id("dpg", "-a")
        # §0.4: Render appends a random suffix to databaseName; databaseUser is kept.
        suffixed = f"{database_name}_{self._random(4)}"
        credentials = self.backend.create_postgres(suffixed, database_user)
        now = self._clock()
        pg = _Postgres(
            id=pg_id,
            seq=self._next_seq(),
            name=name,
            owner_id=owner.id,
            plan=plan,
            version=version,
            region=region,
            database_name=suffixed,
            database_user=database_user,
            disk_size_gb=disk if isinstance(disk, int) else (1 if plan == "free" else 15),
            high_availability=high_availability,
            disk_autoscaling=disk_autoscaling,
            ip_allow_list=ip_allow_list,
            environment_id=environment_id,
            created_clock=now,
            created=self._wall_at(now),
            updated=self._wall_at(now),
            credentials=credentials,
        )
        self._postgres[pg.id] = pg
        payload = self._pg_json(pg)
        if pg.status_override is None:
            payload["status"] = "unknown"  # §0.7: a fresh resource always reports unknown
        return json_response(201, payload)

    def _list_postgres(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        names = request.many("name")
        regions = self._check_regions(request)
        environments = request.many("environmentId")
        include_replicas = request.one("includeReplicas")
        if include_replicas is not None and include_replicas not in ("true", "false"):
            raise _ApiError(400, "includeReplicas must be true or false")
        items = [
            (pg.seq, self._pg_json(pg))
            for pg in self._postgres.values()
            if (not names or pg.name in names)
            and (not regions or pg.region in regions)
            and (not environments or pg.environment_id in environments)
            and self._owner_filter_ok(request, pg.owner_id)
        ]
        return self._page(request, "postgres", "postgres", items)

    def _get_postgres(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        return json_response(200, self._pg_json(self._get_pg(params["pg_id"])))

    def _patch_postgres(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        pg = self._get_pg(params["pg_id"])
        body = self._body_object(request)
        name = self._string(body, "name")
        plan = self._string(body, "plan")
        if plan is not None and plan != pg.plan:
            if plan in LEGACY_POSTGRES_PLANS:
                raise _ApiError(400, LEGACY_POSTGRES_PLAN_MESSAGE)
            if plan not in POSTGRES_PLANS or plan == "custom":
                raise _ApiError(400, f"invalid plan: {plan}")
        ip_allow_list = None
        if "ipAllowList" in body:
            ip_allow_list = self._ip_allow_list(body["ipAllowList"] or [])
        disk = body.get("diskSizeGB")
        if disk is not None and (not isinstance(disk, int) or disk < pg.disk_size_gb):
            raise _ApiError(400, "diskSizeGB must be an integer no smaller than the current size")
        pg.name = name or pg.name
        pg.plan = plan or pg.plan
        if ip_allow_list is not None:
            pg.ip_allow_list = ip_allow_list  # §3.5: the whole list is replaced
        if isinstance(disk, int):
            pg.disk_size_gb = disk
        pg.high_availability = self._bool(body, "enableHighAvailability", pg.high_availability)
        pg.disk_autoscaling = self._bool(body, "enableDiskAutoscaling", pg.disk_autoscaling)
        pg.updated = self._wall_now()
        return json_response(200, self._pg_json(pg))

    def _delete_postgres(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        pg = self._get_pg(params["pg_id"])
        self.backend.drop_postgres(pg.credentials.database, pg.credentials.user)
        self._close_front(pg.id)
        del self._postgres[pg.id]
        return ApiResponse(204)

    def _postgres_connection_info(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        return json_response(200, self._pg_connection_info(self._get_pg(params["pg_id"])))

    def _postgres_recovery(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        pg = self._get_pg(params["pg_id"])
        if pg.plan == "free":  # §3.6: PITR is for paid plans only
            return json_response(200, {"recoveryStatus": "NOT_AVAILABLE"})
        return json_response(200, {"recoveryStatus": "AVAILABLE", "startsAt": _iso(pg.created)})

    def _create_export(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        pg = self._get_pg(params["pg_id"])
        export_id = self._new_id("exp")
        token = secrets.token_urlsafe(24)
        hand_out(token)
        pg.exports.append(
            {
                "id": export_id,
                "createdAt": _iso(self._wall_now()),
                "url": f"https://exports.render.invalid/{pg.id}/{export_id}.dir.tar.gz?token={token}",
            }
        )
        return ApiResponse(202)

    def _list_exports(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        pg = self._get_pg(params["pg_id"])
        return json_response(200, [dict(e) for e in reversed(pg.exports)])

    def _suspend_postgres(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        self._get_pg(params["pg_id"]).status_override = "suspended"
        return ApiResponse(202)

    def _resume_postgres(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        self._get_pg(params["pg_id"]).status_override = None
        return ApiResponse(202)

    # -- handlers: Key Value -----------------------------------------------------------------

    def _get_kv(self, kv_id: str) -> _KeyValue:
        kv = self._key_values.get(kv_id)
        if kv is None:
            raise _ApiError(404, f"not found: {kv_id}")
        return kv

    def _kv_options(self, body: Mapping[str, Any]) -> tuple[str | None, str | None]:
        policy = self._string(body, "maxmemoryPolicy")
        if policy is not None and policy not in MAXMEMORY_POLICIES:
            # §0.5: the API spells policies with underscores (allkeys_lru), YAML with hyphens.
            raise _ApiError(400, f"invalid maxmemoryPolicy: {policy}")
        persistence = self._string(body, "persistenceMode")
        if persistence is not None and persistence not in PERSISTENCE_MODES:
            raise _ApiError(400, f"invalid persistenceMode: {persistence}")
        return policy, persistence

    def _create_key_value(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        body = self._body_object(request)
        name = self._string(body, "name", required=True)
        plan = self._string(body, "plan", required=True)
        assert name is not None and plan is not None
        owner = self._owner_for_create(body)
        if plan not in KEY_VALUE_PLANS:
            raise _ApiError(400, f"invalid plan: {plan}")
        region = self._string(body, "region") or "oregon"
        if region not in REGIONS:
            raise _ApiError(400, f"invalid region: {region}")
        policy, persistence = self._kv_options(body)
        ip_allow_list = (
            self._ip_allow_list(body["ipAllowList"])
            if body.get("ipAllowList") is not None
            else []  # §4.4: external access is off by default
        )
        kv_id = self._new_id("red")
        credentials = self.backend.create_redis(kv_id)
        now = self._clock()
        kv = _KeyValue(
            id=kv_id,
            seq=self._next_seq(),
            name=name,
            owner_id=owner.id,
            plan=plan,
            region=region,
            maxmemory_policy=policy or "allkeys_lru",
            persistence_mode="off" if plan == "free" else (persistence or "journal_snapshot"),
            ip_allow_list=ip_allow_list,
            environment_id=self._string(body, "environmentId"),
            created_clock=now,
            created=self._wall_at(now),
            updated=self._wall_at(now),
            credentials=credentials,
        )
        self._key_values[kv.id] = kv
        payload = self._kv_json(kv)
        if kv.status_override is None:
            payload["status"] = "unknown"
        return json_response(201, payload)

    def _list_key_values(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        names = request.many("name")
        regions = self._check_regions(request)
        environments = request.many("environmentId")
        items = [
            (kv.seq, self._kv_json(kv))
            for kv in self._key_values.values()
            if (not names or kv.name in names)
            and (not regions or kv.region in regions)
            and (not environments or kv.environment_id in environments)
            and self._owner_filter_ok(request, kv.owner_id)
        ]
        return self._page(request, "keyValue", "keyValue", items)

    def _get_key_value(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        return json_response(200, self._kv_json(self._get_kv(params["kv_id"])))

    def _patch_key_value(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        kv = self._get_kv(params["kv_id"])
        body = self._body_object(request)
        name = self._string(body, "name")
        plan = self._string(body, "plan")
        if plan is not None and plan not in KEY_VALUE_PLANS:
            raise _ApiError(400, f"invalid plan: {plan}")
        policy, persistence = self._kv_options(body)
        ip_allow_list = None
        if "ipAllowList" in body:
            ip_allow_list = self._ip_allow_list(body["ipAllowList"] or [])
        kv.name = name or kv.name
        kv.plan = plan or kv.plan
        kv.maxmemory_policy = policy or kv.maxmemory_policy
        kv.persistence_mode = persistence or kv.persistence_mode
        if ip_allow_list is not None:
            kv.ip_allow_list = ip_allow_list
        kv.updated = self._wall_now()
        return json_response(200, self._kv_json(kv))

    def _delete_key_value(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        kv = self._get_kv(params["kv_id"])
        self.backend.drop_redis(kv.credentials.username)
        self._close_front(kv.id)
        del self._key_values[kv.id]
        return ApiResponse(204)

    def _key_value_connection_info(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        return json_response(200, self._kv_connection_info(self._get_kv(params["kv_id"])))

    def _suspend_key_value(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        self._get_kv(params["kv_id"]).status_override = "suspended"
        return ApiResponse(202)

    def _resume_key_value(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        self._get_kv(params["kv_id"]).status_override = None
        return ApiResponse(202)
