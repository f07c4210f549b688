"""`check` says what TLS proved, against real PostgreSQL and Redis behind a TLS proxy.

Verified (against the system CAs or the CA file the URL names), encryption only
(`sslmode=require`, `ssl_cert_reqs=none`), or not in use: in the tls rung's detail and in the
JSON `tls` object. A failed verification's hint tells how to trust the provider's CA.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import PgServer, RedisServer
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.servers import PostgresTlsProxy, RedisTlsProxy

SECRET = "Tls-Status-Secret!9/x"
ENC = quote(SECRET, safe="")


@pytest.fixture(scope="module")
def app_db(pg: PgServer) -> str:
    return pg.create_database_and_role("authkit_tls", "authkit_tls_user", SECRET)


@pytest.fixture(scope="module")
def app_redis(redis_srv: RedisServer) -> str:
    return redis_srv.add_acl_user("authkit_tls_user", SECRET)


def on_tls_port(url: str, port: int, scheme: str | None = None) -> str:
    head, _, tail = url.rpartition(":")
    _, _, path = tail.partition("/")
    moved = f"{head}:{port}/{path}".replace("127.0.0.1", "localhost")
    return moved.replace("redis://", f"{scheme}://") if scheme else moved


def check(url_flag: str, url: str) -> tuple[CliResult, dict[str, Any]]:
    result = run_cli("check", url_flag, url, "--json")
    assert_no_secret(result, SECRET)
    doc = result.json()
    [item] = doc["checks"]
    assert isinstance(item, dict)
    return result, item


def tls_detail(item: dict[str, Any]) -> str:
    [rung] = [r for r in item["rungs"] if r["name"] == "tls"]
    return str(rung["detail"])


def test_postgres_verify_full_says_verified_against_the_ca_file(
    app_db: str, pg_tls: PostgresTlsProxy
) -> None:
    ca = str(pg_tls.ca_path)
    url = on_tls_port(app_db, pg_tls.port) + f"?sslmode=verify-full&sslrootcert={ca}"
    result, item = check("--database-url", url)
    assert result.exit_code == 0, result.output
    assert item["tls"] == {
        "in_use": True,
        "verified": True,
        "trust": ca,
        "hostname_checked": True,
    }
    assert tls_detail(item).endswith(f"certificate verified against {ca}, host name checked")
    human = run_cli("check", "--database-url", url)
    assert f"certificate verified against {ca}" in human.stdout


def test_postgres_verify_ca_does_not_claim_the_host_name(
    app_db: str, pg_tls: PostgresTlsProxy
) -> None:
    ca = str(pg_tls.ca_path)
    url = on_tls_port(app_db, pg_tls.port) + f"?sslmode=verify-ca&sslrootcert={ca}"
    result, item = check("--database-url", url)
    assert result.exit_code == 0, result.output
    assert item["tls"] == {
        "in_use": True,
        "verified": True,
        "trust": ca,
        "hostname_checked": False,
    }
    assert tls_detail(item).endswith("host name not checked")


def test_postgres_sslmode_require_passes_as_encryption_only(
    app_db: str, pg_tls: PostgresTlsProxy
) -> None:
    url = on_tls_port(app_db, pg_tls.port) + "?sslmode=require"
    result, item = check("--database-url", url)
    assert result.exit_code == 0, result.output
    assert item["ok"] is True
    assert item["tls"] == {
        "in_use": True,
        "verified": False,
        "trust": None,
        "hostname_checked": False,
    }
    assert tls_detail(item).endswith("certificate not verified (encryption only)")


def test_postgres_untrusted_certificate_hint_trusts_the_ca(
    app_db: str, pg_tls: PostgresTlsProxy
) -> None:
    url = on_tls_port(app_db, pg_tls.port) + "?sslmode=verify-full"
    result, item = check("--database-url", url)
    assert result.exit_code == 1
    assert item["failed_rung"] == "tls" and item["error"]["code"] == "tls_certificate"
    assert item["hint"] == (
        "no system CA signs it: trust the provider's CA rather than turning verification off: "
        "save its CA certificate (PEM) and add sslrootcert=/path/to/ca.pem to the URL"
    )
    assert item["tls"] is None


def test_redis_with_a_ca_file_says_verified(app_redis: str, redis_tls: RedisTlsProxy) -> None:
    ca = str(redis_tls.ca_path)
    url = on_tls_port(app_redis, redis_tls.port, "rediss") + f"?ssl_ca_certs={ca}"
    result, item = check("--redis-url", url)
    assert result.exit_code == 0, result.output
    assert item["tls"] == {
        "in_use": True,
        "verified": True,
        "trust": ca,
        "hostname_checked": True,
    }


def test_redis_system_cas_are_named_as_such(
    app_redis: str, redis_tls: RedisTlsProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSL's default trust store honours SSL_CERT_FILE: the test CA stands in for it."""
    monkeypatch.setenv("SSL_CERT_FILE", str(redis_tls.ca_path))
    url = on_tls_port(app_redis, redis_tls.port, "rediss")
    result, item = check("--redis-url", url)
    assert result.exit_code == 0, result.output
    assert item["tls"] == {
        "in_use": True,
        "verified": True,
        "trust": "system CAs",
        "hostname_checked": True,
    }
    assert "certificate verified against the system CAs, host name checked" in tls_detail(item)


def test_redis_cert_reqs_none_passes_as_encryption_only(
    app_redis: str, redis_tls: RedisTlsProxy
) -> None:
    url = on_tls_port(app_redis, redis_tls.port, "rediss") + "?ssl_cert_reqs=none"
    result, item = check("--redis-url", url)
    assert result.exit_code == 0, result.output
    assert item["tls"] == {
        "in_use": True,
        "verified": False,
        "trust": None,
        "hostname_checked": False,
    }
    assert tls_detail(item).endswith("certificate not verified (encryption only)")


def test_redis_untrusted_certificate_hint_trusts_the_ca(
    app_redis: str, redis_tls: RedisTlsProxy
) -> None:
    url = on_tls_port(app_redis, redis_tls.port, "rediss")
    result, item = check("--redis-url", url)
    assert result.exit_code == 1
    assert item["error"]["code"] == "tls_certificate"
    assert "add ssl_ca_certs=/path/to/ca.pem to the URL" in item["hint"]
    assert "ssl_cert_reqs=none" not in item["hint"]


def test_plaintext_says_tls_not_in_use(app_redis: str) -> None:
    result, item = check("--redis-url", app_redis)
    assert result.exit_code == 0, result.output
    assert item["tls"] == {
        "in_use": False,
        "verified": False,
        "trust": None,
        "hostname_checked": False,
    }
