"""The Redis ladder: url → dns → tcp → tls → auth → database → query (+ fitness)."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from authkit_setup.diagnostics import drivers
from authkit_setup.diagnostics.ladder import climb, median_round_trip, reach, url_rung, warn_if_slow
from authkit_setup.diagnostics.model import CheckResult, RungFailed, TlsStatus
from authkit_setup.diagnostics.network import no_response
from authkit_setup.diagnostics.tls import handshake
from authkit_setup.diagnostics.url import UPSTASH_HOST, ConnectionUrl
from authkit_setup.secrets import redact

EVICTS_EVERYTHING = ("allkeys-lru", "allkeys-lfu", "allkeys-random")


def _tls_settings(url: ConnectionUrl) -> tuple[bool, bool, str | None]:
    """(verify, check_hostname, cafile) from redis-py style query parameters."""
    reqs = url.query.get("ssl_cert_reqs", "required").lower()
    verify = reqs not in ("none", "cert_none", "optional")
    check_hostname = url.query.get("ssl_check_hostname", "true").lower() not in ("false", "0", "no")
    return verify, verify and check_hostname, url.query.get("ssl_ca_certs")


def _handshake(
    sock: socket.socket, url: ConnectionUrl, timeout: float, *, verify_nothing: bool = False
) -> tuple[ssl.SSLSocket, str, TlsStatus]:
    """The TLS handshake as the URL's query asks for it (redis-py's parameters), or, to learn
    whether the port speaks TLS at all, one that verifies nothing."""
    verify, check_hostname, cafile = (False, False, None) if verify_nothing else _tls_settings(url)
    return handshake(
        sock,
        url.host,
        verify=verify,
        check_hostname=check_hostname,
        cafile=cafile,
        timeout=timeout,
        ca_param="ssl_ca_certs",
    )


def _speaks_tls(url: ConnectionUrl, address: str, timeout: float) -> bool:
    try:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect((address, url.port))
            tls, _, _ = _handshake(sock, url, timeout, verify_nothing=True)
            tls.close()
            return True
    except (OSError, RungFailed):
        return False


def _client(url: ConnectionUrl, timeout: float) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    verify, check_hostname, cafile = _tls_settings(url)
    kwargs: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "username": url.username or None,
        "password": url.password,
        "db": 0,
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),  # one attempt: a retry would multiply the timeout
        "protocol": 2,
    }
    if url.scheme == "rediss":
        kwargs.update(
            ssl=True,
            ssl_cert_reqs="required" if verify else "none",
            ssl_check_hostname=check_hostname,
            ssl_ca_certs=cafile,
        )
    return redis.Redis(**kwargs)


def _classify(exc: Exception, url: ConnectionUrl, address: str, timeout: float) -> RungFailed:
    import redis.exceptions as rexc

    message = redact(str(exc) or type(exc).__name__)
    upper = message.upper()
    if isinstance(exc, rexc.TimeoutError):
        return no_response(url, timeout, "PING")
    if "NOAUTH" in upper or "AUTHENTICATION REQUIRED" in upper:
        return RungFailed(
            "auth_required",
            "the server requires a password and the URL has none (NOAUTH)",
            "put the password in the URL: redis://default:PASSWORD@host:port",
            rung="auth",
        )
    if "WRONGPASS" in upper or "INVALID PASSWORD" in upper or "INVALID USERNAME-PASSWORD" in upper:
        return RungFailed(
            "auth_failed",
            f"the server rejected the user name or password (WRONGPASS) for user {url.username or 'default'!r}",
            "copy the URL again from the provider; percent-encode special characters in the password",
            rung="auth",
        )
    if "WITHOUT ANY PASSWORD CONFIGURED" in upper:
        return RungFailed(
            "auth_not_needed",
            "the URL has a password but the server has none configured",
            "remove the password from the URL (Render internal Key Value URLs have none)",
            rung="auth",
        )
    if (
        isinstance(exc, rexc.ConnectionError)
        and url.scheme == "redis"
        # Upstash only speaks TLS: a plaintext failure there needs no probe to explain.
        and (bool(UPSTASH_HOST.search(url.host)) or _speaks_tls(url, address, timeout))
    ):
        return RungFailed(
            "tls_required",
            "the server only speaks TLS but the URL is redis:// (plaintext)",
            "use rediss:// (double s) instead of redis://",
            rung="tls",
        )
    if isinstance(exc, rexc.ConnectionError):
        return RungFailed(
            "connection_closed",
            f"the connection failed during login: {message}",
            "check that the port is a Redis server, and TLS (rediss://) versus plaintext (redis://)",
            rung="tcp",
        )
    return RungFailed(
        "auth_failed",
        f"login failed: {message}",
        "check the URL's user name and password",
        rung="auth",
    )


def check_redis(raw_url: str, *, timeout: float = 5.0) -> CheckResult:
    return climb("redis", raw_url, timeout, _ladder)


def _tls_rung(result: CheckResult, sock: socket.socket, url: ConnectionUrl, timeout: float) -> str:
    if url.scheme != "rediss":
        result.tls = TlsStatus(in_use=False)
        return "not requested (redis://)"
    tls, detail, result.tls = _handshake(sock, url, timeout)
    tls.close()
    return detail


def _ladder(result: CheckResult, raw_url: str, timeout: float) -> None:
    url = url_rung(result, raw_url, lambda u: f"{u.scheme}://{u.host}:{u.port}/{u.db_index}")
    address = reach(result, url, timeout, lambda sock: _tls_rung(result, sock, url, timeout))

    drivers.load("redis")
    import redis.exceptions as rexc

    client = _client(url, timeout)
    try:
        with result.rung("auth") as detail:
            try:
                client.ping()
            except (rexc.RedisError, OSError) as exc:
                raise _classify(exc, url, address, timeout) from None
            who = url.username or "default"
            detail[0] = f"authenticated as {who!r}" if url.password else "no password needed"
        with result.rung("database") as detail:
            if url.db_index:
                try:
                    client.execute_command("SELECT", url.db_index)
                except rexc.ResponseError as exc:
                    raise RungFailed(
                        "database_missing",
                        f"database index {url.db_index} is not available ({redact(str(exc))})",
                        "use /0: managed Redis (Render, Upstash) offers only database 0",
                    ) from None
            detail[0] = f"database {url.db_index}"
        with result.rung("query") as detail:
            try:
                latency_ms = median_round_trip(client.ping)
                info = _server_info(client)
                policy = _maxmemory_policy(client)
            except (rexc.RedisError, OSError) as exc:
                raise RungFailed(
                    "query_failed",
                    f"PING failed after login: {redact(str(exc))}",
                    "the server accepted the login but cannot answer; check its logs and ACLs",
                ) from None
            product = "Valkey" if "valkey_version" in info else "Redis"
            version = str(info.get("valkey_version") or info.get("redis_version") or "unknown")
            result.server_version = f"{product} {version}"
            result.latency_ms = latency_ms
            result.facts.update({"maxmemory_policy": policy, "tls": url.scheme == "rediss"})
            detail[0] = (
                f"PING ok in {result.latency_ms:.1f} ms; {product} {version}; "
                f"maxmemory-policy {policy or 'unknown'}"
            )
    finally:
        client.close()
    if policy and policy.replace("_", "-") in EVICTS_EVERYTHING:
        result.warn(
            f"maxmemory-policy {policy} evicts keys without a TTL: AuthKit sessions could vanish "
            "under memory pressure; use noeviction (or volatile-*)"
        )
    warn_if_slow(result, "Redis")


def _server_info(client: Any) -> dict[str, Any]:
    """INFO server; from HELLO when the user may not run INFO (it is in @dangerous, which an
    application's user should not have: `authkit-setup local` gives it none)."""
    import redis.exceptions as rexc

    try:
        return dict(client.info("server"))
    except rexc.NoPermissionError:
        pass
    reply = client.execute_command("HELLO")
    if isinstance(reply, dict):
        pairs = list(reply.items())
    else:
        pairs = list(zip(reply[::2], reply[1::2], strict=False))

    def text(value: Any) -> str:
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

    hello = {text(k): v for k, v in pairs}
    product = text(hello.get("server", "redis"))
    key = "valkey_version" if product == "valkey" else "redis_version"
    return {key: text(hello.get("version", "unknown"))}


def _maxmemory_policy(client: Any) -> str | None:
    import redis.exceptions as rexc

    try:
        value = client.config_get("maxmemory-policy")
        if value.get("maxmemory-policy"):
            return str(value["maxmemory-policy"])
    except rexc.ResponseError:
        pass  # managed services often forbid CONFIG
    try:
        memory = client.info("memory")
        return str(memory["maxmemory_policy"]) if "maxmemory_policy" in memory else None
    except rexc.RedisError:
        return None
