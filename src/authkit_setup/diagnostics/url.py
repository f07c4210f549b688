"""Rung 0: parse a DATABASE_URL / REDIS_URL and lint it for the known gotchas."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from authkit_setup.diagnostics.model import RungFailed, Target
from authkit_setup.kinds import Kind
from authkit_setup.secrets import is_strong, mask_url, register, split_userinfo

POSTGRES_SCHEMES = ("postgres", "postgresql")
REDIS_SCHEMES = ("redis", "rediss")
TLS_SSLMODES = ("require", "verify-ca", "verify-full")
VALID_SSLMODES = ("disable", "allow", "prefer", *TLS_SSLMODES)

# Render internal hosts are the bare resource id: dpg-<20>-a (Postgres) or red-<20> (Key Value).
RENDER_INTERNAL_HOST = re.compile(r"^(dpg-[a-z0-9]+(-[a-z])?|red-[a-z0-9]+)$")
RENDER_EXTERNAL_PG = re.compile(r"\.[a-z]+-postgres\.render\.com$")
UPSTASH_HOST = re.compile(r"\.upstash\.io$")
NEON_HOST = re.compile(r"\.neon\.tech$")
SUPABASE_DIRECT = re.compile(r"^db\.[a-z]+\.supabase\.co$")
SUPABASE_POOLER = re.compile(r"\.pooler\.supabase\.com$")


@dataclass
class ConnectionUrl:
    target: Target
    raw: str
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    database: str | None  # Postgres database name
    db_index: int  # Redis database index
    query: dict[str, str] = field(default_factory=dict)
    stripped_params: list[str] = field(default_factory=list)

    @property
    def masked(self) -> str:
        return mask_url(self.raw)

    @property
    def tls(self) -> bool:
        if self.target == "redis":
            return self.scheme == "rediss"
        return self.sslmode in TLS_SSLMODES

    @property
    def sslmode(self) -> str:
        return self.query.get("sslmode", os.environ.get("PGSSLMODE", "prefer"))

    @property
    def is_render_internal(self) -> bool:
        return bool(RENDER_INTERNAL_HOST.match(self.host))

    def libpq_query(self) -> dict[str, str]:
        """Query parameters libpq accepts (pgbouncer=true and friends removed)."""
        return {k: v for k, v in self.query.items() if k not in self.stripped_params}


def _shown(value: str, limit: int = 60) -> str:
    """repr() of a piece of the URL, cut short: an error must stay one readable line."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _is_number(text: str) -> bool:
    # str.isdigit() is also true for "²" and "٣", which int() refuses.
    return text.isascii() and text.isdigit()


def _bad(message: str, hint: str) -> RungFailed:
    return RungFailed("url_invalid", message, hint, rung="url")


def parse_url(raw: str, target: Target) -> ConnectionUrl:
    """Parse `raw` for `target` or raise RungFailed at the url rung."""
    raw = raw.strip()
    name = Kind.checked_as(target).env_var
    expected = (
        "postgresql://user:password@host:5432/database"
        if target == "postgres"
        else "redis://[:password@]host:6379[/0]"
    )
    if not raw:
        raise _bad(f"{name} is empty", f"set {name} to a URL like {expected}")
    if "://" not in raw:
        raise _bad(f"{name} is not a URL (no scheme://)", f"use the form {expected}")
    register(raw)  # before anything below can quote a piece of it
    userinfo = (split_userinfo(raw) or ("", None, ""))[1]
    if userinfo is not None and any(c in userinfo for c in "/?#"):
        # Drivers cut the host at the first / ? #, so they would read part of the password as
        # the host or port, and echo it in their errors.
        authority = re.split(r"[/?#]", raw.partition("://")[2], maxsplit=1)[0]
        if "@" in authority:
            # `u:pw@host/db?application_name=api@prod`: an @ after the host. It cannot be told
            # from a password holding / ? # and @ (the reading that never shows a password).
            raise _bad(
                f"{name} has an '@' after its host (in a path or query value?): read as part of "
                "the password, everything before it is masked",
                "percent-encode an @ in a query value as %40 (and / ? # @ in a password)",
            )
        raise _bad(
            f"{name} has a '/', '?' or '#' before its last '@': a password with these characters "
            "must be percent-encoded",
            "percent-encode the password: / is %2F, ? is %3F, # is %23, @ is %40",
        )
    try:
        parts = urlsplit(raw)
    except ValueError as exc:
        raise _bad(
            f"{name} cannot be parsed: {str(exc)[:100]}", f"use the form {expected}"
        ) from None
    scheme = parts.scheme.lower()
    schemes = POSTGRES_SCHEMES if target == "postgres" else REDIS_SCHEMES
    if scheme not in schemes:
        other = (
            "REDIS_URL"
            if scheme in REDIS_SCHEMES
            else "DATABASE_URL"
            if scheme in POSTGRES_SCHEMES
            else None
        )
        hint = (
            f"that looks like a {other}" if other and other != name else f"use the form {expected}"
        )
        raise _bad(f"{name} has scheme {_shown(scheme)}; expected {' or '.join(schemes)}", hint)
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise _bad(
            f"{name} has an invalid port: {str(exc)[:100]}", f"use a numeric port, e.g. {expected}"
        ) from None
    if not host:
        raise _bad(f"{name} has no host", f"use the form {expected}")
    try:
        host.encode("idna")
    except UnicodeError:
        raise _bad(
            f"{name} host {_shown(host)} is not a valid host name", f"use the form {expected}"
        ) from None
    if port == 0:
        raise _bad(f"{name} has port 0", f"use the server's port, e.g. {expected}")
    try:
        # Drivers decode the escapes as UTF-8 and fail on anything else (psycopg raises a bare
        # UnicodeDecodeError): say so here, at the url rung.
        password = unquote(parts.password, errors="strict") if parts.password else parts.password
        username = unquote(parts.username, errors="strict") if parts.username else parts.username
    except UnicodeDecodeError:
        raise _bad(
            f"{name}'s user name or password has %-escapes that are not UTF-8",
            "percent-encode the UTF-8 bytes of each character (é is %C3%A9)",
        ) from None
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    except ValueError:
        raise _bad(f"{name} has a malformed query string", "use key=value&key=value") from None

    if target == "postgres":
        path = unquote(parts.path.lstrip("/"))
        if not path:
            raise _bad(
                "DATABASE_URL names no database (nothing after the last /)",
                "append the database name, e.g. .../authkit",
            )
        if "/" in path:
            raise _bad(
                f"DATABASE_URL database {_shown(path)} contains '/'",
                "the path must be just the database name",
            )
        sslmode = query.get("sslmode")
        if sslmode is not None and sslmode not in VALID_SSLMODES:
            raise _bad(
                f"DATABASE_URL has sslmode={_shown(sslmode)}",
                f"use one of {', '.join(VALID_SSLMODES)} (sslmode=require for managed databases)",
            )
        url = ConnectionUrl(
            target, raw, scheme, host, port or 5432, username, password, path, 0, query
        )
    else:
        path = parts.path.lstrip("/")
        db_index = 0
        if path:
            if not _is_number(path):
                raise _bad(
                    f"REDIS_URL database {_shown(path)} is not a number", "use /0 (or leave it out)"
                )
            db_index = int(path)
        if "db" in query:
            if not _is_number(query["db"]):
                raise _bad(
                    f"REDIS_URL db={_shown(query['db'])} is not a number",
                    "use db=0 (or leave it out)",
                )
            db_index = int(query["db"])
        # redis://PASSWORD@host: a lone userinfo is the password (redis-cli and most clients).
        if username and password is None:
            password, username = username, None
        url = ConnectionUrl(
            target, raw, scheme, host, port or 6379, username, password, None, db_index, query
        )
    return url


def lint(url: ConnectionUrl) -> list[str]:
    """Warnings for the known gotchas (not failures). May mark params to strip for libpq."""
    warnings: list[str] = []
    on_render = os.environ.get("RENDER") == "true"
    if url.is_render_internal and not on_render:
        warnings.append(
            f"{url.host} is a Render internal host: it only resolves inside Render's private "
            "network, from a service in the same region and workspace; from here, use the "
            "external URL (or run `authkit-setup check --service NAME`)"
        )
    if url.target == "postgres":
        if RENDER_EXTERNAL_PG.search(url.host) and url.sslmode not in TLS_SSLMODES:
            warnings.append(
                "Render external database URL without sslmode=require: Render requires TLS from "
                "outside; append ?sslmode=require"
            )
        pgbouncer = url.query.get("pgbouncer")
        if url.port == 6543 and pgbouncer != "true":
            warnings.append(
                "port 6543 is a transaction pooler: append ?pgbouncer=true so Prisma stops using "
                "named prepared statements (and set DIRECT_URL for migrations)"
            )
        if pgbouncer is not None:
            url.stripped_params.append("pgbouncer")
            warnings.append(
                "pgbouncer=true is right for Prisma but libpq rejects it: stripped for this check only"
            )
        for prisma_only in (
            "connection_limit",
            "pool_timeout",
            "schema",
            "socket_timeout",
            "statement_cache_size",
        ):
            if prisma_only in url.query:
                url.stripped_params.append(prisma_only)
        if NEON_HOST.search(url.host) and url.sslmode not in TLS_SSLMODES:
            warnings.append("Neon requires TLS: append ?sslmode=require")
        warnings.extend(_provider_postgres_lint(url))
    else:
        if UPSTASH_HOST.search(url.host) and url.scheme == "redis":
            warnings.append("Upstash only accepts TLS: use rediss:// instead of redis://")
    return warnings


def weak_password_warning(url: ConnectionUrl) -> list[str]:
    """A warning when the URL's password is short or a common word (masked in URLs only)."""
    if not url.password or is_strong(url.password):
        return []
    name = Kind.checked_as(url.target).env_var
    return [
        f"the password in {name} is weak (shorter than 8 characters or a common word): it is "
        "masked inside URLs, but cannot be told from ordinary text elsewhere; use a long "
        "random password"
    ]


def neon_endpoint_id(host: str) -> str | None:
    """`ep-cool-name-123456` from a Neon host (pooled or not), else None."""
    label = host.split(".", 1)[0]
    if not NEON_HOST.search(host) or not label.startswith("ep-"):
        return None
    return label.removesuffix("-pooler")


def _provider_postgres_lint(url: ConnectionUrl) -> list[str]:
    """Neon and Supabase gotchas (facts: shared/reference/neon-supabase-upstash.md)."""
    warnings: list[str] = []
    neon = bool(NEON_HOST.search(url.host))
    if neon and url.query.get("sslsni") == "0":
        warnings.append(
            'sslsni=0 turns off TLS SNI, which Neon needs to route the connection ("Endpoint ID '
            'is not specified"): remove sslsni=0'
        )
    if "sslnegotiation" in url.query:
        warnings.append(
            f"sslnegotiation={url.query['sslnegotiation']} needs libpq 17 or newer in every "
            "client that reads this URL (older ones reject the parameter)"
            + ("; Neon routes by SNI, which both modes send" if neon else "")
        )
    if neon and url.host.split(".", 1)[0].endswith("-pooler"):
        if url.query.get("pgbouncer") != "true":
            warnings.append(
                "Neon pooled host (-pooler, PgBouncer in transaction mode): for Prisma append "
                "pgbouncer=true and point DIRECT_URL at the host without -pooler for migrations"
            )
    if SUPABASE_DIRECT.match(url.host):
        warnings.append(
            f"{url.host} is Supabase's direct host, IPv6-only unless the project has the IPv4 "
            "add-on: from IPv4-only networks use the Supavisor pooler "
            "(aws-N-<region>.pooler.supabase.com; 6543 transaction, 5432 session)"
        )
    if SUPABASE_POOLER.search(url.host) and "." not in (url.username or ""):
        warnings.append(
            'the Supavisor pooler needs the user postgres.<project-ref> ("Tenant or user not '
            'found" otherwise): copy the URL from the Supabase Connect panel'
        )
    return warnings


def build_libpq_url(url: ConnectionUrl) -> str:
    """The URL with Prisma-only parameters removed, for psycopg."""
    parts = urlsplit(url.raw)
    return parts._replace(query=urlencode(url.libpq_query())).geturl()
