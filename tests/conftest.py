from __future__ import annotations

# ============================================================================================
# Real servers (PostgreSQL, Redis, TLS fronts, fault listeners) -- session scoped.
# Built on authkit_setup.local's embedded servers (postgres_server.py, redis_server.py) and
# tests/servers.py. Everything listens on 127.0.0.1 and is stopped at session end, also when the
# session fails.
#
#   pg              PgServer      embedded PostgreSQL (or $AUTHKIT_TEST_DATABASE_URL, superuser)
#   redis_srv       RedisServer   embedded Redis with a default-user password
#                                 (or $AUTHKIT_TEST_REDIS_URL)
#   tls             TlsMaterial   throwaway CA + server cert for localhost/127.0.0.1/::1
#   pg_tls          PostgresTlsProxy  hostssl-only TLS front of `pg` (.host, .port, .ca_path)
#   redis_tls       RedisTlsProxy     TLS-only front of `redis_srv` (.host, .port, .ca_path)
#   redis_fronts    RedisDatabaseFronts  one TLS port per fake Upstash database, own login
#   silent_listener SilentListener    accepts, never answers
#   silent_port     int               its port
#   closed_port     int               refuses connections (bound, never listening; held all
#                                     session, on 127.0.0.1 and ::1, so nothing else takes it)
# ============================================================================================
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psycopg
import pytest
import redis
from psycopg import sql

from authkit_setup.local.postgres_server import EmbeddedPostgres
from authkit_setup.local.redis_server import EmbeddedRedis
from tests.servers import (
    ClosedPort,
    PostgresTlsProxy,
    RedisDatabaseFronts,
    RedisTlsProxy,
    SilentListener,
    TlsMaterial,
    make_tls_material,
    start_on_a_free_port,
)

_HOST = "127.0.0.1"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class PgServer:
    """A PostgreSQL server the tests may create databases and roles on."""

    host: str
    port: int
    superuser_url: str

    def url(self, user: str, password: str, database: str) -> str:
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{_url_host(self.host)}:{self.port}/{quote(database, safe='')}"
        )

    def create_database_and_role(self, db: str, user: str, password: str) -> str:
        """Create (or reset the password of) login role `user` and database `db` owned by it.
        Returns `postgresql://user:pw@host:port/db`."""
        with psycopg.connect(self.superuser_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user]).fetchone()
            verb = sql.SQL("ALTER" if exists else "CREATE")
            conn.execute(
                sql.SQL("{} ROLE {} WITH LOGIN PASSWORD {}").format(
                    verb, sql.Identifier(user), sql.Literal(password)
                )
            )
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(db), sql.Identifier(user)
                    )
                )
        return self.url(user, password, db)


@dataclass(frozen=True)
class RedisServer:
    """A Redis server; `url` authenticates as the default user."""

    host: str
    port: int
    url: str
    password: str | None

    def add_acl_user(self, name: str, password: str) -> str:
        """Create or reset ACL user `name` with access to everything; returns its URL."""
        with redis.Redis.from_url(self.url, socket_timeout=5, protocol=2) as client:
            client.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}")
            client.execute_command("ACL", "SETUSER", name, "~*", "&*", "+@all")
        return f"redis://{quote(name, safe='')}:{quote(password, safe='')}@{_url_host(self.host)}:{self.port}/0"


@pytest.fixture(scope="session")
def _servers_dir() -> Iterator[Path]:
    """A private base directory for server data. Outside pytest's basetemp on purpose: when
    the suite runs as root, PostgreSQL runs as `nobody`, which must be able to traverse it
    (pytest's /tmp/pytest-of-root is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="authkit-test-servers-"))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(_servers_dir: Path) -> Iterator[PgServer]:
    external = os.environ.get("AUTHKIT_TEST_DATABASE_URL")
    if external:
        info = psycopg.conninfo.conninfo_to_dict(external)
        host = str(info.get("host") or _HOST)
        port = int(str(info.get("port") or 5432))
        yield PgServer(host=host, port=port, superuser_url=external)
        return
    password = secrets.token_urlsafe(18)
    server = start_on_a_free_port(
        lambda port: EmbeddedPostgres(
            _servers_dir / "pg", port=port, password=password, host=_HOST, fast=True
        )
    )
    try:
        yield PgServer(host=server.host, port=server.port, superuser_url=server.superuser_url())
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_srv(_servers_dir: Path) -> Iterator[RedisServer]:
    external = os.environ.get("AUTHKIT_TEST_REDIS_URL")
    if external:
        parts = urlsplit(external)
        password = unquote(parts.password) if parts.password is not None else None
        yield RedisServer(
            host=parts.hostname or _HOST,
            port=parts.port or 6379,
            url=external,
            password=password,
        )
        return
    password = secrets.token_urlsafe(18)
    server = start_on_a_free_port(
        lambda port: EmbeddedRedis(_servers_dir / "redis", port=port, password=password, host=_HOST)
    )
    try:
        yield RedisServer(
            host=server.host, port=server.port, url=server.url(), password=server.password
        )
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def pg_tls(pg: PgServer, tls: TlsMaterial) -> Iterator[PostgresTlsProxy]:
    with PostgresTlsProxy(pg.host, pg.port, tls) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def redis_tls(redis_srv: RedisServer, tls: TlsMaterial) -> Iterator[RedisTlsProxy]:
    with RedisTlsProxy(redis_srv.host, redis_srv.port, tls) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def redis_fronts(redis_srv: RedisServer, tls: TlsMaterial) -> Iterator[RedisDatabaseFronts]:
    with RedisDatabaseFronts(redis_srv.host, redis_srv.port, tls) as fronts:
        yield fronts


@pytest.fixture(scope="session")
def silent_listener() -> Iterator[SilentListener]:
    with SilentListener() as listener:
        yield listener


@pytest.fixture(scope="session")
def silent_port(silent_listener: SilentListener) -> int:
    return silent_listener.port


@pytest.fixture(scope="session")
def closed_port() -> Iterator[int]:
    with ClosedPort() as reserved:
        yield reserved.port


# ============================================================================================
# End of the real-servers block. Other fixtures go below.
# ============================================================================================


# ============================================================================================
# Loopback-only DNS, fakes of the cloud APIs, and test isolation.
# ============================================================================================
import socket  # noqa: E402

pytest_plugins = ["tests.fakes.fixtures"]

_real_getaddrinfo = socket.getaddrinfo


@dataclass
class FakeDns:
    """Names the tests may resolve. Anything else fails like NXDOMAIN: no query leaves the host.

    It patches Python's `socket.getaddrinfo` only, not the C resolver libpq and OpenSSL use.
    That suffices because no host name reaches C code: httpx and redis-py resolve in Python,
    and the check's dns rung resolves the name in Python and hands psycopg the address as
    `hostaddr`, so libpq never looks a name up (pinned by
    tests/test_check.py::test_libpq_is_handed_an_address_never_a_host_name)."""

    table: dict[str, list[str]]

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name in ("localhost", "127.0.0.1", "::1") or _is_ip(name):
            return _real_getaddrinfo(host, port, family, *args, **kwargs)
        addresses = self.table.get(name)
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        wanted = [
            a
            for a in addresses
            if family in (0, socket.AF_UNSPEC) or (":" in a) == (family == socket.AF_INET6)
        ]
        if not wanted:
            raise socket.gaierror(socket.EAI_NODATA, "No address associated with hostname")
        return [
            info
            for a in wanted
            for info in _real_getaddrinfo(a, port, family or 0, *args, **kwargs)
        ]


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@pytest.fixture
def checks_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, str], float]]:
    """`check`'s URLs and timeout as they reach the diagnostics (check.urls.run_checks), which
    check nothing and return no results: for tests of how check finds its URLs."""
    from authkit_setup.check import urls

    seen: list[tuple[dict[str, str], float]] = []

    def record(found: dict[str, str], *, timeout: float) -> list[Any]:
        seen.append((found, timeout))
        return []

    monkeypatch.setattr(urls, "run_checks", record)
    return seen


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    dns = FakeDns({})
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    return dns


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's credentials, URLs or .env; each runs in its own folder."""
    for name in list(os.environ):
        if name.startswith(
            ("RENDER", "NEON_", "SUPABASE_", "UPSTASH_", "AUTHKIT_", "GITHUB_")
        ) and not name.startswith("AUTHKIT_TEST_"):
            monkeypatch.delenv(name, raising=False)
    for name in ("DATABASE_URL", "REDIS_URL", "DIRECT_URL", "PGSSLROOTCERT", "PGSSLMODE", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTHKIT_STATE_DIR", str(tmp_path / ".authkit-state"))
    from authkit_setup.secrets import forget
    from tests.fakes.common import forget_handed_out

    forget()
    forget_handed_out()  # each test's leak checks look for the secrets its own fakes handed out


from tests.fakes.local_backend import cloud_fakes  # noqa: E402, F401  (fixture)
from tests.render_env import (  # noqa: E402, F401  (fixtures)
    allow_list_fronts,
    real_backend,
    render_world,
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many fault-matrix cells passed with each declared outcome (tests/fault_outcomes.py)."""
    from tests.fault_outcomes import TALLY

    if not TALLY:
        return
    terminalreporter.section("fault matrix outcomes")
    for matrix in sorted({matrix for matrix, _ in TALLY}):
        counts = sorted((label, n) for (m, label), n in TALLY.items() if m == matrix)
        line = "; ".join(f"{n} {label}" for label, n in counts)
        terminalreporter.write_line(f"{matrix}: {sum(n for _, n in counts)} cells: {line}")
