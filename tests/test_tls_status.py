"""`check` says what TLS proved, against real PostgreSQL and Redis behind a TLS proxy.

Verified (against the system CAs or the CA file the URL names), encryption only
(`sslmode=require`, `ssl_cert_reqs=none`), or not in use: in the tls rung's detail and in the
JSON `tls` object. A failed verification's hint tells how to trust the provider's CA.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PgServer, RedisServer
from tests.helpers import CliResult, assert_no_secret, run_cli

SECRET = "Tls-Status-Secret!9/x"


@pytest.fixture(scope="module")
def app_urls(pg: PgServer, redis_srv: RedisServer) -> dict[str, str]:
    """The app's URLs (plaintext) by URL flag."""
    return {
        "--database-url": pg.create_database_and_role("authkit_tls", "authkit_tls_user", SECRET),
        "--redis-url": redis_srv.add_acl_user("authkit_tls_user", SECRET),
    }


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


def passes(url_flag: str, url: str) -> tuple[dict[str, Any], str]:
    """`check` passes `url`: its JSON `tls` object and the tls rung's detail."""
    result, item = check(url_flag, url)
    assert result.exit_code == 0, result.output
    assert item["ok"] is True
    return item["tls"], tls_detail(item)


# The TLS proxy in front of the server and the scheme on TLS, by URL flag.
ON_TLS = {"--database-url": ("pg_tls", None), "--redis-url": ("redis_tls", "rediss")}


def url_on_tls(request: pytest.FixtureRequest, url_flag: str, query: str) -> tuple[str, str]:
    """The app's URL on the TLS proxy of `url_flag`'s server with `query` (`{ca}`: the test
    CA's path) appended, and that path."""
    proxy_fixture, scheme = ON_TLS[url_flag]
    proxy = request.getfixturevalue(proxy_fixture)
    ca = str(proxy.ca_path)
    url = on_tls_port(request.getfixturevalue("app_urls")[url_flag], proxy.port, scheme)
    return url + query.format(ca=ca), ca


SYSTEM_CAS = "system CAs"

# id: (URL flag, query ({ca}: the test CA's path), trust, host name checked)
VERIFIED = {
    "postgres-verify-full": (
        "--database-url",
        "?sslmode=verify-full&sslrootcert={ca}",
        "{ca}",
        True,
    ),
    "postgres-verify-ca": ("--database-url", "?sslmode=verify-ca&sslrootcert={ca}", "{ca}", False),
    "redis-ca-file": ("--redis-url", "?ssl_ca_certs={ca}", "{ca}", True),
    "redis-system-cas": ("--redis-url", "", SYSTEM_CAS, True),
}


@pytest.mark.parametrize(
    ("url_flag", "query", "trust", "hostname_checked"), VERIFIED.values(), ids=VERIFIED.keys()
)
def test_verified_tls_names_what_it_trusted(
    url_flag: str,
    query: str,
    trust: str,
    hostname_checked: bool,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """verify-ca does not claim the host name; the system CAs are named as such."""
    url, ca = url_on_tls(request, url_flag, query)
    if trust == SYSTEM_CAS:
        # OpenSSL's default trust store honours SSL_CERT_FILE: the test CA stands in for it.
        monkeypatch.setenv("SSL_CERT_FILE", ca)
    trust = trust.format(ca=ca)
    tls, detail = passes(url_flag, url)
    assert tls == {
        "in_use": True,
        "verified": True,
        "trust": trust,
        "hostname_checked": hostname_checked,
    }
    named = "the system CAs" if trust == SYSTEM_CAS else trust
    host_name = "host name checked" if hostname_checked else "host name not checked"
    assert detail.endswith(f"certificate verified against {named}, {host_name}")


def test_postgres_verified_names_the_ca_file_in_human_output(
    request: pytest.FixtureRequest,
) -> None:
    url, ca = url_on_tls(request, "--database-url", "?sslmode=verify-full&sslrootcert={ca}")
    human = run_cli("check", "--database-url", url)
    assert f"certificate verified against {ca}" in human.stdout


@pytest.mark.parametrize(
    ("url_flag", "query"),
    [("--database-url", "?sslmode=require"), ("--redis-url", "?ssl_cert_reqs=none")],
    ids=["postgres-sslmode-require", "redis-cert-reqs-none"],
)
def test_unverified_tls_passes_as_encryption_only(
    url_flag: str, query: str, request: pytest.FixtureRequest
) -> None:
    url, _ = url_on_tls(request, url_flag, query)
    tls, detail = passes(url_flag, url)
    assert tls == {"in_use": True, "verified": False, "trust": None, "hostname_checked": False}
    assert detail.endswith("certificate not verified (encryption only)")


@pytest.mark.parametrize(
    ("url_flag", "query", "ca_parameter"),
    [
        ("--database-url", "?sslmode=verify-full", "sslrootcert"),
        ("--redis-url", "", "ssl_ca_certs"),
    ],
    ids=["postgres", "redis"],
)
def test_untrusted_certificate_hint_trusts_the_ca(
    url_flag: str, query: str, ca_parameter: str, request: pytest.FixtureRequest
) -> None:
    url, _ = url_on_tls(request, url_flag, query)
    result, item = check(url_flag, url)
    assert result.exit_code == 1
    assert item["failed_rung"] == "tls" and item["error"]["code"] == "tls_certificate"
    assert item["hint"] == (
        "no system CA signs it: trust the provider's CA rather than turning verification off: "
        f"save its CA certificate (PEM) and add {ca_parameter}=/path/to/ca.pem to the URL"
    )
    assert item["tls"] is None


def test_plaintext_says_tls_not_in_use(app_urls: dict[str, str]) -> None:
    tls, detail = passes("--redis-url", app_urls["--redis-url"])
    assert tls == {"in_use": False, "verified": False, "trust": None, "hostname_checked": False}
    assert detail == "not requested (redis://)"
