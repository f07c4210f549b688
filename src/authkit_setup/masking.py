"""Keep secrets out of every byte the tool prints.

Two layers: `mask_url` hides the password in any connection URL, and `redact` scrubs every
registered secret (API keys, generated passwords, passwords read from URLs) from free text such
as driver error messages. `output.py` runs everything it prints through `redact`.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, unquote

MASK = "****"

# scheme://userinfo@host...  userinfo ends at the last "@" before the first "/", "?" or "#"
# after the scheme (RFC 3986 authority). Whitespace and quotes end a URL in free text. No \b
# before the scheme: a URL glued to a word ("DB_postgresql://…", "é…") must be masked too.
_URL_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<rest>[^\s'\"<>]+)")

_lock = threading.Lock()
_secrets: set[str] = set()
_MIN_SECRET_LEN = 4


def register_secret(value: str | None) -> None:
    """Remember a secret so `redact` removes it (and its percent-encoded forms) everywhere."""
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    forms = {value, quote(value, safe=""), quote(value), unquote(value)}
    with _lock:
        _secrets.update(f for f in forms if len(f) >= _MIN_SECRET_LEN)


def forget_secrets() -> None:
    """For tests: start from an empty registry."""
    with _lock:
        _secrets.clear()


def _mask_authority(scheme: str, rest: str) -> str:
    end = len(rest)
    for sep in "/?#":
        i = rest.find(sep)
        if i != -1:
            end = min(end, i)
    authority, tail = rest[:end], rest[end:]
    at = authority.rfind("@")
    if at == -1:
        return rest
    userinfo, hostport = authority[:at], authority[at + 1 :]
    user, colon, password = userinfo.partition(":")
    if not colon:
        # redis://PASSWORD@host is a common form: a lone userinfo is a password for redis URLs.
        lone_is_password = scheme.lower().endswith(("redis://", "rediss://"))
        return f"{MASK}@{hostport}{tail}" if user and lone_is_password else rest
    register_secret(unquote(password))
    return f"{user}:{MASK}@{hostport}{tail}" if password else rest


def mask_url(url: str) -> str:
    """Return `url` with any password replaced by ****. Never raises."""
    return _URL_RE.sub(
        lambda m: m.group("scheme") + _mask_authority(m.group("scheme"), m.group("rest")), url
    )


def _mask_query_secrets(text: str) -> str:
    return re.sub(
        r"(?i)\b(password|passwd|pwd|token|api_key|apikey)=([^&\s]+)", r"\1=" + MASK, text
    )


def redact(text: str) -> str:
    """Mask URL passwords, `password=` pairs and every registered secret in `text`."""
    text = mask_url(text)
    text = _mask_query_secrets(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text
