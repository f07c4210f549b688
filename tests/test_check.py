"""`authkit-setup check` against real PostgreSQL and Redis servers (plain, TLS, broken)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
import redis

from tests.conftest import FakeDns, PgServer, RedisServer
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.servers import PostgresTlsProxy, RedisTlsProxy

# A distinctive password with characters that need percent-encoding.
SECRET = "Zq9!x@p%W/ord#Secr3t"
ENC = quote(SECRET, safe="")


@pytest.fixture(scope="module")
def app_db(pg: PgServer) -> str:
    return pg.create_database_and_role("authkit_check", "authkit_check_user", SECRET)


@pytest.fixture(scope="module")
def app_redis(redis_srv: RedisServer) -> str:
    return redis_srv.add_acl_user("authkit_check_user", SECRET)


def check(*args: str) -> CliResult:
    result = run_cli("check", *args)
    assert_no_secret(result, SECRET)
    return result


def check_json(*args: str) -> tuple[CliResult, dict[str, object]]:
    result = check(*args, "--json")
    return result, result.json_object()


def only(doc: dict[str, object]) -> dict[str, object]:
    checks = doc["checks"]
    assert isinstance(checks, list) and len(checks) == 1
    item = checks[0]
    assert isinstance(item, dict)
    return item


# -- passes -------------------------------------------------------------------------------


def test_plain_postgres_and_redis_pass(app_db: str, app_redis: str) -> None:
    result, doc = check_json("--database-url", app_db, "--redis-url", app_redis)
    assert result.exit_code == 0, result.output
    assert doc["ok"] is True
    checks = doc["checks"]
    assert isinstance(checks, list)
    assert [c["target"] for c in checks] == ["postgres", "redis"]
    for item in checks:
        assert set(item) == {
            "target",
            "url",
            "ok",
            "failed_rung",
            "rungs",
            "error",
            "hint",
            "warnings",
            "server_version",
            "latency_ms",
            "tls",
        }
        assert item["tls"] == {
            "in_use": False,
            "verified": False,
            "trust": None,
            "hostname_checked": False,
        }
        assert item["ok"] is True and item["failed_rung"] is None and item["error"] is None
        assert [r["name"] for r in item["rungs"]] == [
            "url",
            "dns",
            "tcp",
            "tls",
            "auth",
            "database",
            "query",
        ]
        assert all(set(r) == {"name", "ok", "ms", "detail"} and r["ok"] for r in item["rungs"])
        assert isinstance(item["latency_ms"], float)
        assert "****" in item["url"]
    assert str(checks[0]["server_version"]).startswith("PostgreSQL 18")
    assert str(checks[1]["server_version"]).startswith("Redis 6.2")
    assert "authkit_check" in checks[0]["rungs"][-1]["detail"]


def test_human_output_names_each_rung(app_db: str) -> None:
    result = check("--database-url", app_db)
    assert result.exit_code == 0
    for rung in ("url", "dns", "tcp", "tls", "auth", "database", "query"):
        assert f"✓ {rung}" in result.stdout
    assert "All checks passed." in result.stdout


def test_postgres_scheme_and_pgbouncer_param_pass_with_warning(app_db: str) -> None:
    url = app_db.replace("postgresql://", "postgres://") + "?pgbouncer=true"
    result, doc = check_json("--database-url", url)
    assert result.exit_code == 0, result.output
    item = only(doc)
    assert item["ok"] is True
    assert any("pgbouncer=true" in w for w in item["warnings"])  # type: ignore[attr-defined]


def test_postgres_tls_verified(app_db: str, pg_tls: PostgresTlsProxy, tls_ca: str) -> None:
    url = _on_port(app_db, pg_tls.port) + f"?sslmode=verify-full&sslrootcert={tls_ca}"
    url = url.replace("127.0.0.1", "localhost")
    result, doc = check_json("--database-url", url)
    assert result.exit_code == 0, result.output
    item = only(doc)
    tls_rung = item["rungs"][3]  # type: ignore[index]
    assert tls_rung["name"] == "tls" and "TLS" in tls_rung["detail"]
    assert "TLS in use" in item["rungs"][-1]["detail"]  # type: ignore[index]


def test_redis_tls_verified(app_redis: str, redis_tls: RedisTlsProxy, tls_ca: str) -> None:
    url = (
        _on_port(app_redis, redis_tls.port)
        .replace("redis://", "rediss://")
        .replace("127.0.0.1", "localhost")
    )
    result, doc = check_json("--redis-url", url + f"?ssl_ca_certs={tls_ca}")
    assert result.exit_code == 0, result.output
    assert only(doc)["ok"] is True


# -- a failure at every rung ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "code", "says"),
    [
        ("mysql://u:p@localhost/db", "url_invalid", "scheme 'mysql'"),
        ("postgresql://u:p@localhost:notaport/db", "url_invalid", "port"),
        ("postgresql://u:p@localhost:5432", "url_invalid", "no database"),
        ("postgresql:///db", "url_invalid", "no host"),
    ],
)
def test_url_rung(url: str, code: str, says: str) -> None:
    result, doc = check_json("--database-url", url)
    assert result.exit_code == 1
    item = only(doc)
    assert item["failed_rung"] == "url"
    assert set(item["error"]) == {"code", "message"}  # type: ignore[call-overload]
    assert item["error"]["code"] == code  # type: ignore[index]
    assert says in item["error"]["message"]  # type: ignore[index]
    assert item["hint"]


def test_dns_rung_unresolvable_host() -> None:
    result, doc = check_json("--database-url", f"postgresql://u:{ENC}@db.nowhere.test:5432/authkit")
    item = only(doc)
    assert result.exit_code == 1
    assert item["failed_rung"] == "dns"
    assert item["error"]["code"] == "dns_not_found"  # type: ignore[index]


def test_dns_rung_render_internal_host_explained() -> None:
    result, doc = check_json(
        "--database-url", f"postgresql://u:{ENC}@dpg-abcdefghij0123456789-a/authkit"
    )
    item = only(doc)
    assert item["failed_rung"] == "dns"
    assert item["error"]["code"] == "internal_host"  # type: ignore[index]
    assert any("internal" in w for w in item["warnings"])  # type: ignore[attr-defined]


def test_dns_rung_ipv6_only_host_without_ipv6(
    fake_dns: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authkit_setup.diagnostics import network

    fake_dns.table["db.abcdefghijklmnopqrst.supabase.co"] = ["::1"]  # type: ignore[attr-defined]
    monkeypatch.setattr(network, "_is_loopback_only", lambda addresses: False)
    monkeypatch.setattr(network, "ipv6_available", lambda: False)
    result, doc = check_json(
        "--database-url",
        f"postgresql://postgres:{ENC}@db.abcdefghijklmnopqrst.supabase.co:5432/postgres",
    )
    item = only(doc)
    assert item["failed_rung"] == "dns"
    assert item["error"]["code"] == "ipv6_only"  # type: ignore[index]
    assert "pooler" in str(item["hint"])
    assert "no A record" not in str(item["error"])  # the message names the IPv6-only cause


def test_libpq_is_handed_an_address_never_a_host_name(
    app_db: str, fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake DNS patches Python's resolver only; libpq (C) would resolve a host name with
    the system resolver, past the fake, and could leave the machine. The check resolves the
    name itself (dns rung) and connects libpq to that address with `hostaddr` (the name stays
    in `host` for TLS and error messages only). This test fails if libpq is ever asked to
    resolve a name: every psycopg.connect must carry an IP literal as `hostaddr`."""
    import ipaddress

    import psycopg

    name = "db.authkit-check.test"
    fake_dns.table[name] = ["127.0.0.1"]
    real_connect = psycopg.connect
    seen: list[dict[str, Any]] = []

    def connect(conninfo: str = "", **kwargs: Any) -> psycopg.Connection[Any]:
        seen.append(psycopg.conninfo.conninfo_to_dict(conninfo, **kwargs))
        return real_connect(conninfo, **kwargs)

    monkeypatch.setattr(psycopg, "connect", connect)
    result, doc = check_json("--database-url", app_db.replace("@127.0.0.1:", f"@{name}:"))
    assert result.exit_code == 0, result.output
    assert only(doc)["ok"] is True
    assert len(seen) == 1, seen
    (params,) = seen
    assert params["host"] == name
    assert ipaddress.ip_address(str(params["hostaddr"])) == ipaddress.ip_address("127.0.0.1")


def test_tcp_rung_refused(closed_port: int) -> None:
    result, doc = check_json(
        "--database-url", f"postgresql://u:{ENC}@127.0.0.1:{closed_port}/authkit"
    )
    item = only(doc)
    assert item["failed_rung"] == "tcp"
    assert item["error"]["code"] == "tcp_refused"  # type: ignore[index]


def test_tcp_rung_silent_listener_costs_one_timeout(silent_port: int) -> None:
    start = time.monotonic()
    result, doc = check_json(
        "--database-url",
        f"postgresql://u:{ENC}@127.0.0.1:{silent_port}/authkit",
        "--redis-url",
        f"redis://:{ENC}@127.0.0.1:{silent_port}/0",
        "--timeout",
        "1",
    )
    elapsed = time.monotonic() - start
    assert result.exit_code == 1
    checks = doc["checks"]
    assert isinstance(checks, list)
    for item in checks:
        assert item["failed_rung"] == "tcp"
        assert item["error"]["code"] == "no_response"
    assert elapsed < 4.0  # concurrent, one timeout each (generous bound against CI noise)


def test_tls_rung_required_but_not_used(app_db: str, pg_tls: PostgresTlsProxy) -> None:
    url = _on_port(app_db, pg_tls.port) + "?sslmode=disable"
    result, doc = check_json("--database-url", url)
    item = only(doc)
    assert item["failed_rung"] == "tls"
    assert item["error"]["code"] == "tls_required"  # type: ignore[index]
    assert "sslmode=require" in str(item["hint"])


def test_tls_rung_redis_plaintext_to_tls_server(app_redis: str, redis_tls: RedisTlsProxy) -> None:
    result, doc = check_json("--redis-url", _on_port(app_redis, redis_tls.port), "--timeout", "2")
    item = only(doc)
    assert item["failed_rung"] == "tls"
    assert item["error"]["code"] == "tls_required"  # type: ignore[index]
    assert "rediss://" in str(item["hint"])


def test_tls_rung_used_but_not_offered(app_db: str, app_redis: str) -> None:
    result, doc = check_json("--database-url", app_db + "?sslmode=require")
    item = only(doc)
    assert item["failed_rung"] == "tls"
    assert item["error"]["code"] == "tls_not_offered"  # type: ignore[index]
    result, doc = check_json(
        "--redis-url", app_redis.replace("redis://", "rediss://"), "--timeout", "2"
    )
    item = only(doc)
    assert item["failed_rung"] == "tls"


def test_tls_rung_untrusted_certificate(app_db: str, pg_tls: PostgresTlsProxy) -> None:
    url = _on_port(app_db, pg_tls.port).replace("127.0.0.1", "localhost") + "?sslmode=verify-full"
    result, doc = check_json("--database-url", url)
    item = only(doc)
    assert item["failed_rung"] == "tls"
    assert item["error"]["code"] == "tls_certificate"  # type: ignore[index]


def test_auth_rung_wrong_password(app_db: str, app_redis: str) -> None:
    result, doc = check_json("--database-url", app_db.replace(ENC, "wrong-password"))
    item = only(doc)
    assert item["failed_rung"] == "auth"
    assert item["error"]["code"] == "auth_failed"  # type: ignore[index]
    result, doc = check_json("--redis-url", app_redis.replace(ENC, "wrong-password"))
    item = only(doc)
    assert item["failed_rung"] == "auth"
    assert "WRONGPASS" in item["error"]["message"]  # type: ignore[index]


def test_auth_rung_redis_without_password(redis_srv: RedisServer) -> None:
    result, doc = check_json("--redis-url", f"redis://127.0.0.1:{redis_srv.port}/0")
    item = only(doc)
    assert item["failed_rung"] == "auth"
    assert item["error"]["code"] == "auth_required"  # type: ignore[index]


def test_database_rung_missing_database(app_db: str, app_redis: str) -> None:
    result, doc = check_json("--database-url", app_db.rsplit("/", 1)[0] + "/no_such_db")
    item = only(doc)
    assert item["failed_rung"] == "database"
    assert item["error"]["code"] == "database_missing"  # type: ignore[index]
    result, doc = check_json("--redis-url", app_redis.rsplit("/", 1)[0] + "/99")
    item = only(doc)
    assert item["failed_rung"] == "database"


def test_fitness_warns_on_allkeys_policy(redis_srv: RedisServer, app_redis: str) -> None:
    admin = redis.Redis.from_url(redis_srv.url, protocol=2)
    admin.config_set("maxmemory-policy", "allkeys-lru")
    try:
        result, doc = check_json("--redis-url", app_redis)
    finally:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.close()
    item = only(doc)
    assert item["ok"] is True
    assert any("allkeys-lru" in w for w in item["warnings"])  # type: ignore[attr-defined]


# -- inputs and exit codes --------------------------------------------------------------------


def test_no_urls_is_a_usage_error() -> None:
    result = run_cli("check")
    assert result.exit_code == 2
    assert result.stderr.count("\n") <= 2 and "nothing to check" in result.stderr


def test_flag_beats_env_beats_env_file(
    app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from pathlib import Path

    Path(".env").write_text(f"DATABASE_URL=postgresql://u:{ENC}@127.0.0.1:1/envfile\n")
    result, doc = check_json()
    assert "envfile" in str(only(doc)["url"])
    monkeypatch.setenv("DATABASE_URL", app_db)
    result, doc = check_json()
    assert result.exit_code == 0
    result, doc = check_json("--database-url", f"postgresql://u:{ENC}@127.0.0.1:1/fromflag")
    assert "fromflag" in str(only(doc)["url"])


def test_missing_env_file_flag_is_usage_error() -> None:
    result = run_cli("check", "--env-file", "nope.env")
    assert result.exit_code == 2
    assert "nope.env" in result.stderr


def test_bad_timeout_is_usage_error() -> None:
    result = run_cli("check", "--database-url", "postgresql://h/db", "--timeout", "0")
    assert result.exit_code == 2


def test_json_stdout_is_one_document_even_on_failure(closed_port: int) -> None:
    result = check("--redis-url", f"redis://:{ENC}@127.0.0.1:{closed_port}", "--json")
    assert result.exit_code == 1
    doc = result.json()
    assert doc["ok"] is False and doc["checks"][0]["failed_rung"] == "tcp"


def _on_port(url: str, port: int) -> str:
    head, _, tail = url.rpartition(":")
    _, _, path = tail.partition("/")
    return f"{head}:{port}/{path}"


@pytest.fixture(scope="session")
def tls_ca(pg_tls: PostgresTlsProxy) -> str:
    return str(pg_tls.ca_path)
