"""A `StoreBackend` on the real test servers: the Neon, Supabase and Upstash fakes hand out
logins that really work, so the CLI's verification step connects for real.

- PostgreSQL: a real role + database per fake project (or branch) on the one test server. Names
  get a random tag and a counter (``authkit_3fa9c21``) so several fake projects, and several
  tests, can share the server; the fakes hand out the returned names.
- Redis: an ACL user per fake database. With ``fronts=`` (Upstash: every client logs in as
  ``default``) each database also gets its own TLS port on a
  :class:`~tests.servers.RedisDatabaseFronts`, which logs its clients in as that database's
  ACL user: one database's password does not open another, as on Upstash. The returned
  username stays the ACL user, so the fake's drop call finds it.

`cloud_fakes` (a fixture: import it into a test module) runs the Neon, Supabase and Upstash
fakes on this backend behind the TLS fronts and points the CLI at them through the environment.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql

from tests.conftest import PgServer, RedisServer
from tests.fakes.common import FakeApiServer, PgCredentials, RedisCredentials
from tests.fakes.neon_api import FAKE_NEON_KEY, NeonFake
from tests.fakes.supabase_api import FAKE_SUPABASE_TOKEN, SupabaseFake
from tests.fakes.upstash_api import FAKE_UPSTASH_API_KEY, FAKE_UPSTASH_EMAIL, UpstashFake
from tests.servers import PostgresTlsProxy, RedisDatabaseFronts

__all__ = ["CloudFakes", "LocalBackend", "cloud_fakes"]


class LocalBackend:
    """Real roles/databases on the test PostgreSQL and ACL users (each behind its own front
    with ``fronts=``) on the test Redis; see the module docstring."""

    def __init__(
        self,
        pg: PgServer,
        redis_server: RedisServer,
        *,
        fronts: RedisDatabaseFronts | None = None,
    ) -> None:
        self.pg = pg
        self.redis_server = redis_server
        self.fronts = fronts
        self._ids = itertools.count(1)

    def create_postgres(
        self, database: str, user: str, password: str | None = None
    ) -> PgCredentials:
        n = next(self._ids)
        tag = secrets.token_hex(3)
        db = f"{re.sub(r'[^a-z0-9]', '_', database.lower())}_{tag}{n}"
        role = f"{re.sub(r'[^a-z0-9]', '_', user.lower())}_{tag}{n}"
        password = password or secrets.token_urlsafe(18)
        self.pg.create_database_and_role(db, role, password)
        return PgCredentials(self.pg.host, self.pg.port, db, role, password)

    def drop_postgres(self, database: str, user: str) -> None:
        with psycopg.connect(self.pg.superuser_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))

    def create_redis(self, username: str) -> RedisCredentials:
        password = secrets.token_hex(16)
        self.redis_server.add_acl_user(username, password)
        if self.fronts is not None:
            port = self.fronts.open(username)
            return RedisCredentials(self.fronts.host, port, username, password)
        return RedisCredentials(self.redis_server.host, self.redis_server.port, username, password)

    def drop_redis(self, username: str) -> None:
        if self.fronts is not None:
            self.fronts.close_database(username)
        with redis.Redis.from_url(self.redis_server.url, protocol=2) as client:
            client.execute_command("ACL", "DELUSER", username)


# --------------------------------------------------------------------------------------------
# The three cloud fakes on this backend, wired into the CLI's environment


@dataclass
class CloudFakes:
    """Neon, Supabase and Upstash fakes whose stores are real logins on the test servers,
    reachable through the TLS fronts (so `sslmode=require` and `rediss://` work; each Upstash
    database has its own front and password)."""

    neon: NeonFake
    supabase: SupabaseFake
    upstash: UpstashFake

    @property
    def all(self) -> tuple[FakeApiServer[Any], ...]:
        return (self.neon, self.supabase, self.upstash)

    def creates(self) -> int:
        """Create calls on any of the three APIs."""
        return (
            self.neon.count("POST", "/projects")
            + self.supabase.count("POST", "/v1/projects")
            + self.upstash.count("POST", "/redis/database")
        )

    def reset_logs(self) -> None:
        for fake in self.all:
            fake.reset_log()


@pytest.fixture
def cloud_fakes(
    pg: PgServer,
    redis_srv: RedisServer,
    pg_tls: PostgresTlsProxy,
    redis_fronts: RedisDatabaseFronts,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CloudFakes]:
    """The three fakes (stores ready at once), their URLs and credentials in the environment,
    and the test CA trusted (SSL_CERT_FILE) for the rediss:// check."""
    pg_backend = LocalBackend(pg, redis_srv)
    redis_backend = LocalBackend(pg, redis_srv, fronts=redis_fronts)
    fakes = CloudFakes(
        neon=NeonFake(
            backend=pg_backend,
            connect_host="127.0.0.1",
            connect_port=pg_tls.port,
            operation_seconds=0.0,
        ),
        supabase=SupabaseFake(
            backend=pg_backend,
            connect_host="127.0.0.1",
            connect_port=pg_tls.port,
            unknown_seconds=0.0,
            coming_up_seconds=0.0,
            pooler_delay_seconds=0.0,
        ),
        upstash=UpstashFake(backend=redis_backend),  # host and port: the database's front
    )
    for name, value in {
        "NEON_API_URL": fakes.neon.base_url,
        "NEON_API_KEY": FAKE_NEON_KEY,
        "SUPABASE_API_URL": fakes.supabase.base_url,
        "SUPABASE_ACCESS_TOKEN": FAKE_SUPABASE_TOKEN,
        "UPSTASH_API_URL": fakes.upstash.base_url,
        "UPSTASH_EMAIL": FAKE_UPSTASH_EMAIL,
        "UPSTASH_API_KEY": FAKE_UPSTASH_API_KEY,
        "SSL_CERT_FILE": str(pg_tls.ca_path),
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield fakes
    finally:
        for fake in fakes.all:
            fake.drop_backend_stores()
            fake.close()
    errors = [e for fake in fakes.all for e in fake.internal_errors]
    assert not errors, "a cloud fake crashed:\n" + "\n".join(errors)
