"""Upstash: a Redis database per store (facts: shared/reference/neon-supabase-upstash.md §3).

- Found by exact `database_name` in `GET /redis/databases` (an array, not paginated).
- Creation is synchronous: the answer already says `state: "active"`. The TCP endpoint may
  still refuse the first connections (UNCONFIRMED), so verification retries for ~30 s.
- REDIS_URL is `rediss://default:PASSWORD@ENDPOINT:PORT`: Upstash only speaks TLS and the user
  is `default`. An `endpoint` without a dot is a slug and gets `.upstash.io` (UNCONFIRMED rule).
- Created on the current API (`platform` + `primary_region`); a 400 about platform/region (an
  account on the older API) is answered with the older body (`region: "global"`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Unpack
from urllib.parse import quote

from authkit_setup.errors import ApiError, BadResponseError
from authkit_setup.http import ApiClient, ClientOptions, required_fields
from authkit_setup.providers.base import ConnectionInfo, Kind, Readiness, Store, StoreSpec
from authkit_setup.providers.regions import pick_region, plain_aws
from authkit_setup.secrets import register

CREDENTIALS_HINT = (
    "pass --upstash-email and --upstash-api-key, or set UPSTASH_EMAIL and UPSTASH_API_KEY; "
    "create a key at console.upstash.com → Account → Management API"
)
# CreateDatabaseRequest.primary_region for platform aws (upstash/docs openapi.yml).
REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "sa-east-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "af-south-1",
)
FIRST_PING_GRACE = 30.0


class UpstashClient(ApiClient):
    provider = "Upstash"
    credentials_hint = CREDENTIALS_HINT

    def __init__(self, *, email: str, api_key: str, **options: Unpack[ClientOptions]) -> None:
        # HTTP Basic EMAIL:API_KEY (devops/developer-api/authentication.mdx).
        super().__init__(auth=(email, api_key), **options)

    def databases(self) -> list[dict[str, Any]]:
        return self.get_objects("/redis/databases", "databases")

    def database(self, database_id: str) -> dict[str, Any]:
        return self.get_object(f"/redis/database/{database_id}", "database")

    def create_database(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.create("/redis/database", body, "created database")

    def delete_database(self, database_id: str) -> None:
        self.delete_if_present(f"/redis/database/{database_id}")


def endpoint_host(endpoint: str) -> str:
    """A full host name: the 2026 spec allows a slug like `beloved-stallion-58500`."""
    endpoint = endpoint.strip()
    return endpoint if "." in endpoint or ":" in endpoint else f"{endpoint}.upstash.io"


def redis_url(database: dict[str, Any]) -> str:
    """`rediss://default:PASSWORD@ENDPOINT:PORT` (redis/howto/redis-cli.mdx)."""
    try:
        password = str(database["password"])
        endpoint = endpoint_host(str(database["endpoint"]))
        port = int(database.get("port") or 6379)
    except (KeyError, TypeError, ValueError):
        raise BadResponseError("Upstash returned a database without endpoint or password") from None
    register(password)
    host = f"[{endpoint}]" if ":" in endpoint else endpoint
    return f"rediss://default:{quote(password, safe='')}@{host}:{port}"


class UpstashStores:
    """Upstash Redis databases behind the StoreProvider interface (Redis only)."""

    name: ClassVar[str] = "upstash"
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.REDIS})
    # An Upstash database is active when its create returns.
    typical_ready: ClassVar[Mapping[Kind, float]] = {Kind.REDIS: 1.0}

    def __init__(self, client: UpstashClient, *, region: str | None = None) -> None:
        self.client = client
        self.region_override = region

    def region_for(self, render_region: str) -> str:
        return pick_region(render_region, self.region_override, REGIONS, "Upstash", plain_aws)

    def find(self, kind: Kind, name: str) -> list[Store]:
        return [self._store(d) for d in self.client.databases() if d.get("database_name") == name]

    def _store(self, database: dict[str, Any]) -> Store:
        database_id, name = required_fields(
            database, "database_id", "database_name", what="Upstash returned a database"
        )
        if isinstance(database.get("password"), str):
            register(database["password"])
        for token in ("rest_token", "read_only_rest_token"):
            if isinstance(database.get(token), str):
                register(database[token])
        state = str(database.get("state") or "active")
        # suspended / passive databases do not serve: say so instead of waiting forever.
        readiness = Readiness.READY if state == "active" else Readiness.FAILED
        created = database.get("creation_time")
        return Store(
            provider=self.name,
            kind=Kind.REDIS,
            id=database_id,
            name=name,
            region=str(database.get("primary_region") or database.get("region") or ""),
            plan=str(database.get("type") or ""),
            status=state,
            readiness=readiness,
            created_at=str(created) if created is not None else None,
            raw=database,
        )

    def create(self, spec: StoreSpec) -> Store:
        body: dict[str, Any] = {
            "database_name": spec.name,
            "platform": "aws",
            "primary_region": spec.region,
            "tls": True,
        }
        try:
            created = self.client.create_database(body)
        except ApiError as exc:
            # A 400 was not applied: safe to send the older body (`region: "global"`) once.
            text = exc.message.lower()
            if exc.status != 400 or not ("platform" in text or "region" in text):
                raise
            created = self.client.create_database(
                {"database_name": spec.name, "region": "global", "primary_region": spec.region}
            )
        store = self._store(created)
        store.created = True
        return store

    def refresh(self, store: Store) -> Store:
        return store.refreshed(self._store(self.client.database(store.id)))

    def connection_info(self, store: Store) -> ConnectionInfo:
        database = store.raw
        if not isinstance(database.get("password"), str) or not database.get("endpoint"):
            database = self.client.database(store.id)
        url = redis_url(database)
        return ConnectionInfo(app_url=url, external_url=url, verify_grace=FIRST_PING_GRACE)

    def close(self) -> None:
        self.client.close()

    def delete(self, store: Store) -> None:
        self.client.delete_database(store.id)
