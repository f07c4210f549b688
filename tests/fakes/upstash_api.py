"""A fake of Upstash's Developer API (``https://api.upstash.com/v2``), Redis part: a real HTTP
server on 127.0.0.1 holding state. Behaviour follows
``/work/shared/reference/neon-supabase-upstash.md`` §3 (HTTP Basic ``EMAIL:API_KEY``, errors as
JSON strings, synchronous create with ``state: "active"``, ``"OK"`` on delete).

Usage::

    with UpstashFake() as upstash:
        client = httpx.Client(base_url=upstash.base_url,
                              auth=(FAKE_UPSTASH_EMAIL, FAKE_UPSTASH_API_KEY))

Routes (relative to ``base_url`` = ``http://127.0.0.1:<port>/v2``):

- ``POST /redis/database``: name from ``database_name`` or ``name``; needs ``platform``
  (``aws``/``gcp``) or ``region: "global"``; any other ``region`` -> 400
  ``"regional db creation is deprecated"``; ``primary_region`` required and checked against the
  platform's list; ``read_regions`` checked. -> 200 Database (``state: "active"``, ``tls: true``,
  ``endpoint`` ``<adj>-<noun>-<5 digits>.upstash.io``, ``port`` 6379, ``password``,
  ``rest_token``, ``read_only_rest_token``).
- ``GET /redis/databases`` -> array (not paginated); ``GET /redis/database/{id}``
  (``?credentials=hide`` drops ``password``/``rest_token``/``read_only_rest_token``);
  ``DELETE /redis/database/{id}`` -> ``"OK"``; ``POST /redis/reset-password/{id}``.
- No rate limit is documented: 429/5xx only on demand (``inject``).

Which fields carry a REACHABLE host/port (in reachable mode: ``connect_host=`` given, or a
``backend=`` other than ``NullBackend``, or ``reachable=True``): ``endpoint`` (the bare
host, e.g. ``127.0.0.1``) and ``port``; they are ``connect_host``/``connect_port`` or the
backend's ``RedisCredentials.host``/``.port``.
``password`` is always the backend's. Upstash has no username field: clients log in as
``default`` (see :class:`~tests.fakes.common.StoreBackend` for how a backend can make that
work); the backend's username is available as ``fake.credentials(id).username``.
Since Upstash is TLS-only (``rediss://``), point ``connect_host``/``connect_port`` at a TLS
front when the client is expected to use TLS.

Backend: ``create_redis("upstash-<database_id>")`` at create, ``drop_redis`` on delete
(reset-password = drop + create).

Invented where the reference is silent (do not assert on the text): every error string except
``"regional db creation is deprecated"``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Unpack

from tests.fakes.common import (
    ADJECTIVES,
    NOUNS,
    ApiRequest,
    ApiResponse,
    FakeApiServer,
    FakeOptions,
    RedisCredentials,
    hand_out,
    json_response,
    serves,
)

__all__ = [
    "AWS_REGIONS",
    "FAKE_UPSTASH_API_KEY",
    "FAKE_UPSTASH_EMAIL",
    "GCP_REGIONS",
    "REGIONAL_DEPRECATED",
    "UpstashFake",
]

FAKE_UPSTASH_EMAIL = "dev@example.com"
FAKE_UPSTASH_API_KEY = "3f1c0e9a-5d2b-4c7e-9a8f-6b0d1e2f3a4b"

AWS_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-central-1",
    "eu-west-1", "eu-west-2", "sa-east-1", "ap-south-1", "ap-northeast-1", "ap-southeast-1",
    "ap-southeast-2", "af-south-1",
)  # fmt: skip
GCP_REGIONS = ("us-central1", "us-east4", "europe-west1", "asia-northeast1")
READ_REGIONS = tuple(r for r in AWS_REGIONS if r != "af-south-1")
PLANS = frozenset(
    {"free", "payg", "fixed_250mb", "fixed_1gb", "fixed_5gb", "fixed_10gb", "fixed_50gb"}
    | {"fixed_100gb", "fixed_500gb"}
)
REGIONAL_DEPRECATED = "regional db creation is deprecated"
_HEX = "0123456789abcdef"
_TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class _Database:
    id: str
    seq: int
    name: str
    platform: str
    primary_region: str
    read_regions: list[str]
    plan: str
    budget: int
    eviction: bool
    creation_time: int
    endpoint: str  # realistic host
    creds: RedisCredentials
    rest_token: str
    read_only_rest_token: str
    user_email: str
    state: str = "active"
    extra: dict[str, Any] = field(default_factory=dict)


class UpstashFake(FakeApiServer[_Database]):
    """Fake Upstash Developer API (Redis). See the module docstring.

    Keyword arguments: ``accounts`` (email -> API key accepted with HTTP Basic; default
    :data:`FAKE_UPSTASH_EMAIL` -> :data:`FAKE_UPSTASH_API_KEY`), ``clock``, ``backend``,
    ``connect_host``/``connect_port``, ``endpoint_as_slug`` (``endpoint`` without
    ``.upstash.io``, as the 2026 spec allows; realistic mode only),
    ``reject_platform_with_region`` (400 when both ``platform`` and ``region`` are sent;
    UNCONFIRMED, off by default), ``reject_duplicate_names`` (UNCONFIRMED, off), ``seed``.
    """

    prefix = "/v2"
    thread_name = "fake-upstash-api"

    def __init__(
        self,
        *,
        accounts: Mapping[str, str] | None = None,
        endpoint_as_slug: bool = False,
        reject_platform_with_region: bool = False,
        reject_duplicate_names: bool = False,
        **options: Unpack[FakeOptions],
    ) -> None:
        self._accounts = dict(accounts or {FAKE_UPSTASH_EMAIL: FAKE_UPSTASH_API_KEY})
        hand_out(*self._accounts.values())
        self.endpoint_as_slug = endpoint_as_slug
        self.reject_platform_with_region = reject_platform_with_region
        self.reject_duplicate_names = reject_duplicate_names
        self._databases: dict[str, _Database] = {}
        super().__init__(self._databases, self._db_json, **options)

    # -- configuration, seeding, inspection ---------------------------------------------------

    def add_account(self, email: str, api_key: str) -> None:
        with self._lock:
            self._accounts[email] = api_key
            hand_out(api_key)

    def revoke_account(self, email: str) -> None:
        with self._lock:
            self._accounts.pop(email, None)

    def add_database(
        self,
        name: str,
        *,
        primary_region: str = "us-east-1",
        platform: str = "aws",
        email: str | None = None,
    ) -> dict[str, Any]:
        """Seed a database without HTTP; returns it as ``GET /redis/database/{id}`` would."""
        with self._lock:
            owner = email or next(iter(self._accounts))
            db = self._create(name, platform, primary_region, [], "free", 0, False, owner)
            return self._db_json(db)

    def set_state(self, database_id: str, state: str) -> None:
        """``active`` / ``suspended`` / ``passive``."""
        with self._lock:
            self._databases[database_id].state = state

    # FakeApiServer.record and .records_named under this API's names:
    database = FakeApiServer.record
    databases_named = FakeApiServer.records_named

    def credentials(self, database_id: str) -> RedisCredentials:
        with self._lock:
            return self._databases[database_id].creds

    # -- hooks -------------------------------------------------------------------------------

    def _held_stores(self) -> list[RedisCredentials]:
        return [db.creds for db in self._databases.values()]

    def authenticate(self, request: ApiRequest) -> str | None:
        scheme, _, encoded = (request.authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        email, sep, api_key = decoded.partition(":")
        if not sep or self._accounts.get(email) != api_key:
            return None
        return email

    def error(self, code: int, message: str) -> ApiResponse:
        return json_response(code, message)

    # -- routes ------------------------------------------------------------------------------

    @serves("POST", "/redis/database")
    def _h_create(self, request: ApiRequest) -> ApiResponse:
        body = self.json_body(request)
        if not isinstance(body, dict):
            raise self.fail(400, "invalid request body")
        name = body.get("database_name", body.get("name"))
        if not isinstance(name, str) or not name.strip():
            raise self.fail(400, "database_name is required")
        region = body.get("region")
        platform = body.get("platform")
        if region is not None and region != "global":
            raise self.fail(400, REGIONAL_DEPRECATED)
        if platform is not None and platform not in ("aws", "gcp"):
            raise self.fail(400, "platform must be one of aws, gcp")
        if platform is None and region is None:
            raise self.fail(400, "platform is required")
        if platform is not None and region is not None and self.reject_platform_with_region:
            raise self.fail(400, "region and platform cannot be used together")
        platform = platform or "aws"
        primary_region = body.get("primary_region")
        if primary_region is None:
            raise self.fail(400, "primary_region is required")
        allowed = AWS_REGIONS if platform == "aws" else GCP_REGIONS
        if primary_region not in allowed:
            raise self.fail(400, f"invalid primary_region {primary_region!r} for {platform}")
        read_regions = body.get("read_regions") or []
        if not isinstance(read_regions, list) or any(
            r not in READ_REGIONS or r == primary_region for r in read_regions
        ):
            raise self.fail(400, "invalid read_regions")
        if platform == "gcp" and read_regions:
            raise self.fail(400, "read_regions are not supported on gcp")
        plan = body.get("plan", "free")
        if plan not in PLANS:
            raise self.fail(400, f"invalid plan {plan!r}")
        budget = body.get("budget", 0)
        if not isinstance(budget, int):
            raise self.fail(400, "budget must be an integer")
        if self.reject_duplicate_names and any(d.name == name for d in self._databases.values()):
            raise self.fail(400, "database already exists")
        db = self._create(
            name,
            platform,
            primary_region,
            list(read_regions),
            plan,
            budget,
            bool(body.get("eviction", False)),
            request.principal,
        )
        return json_response(200, self._db_json(db))

    @serves("GET", "/redis/databases")
    def _h_list(self, request: ApiRequest) -> ApiResponse:
        hide = request.one("credentials") == "hide"
        dbs = [
            self._db_json(d, hide_credentials=hide)
            for d in self._databases.values()
            if d.user_email == request.principal
        ]
        return json_response(200, dbs)

    @serves("GET", "/redis/database/{database_id}")
    def _h_get(self, request: ApiRequest) -> ApiResponse:
        db = self._get(request)
        hide = request.one("credentials") == "hide"
        return json_response(200, self._db_json(db, hide_credentials=hide))

    @serves("DELETE", "/redis/database/{database_id}")
    def _h_delete(self, request: ApiRequest) -> ApiResponse:
        db = self._get(request)
        self._drop_store(db.creds)
        del self._databases[db.id]
        return json_response(200, "OK")

    @serves("POST", "/redis/reset-password/{database_id}")
    def _h_reset_password(self, request: ApiRequest) -> ApiResponse:
        db = self._get(request)
        self._drop_store(db.creds)
        db.creds = self.backend.create_redis(db.creds.username)
        db.rest_token = self._token()
        db.read_only_rest_token = self._token()
        return json_response(200, self._db_json(db))

    # -- internals ---------------------------------------------------------------------------

    def _get(self, request: ApiRequest) -> _Database:
        db = self._databases.get(request.params["database_id"])
        if db is None or db.user_email != request.principal:
            raise self.fail(404, "database not found")
        return db

    def _token(self) -> str:
        token = "A" + self.rand_string(59, _TOKEN_CHARS)
        hand_out(token)
        return token

    def _create(
        self,
        name: str,
        platform: str,
        primary_region: str,
        read_regions: list[str],
        plan: str,
        budget: int,
        eviction: bool,
        email: str,
    ) -> _Database:
        database_id = self.rand_uuid()
        seq = self.next_seq()
        endpoint = (
            f"{self.rand_choice(ADJECTIVES)}-{self.rand_choice(NOUNS)}-"
            f"{self.rand_int(10_000, 99_999)}.upstash.io"
        )
        creds = self.backend.create_redis(f"upstash-{database_id}")
        db = _Database(
            id=database_id,
            seq=seq,
            name=name,
            platform=platform,
            primary_region=primary_region,
            read_regions=read_regions,
            plan=plan,
            budget=budget,
            eviction=eviction,
            creation_time=int(self.wall_now().timestamp()),
            endpoint=endpoint,
            creds=creds,
            rest_token=self._token(),
            read_only_rest_token=self._token(),
            user_email=email,
        )
        self._databases[database_id] = db
        return db

    def _db_json(self, db: _Database, *, hide_credentials: bool = False) -> dict[str, Any]:
        if self.reachable:
            endpoint, port = self.connect_target(db.creds.host, db.creds.port)
        else:
            endpoint = db.endpoint
            if self.endpoint_as_slug:
                endpoint = endpoint.removesuffix(".upstash.io")
            port = 6379
        free = db.plan == "free"
        kind = "free" if free else "payg" if db.plan == "payg" else "paid"
        body: dict[str, Any] = {
            "database_id": db.id,
            "database_name": db.name,
            "database_type": "Free" if free else "Pay as You Go",
            "region": "global",
            "type": kind,
            "port": port,
            "creation_time": db.creation_time,
            "budget": db.budget,
            "state": db.state,
            "password": db.creds.password,
            "user_email": db.user_email,
            "endpoint": endpoint,
            "primary_region": db.primary_region,
            "primary_members": [db.primary_region],
            "all_members": [db.primary_region, *db.read_regions],
            "read_regions": list(db.read_regions),
            "eviction": db.eviction,
            "auto_upgrade": False,
            "consistent": False,
            "tls": True,
            "rest_token": db.rest_token,
            "read_only_rest_token": db.read_only_rest_token,
            "db_max_clients": 1000 if free else 10000,
            "db_max_request_size": 10485760,
            "db_disk_threshold": 268435456 if free else 107374182400,
            "db_max_entry_size": 104857600,
            "db_memory_threshold": 268435456 if free else 3221225472,
            "db_max_commands_per_second": 10000,
            "db_request_limit": 500000 if free else 0,
            "db_resource_size": "S",
            "daily_backup_enabled": False,
            "prod_pack_enabled": False,
        }
        if hide_credentials:
            for key in ("password", "rest_token", "read_only_rest_token"):
                body.pop(key)
        return body
