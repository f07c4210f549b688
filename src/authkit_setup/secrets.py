"""The one way to register a secret, and the one redactor everything printed passes through.

- `register(*values)`: everything that learns a secret calls it the moment the secret is known:
  connection URLs (their password is found by parsing), API keys, generated passwords, export
  links (`link=True`: the whole URL is the secret). `output.Output` announces each registered
  form to GitHub Actions (`::add-mask::`) before it prints anything.
- `redact(text)`: everything printed, logged, raised or written to `$GITHUB_OUTPUT`/JSON passes
  through it. It masks by *parsing*, so a password is hidden whether or not it was registered:
  the userinfo of any `scheme://` URL (everything between `://` and the last `@` of the URL,
  whatever it holds: a raw `/`, `#` or `?` included), keyword/value conninfo (`password=...`,
  quoted or not), secret-looking query parameters and Redis `AUTH` arguments. Only then does it
  replace registered secrets in free text, and only those long and random enough to be
  unambiguous (`is_strong`): a password `postgres` must not turn `postgresql://` into
  `****ql://`. A weak password is still masked wherever it sits in a URL or conninfo string.
- `mask_url(url)`: one URL, masked the same way; pure (it registers nothing).
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, unquote

MASK = "****"

# Shorter secrets, and words the tool prints itself, are replaced only where parsing finds them.
MIN_FREE_TEXT_LENGTH = 8
COMMON_WORDS = frozenset(
    {
        "password",
        "passw0rd",
        "password1",
        "postgres",
        "postgresql",
        "database",
        "localhost",
        "authkit",
        "authkit-setup",
        "username",
        "required",
        "default",
        "internal",
        "external",
        "available",
        "verify-full",
        "verify-ca",
        "supabase",
        "upstash",
        "changeme",
        "changeit",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "iloveyou",
        "sunshine",
        "letmein1",
        "administrator",
        "rediss://",
        "postgres://",
        "postgresql://",
        "redis://",
        "https://",
    }
)

# scheme:// then everything up to whitespace: a raw space cannot be told from the end of the URL
# in free text (a registered URL is replaced whole first, whatever it holds). No \b before the
# scheme: a URL glued to a word ("DB_postgresql://…") must be masked too.
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>\S*)")
_LONE_USERINFO_IS_PASSWORD = ("redis", "rediss")

# A secret-looking key, then `=` (libpq allows spaces around it), then a value: quoted with
# backslash escapes, or bare. In a URL query (after ? or &) a bare value ends at & or #
# (`_mask_value`); in conninfo it ends at whitespace.
_SECRET_KEY = (
    r"[A-Za-z0-9_.\-]*(?:password|passwd|pwd|token|secret|api_?key|apikey|signature|sig"
    r"|credential)"
)
# libpq quotes with ' only (an unterminated one runs to the end); a terminated "..." is taken
# too, for JSON-ish and YAML-ish text. Whatever is glued to the closing quote is masked too.
_QUOTED = r"'(?:[^'\\]|\\.)*(?:'\S*|\\?$)|\"(?:[^\"\\]|\\.)*\"\S*"
_KEY_VALUE = re.compile(
    rf"(?i)(?P<lead>(?P<sep>[?&;])?\b(?P<key>{_SECRET_KEY}))(?P<eq>\s*=\s*)"
    rf"(?P<value>{_QUOTED}|[^\s]+)",
    re.DOTALL,
)
# Redis AUTH [user] password: the last argument is masked (a placeholder like <password> in a
# server message is not an argument).
_AUTH_ARG = r"(?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s<>][^\s]*)"
_AUTH = re.compile(rf"(?P<cmd>\bAUTH)(?P<args>(?:[ \t]+{_AUTH_ARG}){{1,2}})")

_lock = threading.Lock()
_free_text: set[str] = set()  # strong secrets (and their encoded forms), replaced anywhere
_urls: dict[str, str] = {}  # a registered URL -> its masked form, replaced whole
_announce: list[str] = []  # every registered form, in order, for ::add-mask::
_announced_set: set[str] = set()


def is_strong(secret: str) -> bool:
    """Long and unusual enough to be replaced wherever it appears without hiding ordinary text.

    Judged without surrounding whitespace, which adds no randomness: `"timeout "` is a word the
    tool prints plus a space, and must not mask "timeout expired".
    """
    core = secret.strip()
    return len(core) >= MIN_FREE_TEXT_LENGTH and core.lower() not in COMMON_WORDS


def split_userinfo(url: str) -> tuple[str, str | None, str] | None:
    """(`scheme://`, userinfo or None, rest after the userinfo's `@`), or None if not a URL.

    The userinfo is everything between `://` and the LAST `@`: a password holding a raw `/`,
    `?`, `#` or `@` stays whole (libpq and redis-py would cut it at the first `/`; a user who
    pasted it must still not see it echoed).
    """
    head, sep, rest = url.partition("://")
    if not sep or not head or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", head):
        return None
    at = rest.rfind("@")
    if at == -1:
        return f"{head}{sep}", None, rest
    return f"{head}{sep}", rest[:at], rest[at + 1 :]


def url_password(url: str) -> tuple[str, str] | None:
    """The password of `url` as written and decoded, found by parsing (see `split_userinfo`)."""
    parts = split_userinfo(url)
    if parts is None or parts[1] is None:
        return None
    scheme, userinfo, _ = parts
    assert userinfo is not None
    user, colon, password = userinfo.partition(":")
    if not colon:
        if scheme.lower().removesuffix("://").endswith(_LONE_USERINFO_IS_PASSWORD) and user:
            return user, unquote(user)
        return None
    return (password, unquote(password)) if password else None


def _mask_one_url(scheme: str, rest: str) -> str:
    at = rest.rfind("@")
    if at == -1:
        return scheme + rest
    userinfo, hostpart = rest[:at], rest[at + 1 :]
    user, colon, password = userinfo.partition(":")
    if colon:
        return f"{scheme}{user}:{MASK}@{hostpart}" if password else scheme + rest
    if user and scheme.lower().removesuffix("://").endswith(_LONE_USERINFO_IS_PASSWORD):
        return f"{scheme}{MASK}@{hostpart}"
    return scheme + rest


def mask_url(url: str) -> str:
    """`url` with its password replaced by ****. Pure (it registers nothing).

    A string that starts with `scheme://` is one URL, whatever it holds (a raw space in the
    password included); any other string is text in which every URL is masked.
    """
    parts = split_userinfo(url)
    if parts is not None:
        return _mask_one_url(parts[0], url[len(parts[0]) :])
    return _URL.sub(lambda m: _mask_one_url(m.group("scheme") + "://", m.group("rest")), url)


def mask_link(url: str) -> str:
    """An export link: scheme, host and path kept; userinfo, query and fragment (the token) hidden."""
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        return MASK
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i != -1), default=len(rest))
    address = rest[:cut].rsplit("@", 1)[-1]
    if not address:
        return MASK
    return f"{scheme}://{address}" + (f"?{MASK}" if cut < len(rest) else "")


def _encoded_forms(value: str) -> list[str]:
    forms = [value, quote(value, safe=""), quote(value), unquote(value)]
    return list(dict.fromkeys(forms))


def _add(free: list[str], announce: list[str]) -> None:
    with _lock:
        _free_text.update(f for f in free if is_strong(f))
        for form in announce:
            if form and form not in _announced_set:
                _announced_set.add(form)
                _announce.append(form)


def register(*values: str | None, link: bool = False) -> None:
    """Remember secrets so that `redact` hides them and GitHub Actions masks them.

    A value holding `scheme://` is a connection URL: its password is found by parsing and the
    URL is remembered whole (a URL with no password is not a secret). With `link=True` the whole
    URL is the secret (an export link whose token is in the query). Anything else is a secret
    itself (an API key, a generated password).
    """
    for value in values:
        if not value:
            continue
        if link:
            with _lock:
                _urls[value] = mask_link(value)
            _add([], [value])
            continue
        if split_userinfo(value) is not None:
            query_secrets = [_unquoted(m.group("value")) for m in _KEY_VALUE.finditer(value)]
            _add(query_secrets, query_secrets)
            password = url_password(value)
            if password is None:
                continue
            raw, decoded = password
            with _lock:
                _urls[value] = mask_url(value)
            _add(_encoded_forms(decoded) + [raw], [decoded, raw, value])
            continue
        _add(_encoded_forms(value), [value])


def announcements() -> list[str]:
    """Every registered form, in registration order (for `::add-mask::`)."""
    with _lock:
        return list(_announce)


def forget() -> None:
    """For tests: start from an empty registry."""
    with _lock:
        _free_text.clear()
        _urls.clear()
        _announce.clear()
        _announced_set.clear()


def _unquoted(value: str) -> str:
    """A query or conninfo value as the server reads it (URL query: up to & or #)."""
    if value[:1] in ("'", '"'):
        return re.sub(r"\\(.)", r"\1", value[1:].removesuffix(value[0]))
    return unquote(re.split(r"[&#]", value, maxsplit=1)[0])


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if match.group("sep") in ("?", "&") and not value.startswith(("'", '"')):
        # A URL query: the value ends at & or #; what follows is another parameter.
        end = len(value)
        for stop in "&#":
            i = value.find(stop)
            if i != -1:
                end = min(end, i)
        return f"{match.group('lead')}{match.group('eq')}{MASK}{value[end:]}"
    return f"{match.group('lead')}{match.group('eq')}{MASK}"


def _mask_auth(match: re.Match[str]) -> str:
    """AUTH password, or AUTH user password: the password (the last argument) is masked."""
    args = re.findall(rf"[ \t]+{_AUTH_ARG}", match.group("args"))
    kept = "".join(args[:-1])
    return f"{match.group('cmd')}{kept} {MASK}"


def redact(text: str) -> str:
    """`text` with every password and registered secret masked (see the module docstring)."""
    if not text:
        return text
    with _lock:
        urls = sorted(_urls.items(), key=lambda item: len(item[0]), reverse=True)
        free = sorted(_free_text, key=len, reverse=True)
    for url, masked in urls:
        if url in text:
            text = text.replace(url, masked)
    text = _URL.sub(lambda m: _mask_one_url(m.group("scheme") + "://", m.group("rest")), text)
    text = _KEY_VALUE.sub(_mask_value, text)
    text = _AUTH.sub(_mask_auth, text)
    for secret in free:
        if secret in text:
            text = text.replace(secret, MASK)
    return text
