"""The PostgreSQL ladder: url → dns → tcp → tls → auth → database → query (+ fitness)."""

from __future__ import annotations

import math
import os
import re
import socket
import struct
from typing import Any

from authkit_setup.diagnostics import drivers
from authkit_setup.diagnostics.ladder import climb, median_round_trip, reach, url_rung, warn_if_slow
from authkit_setup.diagnostics.model import CheckResult, RungFailed, TlsStatus
from authkit_setup.diagnostics.network import no_response
from authkit_setup.diagnostics.tls import handshake
from authkit_setup.diagnostics.url import ConnectionUrl, build_libpq_url
from authkit_setup.secrets import redact

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _tls_rung(result: CheckResult, sock: socket.socket, url: Any, timeout: float) -> str:
    sslmode = url.sslmode
    if sslmode == "disable":
        result.tls = TlsStatus(in_use=False)
        return "not requested (sslmode=disable)"
    sock.settimeout(timeout)
    try:
        sock.sendall(SSL_REQUEST)
        answer = _recv_exact(sock, 1)
    except TimeoutError:
        raise no_response(url, timeout, "the TLS request (SSLRequest)") from None
    except OSError as exc:
        raise RungFailed(
            "tls_handshake",
            f"the connection broke during the TLS request ({exc.strerror or exc})",
            "check that the port is a PostgreSQL server",
        ) from None
    if answer == b"N":
        if url.tls:
            raise RungFailed(
                "tls_not_offered",
                f"the server does not offer TLS, but the URL asks for it (sslmode={sslmode})",
                "connect to the server's TLS host/port, or drop sslmode=require only if this is a "
                "private network (e.g. a Render internal URL)",
            )
        result.tls = TlsStatus(in_use=False)
        return f"the server does not offer TLS (sslmode={sslmode}: plaintext)"
    if answer != b"S":
        what = "closed the connection" if not answer else f"answered {answer!r}"
        raise RungFailed(
            "tls_handshake",
            f"the server {what} instead of answering the TLS request",
            "check that the host and port are a PostgreSQL server",
        )
    verify = sslmode in ("verify-ca", "verify-full")
    cafile = url.query.get("sslrootcert") or os.environ.get("PGSSLROOTCERT")
    if cafile == "system":
        cafile = None
    tls, detail, result.tls = handshake(
        sock,
        url.host,
        verify=verify,
        check_hostname=sslmode == "verify-full",
        cafile=cafile,
        timeout=timeout,
        ca_param="sslrootcert",
    )
    tls.close()
    return detail


# libpq reports connect-time failures as text only (psycopg leaves `sqlstate` None), so the
# server's standard messages are mapped back to their SQLSTATE here.
_CONNECT_MESSAGES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("28P01", re.compile(r"password authentication failed for user")),
    ("3D000", re.compile(r'database ".*" does not exist')),
    ("28000", re.compile(r"no pg_hba\.conf entry for host")),
    ("28000", re.compile(r'role ".*" does not exist')),
    ("42501", re.compile(r"permission denied for database")),
    ("57P03", re.compile(r"the database system is (starting up|in recovery mode|shutting down)")),
    ("53300", re.compile(r"too many clients|remaining connection slots are reserved")),
)


def sqlstate_of(exc: BaseException) -> str | None:
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate
    text = str(exc)
    for code, pattern in _CONNECT_MESSAGES:
        if pattern.search(text):
            return code
    return None


def _classify(exc: Exception, url: Any, timeout: float) -> RungFailed:
    """Map a psycopg connection error to the rung it belongs to."""
    sqlstate = sqlstate_of(exc)
    message = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    text = str(exc).lower()
    user = url.username or "(default user)"
    if sqlstate == "28P01":
        return RungFailed(
            "auth_failed",
            f"password authentication failed for user {user!r}",
            "the password is wrong: copy the URL again from the provider (passwords with special "
            "characters must be percent-encoded)",
            rung="auth",
        )
    if sqlstate == "28000":
        if "no encryption" in text or "ssl off" in text:
            return RungFailed(
                "tls_required",
                "the server requires TLS but the connection was plaintext",
                "append ?sslmode=require to the URL",
                rung="tls",
            )
        return RungFailed(
            "auth_rejected",
            f"the server refused user {user!r}: {message}",
            "check the user name, and that the role exists and may log in from this address",
            rung="auth",
        )
    if sqlstate == "3D000":
        return RungFailed(
            "database_missing",
            f"database {url.database!r} does not exist on this server",
            "check the database name at the end of the URL (Render adds a suffix such as "
            "authkit_ab12: copy the URL again), or create it",
            rung="database",
        )
    if sqlstate == "42501":
        return RungFailed(
            "database_denied",
            f"user {user!r} may not connect to database {url.database!r}",
            f"GRANT CONNECT ON DATABASE {url.database} TO {user}",
            rung="database",
        )
    if sqlstate == "57P03":
        return RungFailed(
            "server_starting",
            "the server is starting up or in recovery",
            "wait a minute and run the check again",
            rung="query",
        )
    if sqlstate == "53300":
        return RungFailed(
            "too_many_connections",
            "the server has no free connection slots",
            "close idle connections or use a pooler (e.g. pgbouncer)",
            rung="query",
        )
    if "endpoint id is not specified" in text:  # Neon's proxy got no TLS SNI
        from authkit_setup.diagnostics.url import neon_endpoint_id

        endpoint = neon_endpoint_id(url.host) or "<endpoint-id>"
        return RungFailed(
            "neon_sni",
            "Neon could not tell which endpoint to route to: the client sent no TLS SNI",
            "upgrade libpq (14 or newer sends SNI) and remove sslsni=0, or add "
            f"options=endpoint%3D{endpoint} to the URL",
            rung="tls",
        )
    if "no password supplied" in text:
        return RungFailed(
            "auth_required",
            "the server asks for a password and the URL has none",
            "put the password in the URL: postgresql://user:PASSWORD@host/db",
            rung="auth",
        )
    if "timeout expired" in text:
        return no_response(url, timeout, "the login")
    if "ssl" in text or "certificate" in text:
        return RungFailed(
            "tls_handshake",
            f"TLS failed: {message}",
            "check sslmode and the certificate",
            rung="tls",
        )
    if "server closed the connection" in text or "connection reset" in text:
        return RungFailed(
            "connection_closed",
            f"the server closed the connection during login: {message}",
            "check that the port is a PostgreSQL server (not a pooler in another mode)",
            rung="tcp",
        )
    if sqlstate is not None and sqlstate.startswith("28"):
        return RungFailed("auth_failed", message, "check the user name and password", rung="auth")
    return RungFailed("connect_failed", message, "check the URL", rung="auth")


def check_postgres(raw_url: str, *, timeout: float = 5.0) -> CheckResult:
    return climb("postgres", raw_url, timeout, _ladder)


def _describe(url: ConnectionUrl) -> str:
    return f"{url.scheme}://{url.host}:{url.port}/{url.database} sslmode={url.sslmode}"


def _ladder(result: CheckResult, raw_url: str, timeout: float) -> None:
    url = url_rung(result, raw_url, _describe)
    result.url = url.raw
    address = reach(result, url, timeout, lambda sock: _tls_rung(result, sock, url, timeout))

    drivers.load("postgres")
    import psycopg

    conn: Any = None
    with result.rung("auth") as detail:
        try:
            conn = psycopg.connect(
                build_libpq_url(url),
                hostaddr=address,
                connect_timeout=max(2, math.ceil(timeout)),
                autocommit=True,
                application_name="authkit-setup check",
            )
        except psycopg.Error as exc:
            raise _classify(exc, url, timeout) from None
        detail[0] = f"authenticated as {conn.info.user!r}"
    try:
        with result.rung("database") as detail:
            detail[0] = f"connected to database {conn.info.dbname!r}"
        with result.rung("query") as detail:
            try:
                latency_ms = median_round_trip(lambda: conn.execute("SELECT 1").fetchone())
                row = conn.execute(
                    "SELECT current_setting('server_version'), current_database(), current_user"
                ).fetchone()
            except psycopg.Error as exc:
                raise RungFailed(
                    "query_failed",
                    f"SELECT 1 failed: {redact(str(exc).strip())}",
                    "the server accepted the login but cannot run queries; check its logs",
                ) from None
            assert row is not None
            version, database, user = (str(v) for v in row)
            tls_in_use = bool(conn.pgconn.ssl_in_use)
            result.server_version = f"PostgreSQL {version}"
            result.latency_ms = latency_ms
            result.facts.update({"database": database, "user": user, "tls": tls_in_use})
            detail[0] = (
                f"SELECT 1 ok in {result.latency_ms:.1f} ms; PostgreSQL {version}; "
                f"database {database}; user {user}; TLS {'in use' if tls_in_use else 'not in use'}"
            )
    finally:
        conn.close()
    warn_if_slow(result, "the database")
