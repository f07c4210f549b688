"""The real-server fixtures behave like the servers the tool meets in the wild."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from authkit_setup.errors import LocalServerError
from authkit_setup.local.binaries import find_postgres_bin, find_redis_server
from authkit_setup.local.postgres_server import EmbeddedPostgres
from authkit_setup.local.processes import free_port
from authkit_setup.local.redis_server import EmbeddedRedis
from tests.conftest import PgServer, RedisServer
from tests.servers import (
    PostgresTlsProxy,
    RedisTlsProxy,
    connect_error_sqlstate,
    start_on_a_free_port,
)

# ------------------------------------------------------------------------- PostgreSQL


def test_pg_accepts_the_superuser_password(pg: PgServer) -> None:
    with psycopg.connect(pg.superuser_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None and row[0] >= 140000


def test_pg_wrong_password_is_28P01(pg: PgServer) -> None:
    url = pg.url("postgres", "not-the-password", "postgres")
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(url, connect_timeout=5)
    assert info.value.sqlstate in (None, "28P01")  # psycopg has no SQLSTATE at connect time
    assert connect_error_sqlstate(info.value) == "28P01"
    assert "password authentication failed" in str(info.value)


def test_pg_missing_database_is_3D000(pg: PgServer) -> None:
    url = pg.url("app_missing_db", "pw-1", "no_such_db")
    pg.create_database_and_role("app_missing_db", "app_missing_db", "pw-1")
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(url, connect_timeout=5)
    assert connect_error_sqlstate(info.value) == "3D000"


def test_create_database_and_role(pg: PgServer) -> None:
    password = "p@ss:w/rd %?#"
    url = pg.create_database_and_role("app_db", "app_user", password)
    assert url.startswith(f"postgresql://app_user:p%40ss%3Aw%2Frd%20%25%3F%23@127.0.0.1:{pg.port}/")
    with psycopg.connect(url, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id int)")
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("app_user", "app_db")
    # Idempotent: a second call resets the password.
    url2 = pg.create_database_and_role("app_db", "app_user", "another")
    with psycopg.connect(url2, connect_timeout=5):
        pass


@pytest.mark.parametrize("sslmode", ["require", "verify-ca", "verify-full"])
def test_pg_tls_proxy_speaks_tls(pg: PgServer, pg_tls: PostgresTlsProxy, sslmode: str) -> None:
    url = pg.create_database_and_role("tls_db", "tls_user", "tls-pw")
    with psycopg.connect(
        url,
        host=pg_tls.host,
        port=pg_tls.port,
        sslmode=sslmode,
        sslrootcert=str(pg_tls.ca_path),
        connect_timeout=5,
    ) as conn:
        assert conn.pgconn.ssl_in_use is True
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_pg_tls_proxy_verify_full_rejects_unknown_ca(
    pg: PgServer, pg_tls: PostgresTlsProxy, tmp_path: Path
) -> None:
    from tests.servers import make_tls_material

    other_ca = make_tls_material(tmp_path / "other").ca_pem_path
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(
            pg.superuser_url,
            host=pg_tls.host,
            port=pg_tls.port,
            sslmode="verify-full",
            sslrootcert=str(other_ca),
            connect_timeout=5,
        )


def test_pg_tls_proxy_refuses_plaintext_like_hostssl(
    pg: PgServer, pg_tls: PostgresTlsProxy
) -> None:
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(
            pg.url("someone", "pw", "somedb"),
            host=pg_tls.host,
            port=pg_tls.port,
            sslmode="disable",
            connect_timeout=5,
        )
    message = str(info.value)
    assert connect_error_sqlstate(info.value) == "28000"
    assert (
        'no pg_hba.conf entry for host "127.0.0.1", user "someone", database "somedb", '
        "no encryption" in message
    )


def test_plain_pg_rejects_sslmode_require(pg: PgServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="server does not support SSL"):
        psycopg.connect(pg.superuser_url, sslmode="require", connect_timeout=5)


# ------------------------------------------------------------------------- Redis

# redis-py 8 retries failed commands 3 times with backoff by default: off for the fault tests.
NO_RETRY = Retry(NoBackoff(), 0)


def ping_once(host: str, port: int, timeout: float, password: str | None = None) -> None:
    """One PING: no retry, each wait at most `timeout` seconds."""
    with redis.Redis(
        host=host,
        port=port,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=NO_RETRY,
    ) as client:
        client.ping()


def test_redis_ping_with_password(redis_srv: RedisServer) -> None:
    with redis.Redis.from_url(redis_srv.url, socket_timeout=5) as client:
        assert client.ping() is True


def test_redis_wrong_password_is_wrongpass(redis_srv: RedisServer) -> None:
    client = redis.Redis(
        host=redis_srv.host, port=redis_srv.port, password="wrong", socket_timeout=5, retry=NO_RETRY
    )
    with client, pytest.raises(redis.exceptions.AuthenticationError) as info:
        client.ping()
    assert "invalid username-password pair" in str(info.value)


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        (2, "Authentication required"),  # NOAUTH
        # redis-py 8 speaks RESP3 by default: HELLO 3 without AUTH is refused by Redis 6.2.
        (3, "HELLO must be called with the client already authenticated"),
    ],
)
def test_redis_without_password_is_noauth(
    redis_srv: RedisServer, protocol: int, message: str
) -> None:
    with (
        redis.Redis(
            host=redis_srv.host,
            port=redis_srv.port,
            socket_timeout=5,
            protocol=protocol,
            retry=NO_RETRY,
        ) as client,
        pytest.raises(redis.exceptions.AuthenticationError, match=message),
    ):
        client.ping()


def test_redis_acl_user(redis_srv: RedisServer) -> None:
    url = redis_srv.add_acl_user("acl_app", "acl pw/1")
    assert url == f"redis://acl_app:acl%20pw%2F1@127.0.0.1:{redis_srv.port}/0"
    with redis.Redis.from_url(url, socket_timeout=5, decode_responses=True) as client:
        assert client.acl_whoami() == "acl_app"
        client.set("acl-key", "v")
        assert client.get("acl-key") == "v"


def test_rediss_through_tls_proxy(redis_srv: RedisServer, redis_tls: RedisTlsProxy) -> None:
    with redis.Redis(
        host=redis_tls.host,
        port=redis_tls.port,
        password=redis_srv.password,
        ssl=True,
        ssl_ca_certs=str(redis_tls.ca_path),
        socket_timeout=5,
    ) as client:
        assert client.ping() is True
    url = f"rediss://:{redis_srv.password}@127.0.0.1:{redis_tls.port}/0"
    with redis.Redis.from_url(url, ssl_ca_certs=str(redis_tls.ca_path), socket_timeout=5) as c:
        assert c.ping() is True


def test_plain_client_against_redis_tls_fails(
    redis_srv: RedisServer, redis_tls: RedisTlsProxy
) -> None:
    with pytest.raises(redis.exceptions.ConnectionError):
        ping_once(redis_tls.host, redis_tls.port, 5, password=redis_srv.password)


# ------------------------------------------------------------------------- fault listeners


def test_silent_listener_times_out_redis(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):
        ping_once("127.0.0.1", silent_port, 1)
    assert time.monotonic() - started < 3


def test_silent_listener_times_out_socket(silent_port: int) -> None:
    with socket.create_connection(("127.0.0.1", silent_port), timeout=1) as sock:
        sock.sendall(b"hello")
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_silent_listener_times_out_psycopg(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="timeout"):
        psycopg.connect(host="127.0.0.1", port=silent_port, connect_timeout=1, sslmode="disable")
    assert time.monotonic() - started < 10  # libpq rounds connect_timeout up to 2s


def test_closed_port_refuses(closed_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port), timeout=1)
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(host="127.0.0.1", port=closed_port, connect_timeout=2)
    with (
        redis.Redis(
            host="127.0.0.1", port=closed_port, socket_connect_timeout=1, retry=NO_RETRY
        ) as client,
        pytest.raises(redis.exceptions.ConnectionError),
    ):
        client.ping()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("::1", closed_port), timeout=1)
    # Reserved for the whole session: no server started meanwhile can land on it.
    with socket.socket() as other, pytest.raises(OSError, match="Address already in use"):
        other.bind(("127.0.0.1", closed_port))


# ------------------------------------------------------------------------- embedded lifecycle


def test_binaries_are_found() -> None:
    assert (find_postgres_bin() / "postgres").is_file()
    assert find_redis_server().name == "redis-server"


def test_embedded_postgres_keeps_data_across_restart(_servers_dir: Path) -> None:
    server = start_on_a_free_port(
        lambda port: EmbeddedPostgres(
            _servers_dir / "pg-restart", port=port, password="restart-pw", fast=True
        )
    )
    try:
        assert server.is_running()
        with psycopg.connect(server.superuser_url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        server.stop()
        assert not server.is_running()
        server.stop()  # idempotent

        # A new handle (as `authkit-setup local` would have in a later run) sees the same data.
        again = start_on_a_free_port(
            lambda port: EmbeddedPostgres(
                _servers_dir / "pg-restart", port=port, password="restart-pw", fast=True
            )
        )
        assert again.is_running()
        with psycopg.connect(again.superuser_url()) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("still here",)]
        # The private unix socket trusts local connections (no password).
        socket_dir = again.socket_dir
        assert socket_dir is not None and socket_dir.is_dir()
        with psycopg.connect(
            host=str(socket_dir), port=again.port, user="postgres", dbname="postgres"
        ) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        again.stop()
        assert not again.is_running()
        assert not socket_dir.exists()
    finally:
        server.stop()


def test_embedded_servers_report_a_taken_port(_servers_dir: Path, silent_port: int) -> None:
    pg = EmbeddedPostgres(_servers_dir / "pg-taken", port=silent_port, password="pw", fast=True)
    with pytest.raises(LocalServerError, match="exited") as info:
        pg.start(timeout=20)
    assert "Address already in use" in (info.value.hint or "")
    assert not pg.is_running()
    r = EmbeddedRedis(_servers_dir / "redis-taken", port=silent_port, password=None)
    with pytest.raises(LocalServerError, match="exited") as info:
        r.start()
    assert "Address already in use" in (info.value.hint or "")
    assert not r.is_running()


def test_embedded_postgres_start_twice_is_a_noop_but_port_must_match(_servers_dir: Path) -> None:
    server = start_on_a_free_port(
        lambda port: EmbeddedPostgres(
            _servers_dir / "pg-twice", port=port, password="pw", fast=True
        )
    )
    try:
        pid = server.pid
        server.start()
        assert server.pid == pid
        other = EmbeddedPostgres(_servers_dir / "pg-twice", port=free_port(), password="pw")
        with pytest.raises(LocalServerError, match="already running"):
            other.start()
    finally:
        server.stop()


def test_embedded_redis_keeps_data_across_restart(_servers_dir: Path) -> None:
    data = _servers_dir / "redis-restart"
    server = start_on_a_free_port(lambda port: EmbeddedRedis(data, port=port, password="r-pw"))
    try:
        acl_url = server.add_acl_user("kept_user", "kept-pw")
        with redis.Redis.from_url(server.url(), socket_timeout=5) as client:
            client.set("kept-key", "kept-value")
        server.stop()
        assert not server.is_running()

        again = start_on_a_free_port(lambda port: EmbeddedRedis(data, port=port, password="r-pw"))
        with redis.Redis.from_url(again.url(), socket_timeout=5) as client:
            assert client.get("kept-key") == b"kept-value"
        # The ACL user survives too (its URL names the new port).
        acl_url = acl_url.replace(f":{server.port}/", f":{again.port}/")
        with redis.Redis.from_url(acl_url, socket_timeout=5, decode_responses=True) as client:
            assert client.acl_whoami() == "kept_user"
        again.stop()
        assert not again.is_running()
    finally:
        server.stop()


def test_embedded_postgres_rejects_multiline_password(tmp_path: Path) -> None:
    with pytest.raises(LocalServerError):
        EmbeddedPostgres(tmp_path / "x", port=free_port(), password="a\nb")
