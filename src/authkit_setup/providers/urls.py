"""Small connection-URL edits the providers share: add query parameters, set the password,
change host or port. Everything else in a URL is kept as the provider returned it."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from authkit_setup.errors import BadResponseError
from authkit_setup.secrets import register


def _host_port(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{host}:{port}" if port is not None else host


def rebuild(
    url: str,
    *,
    password: str | None = None,
    host: str | None = None,
    port: int | None = None,
    query: Mapping[str, str] | None = None,
) -> str:
    """`url` with the given parts replaced; `query` entries are added where missing (a value
    the provider already set wins)."""
    try:
        parts = urlsplit(url)
        old_host, old_port = parts.hostname, parts.port
    except ValueError:
        raise BadResponseError(
            "the provider returned a connection URL that cannot be parsed"
        ) from None
    if not old_host:
        raise BadResponseError("the provider returned a connection URL without a host")
    user = parts.username
    secret = password if password is not None else parts.password
    if password is not None:
        register(password)
    userinfo = ""
    if user is not None:
        userinfo = quote(unquote(user), safe="")
        if secret is not None:
            raw = secret if password is None else quote(password, safe="")
            userinfo += f":{raw}"
        userinfo += "@"
    netloc = userinfo + _host_port(host or old_host, port if port is not None else old_port)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in pairs}
    pairs += [(k, v) for k, v in (query or {}).items() if k not in present]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(pairs), parts.fragment))


def url_password(url: str) -> str | None:
    """The (decoded) password in `url`, or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password is not None else None
