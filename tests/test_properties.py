"""Property-based tests (hypothesis): URL parsing, password masking, .env editing.

- `parse_url`: any URL built from random user / password / host / port / database parses back
  to exactly those parts, and no input at all makes it raise anything but `RungFailed`.
- `mask_url` / `redact`: for any password (with `@:/?#%`, quotes, non-ASCII...), a URL holding
  it percent-encoded never shows it, raw or encoded, masked alone, inside surrounding text or
  inside a driver-style error message printed later.
- `update_env_file`: on random .env files (comments, blank lines, `export`, quoted and
  multi-line values, CRLF) with random updates, every other line is kept byte for byte and
  python-dotenv reads back exactly the updated values.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from dotenv import dotenv_values
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from authkit_setup.diagnostics.model import RungFailed, Target
from authkit_setup.diagnostics.url import parse_url
from authkit_setup.envfile import update_env_file
from authkit_setup.secrets import MASK, forget, is_strong, mask_url, redact, register

# More in a soak run: AUTHKIT_TEST_PROPERTY_EXAMPLES=5000 pytest tests/test_properties.py
EXAMPLES = int(os.environ.get("AUTHKIT_TEST_PROPERTY_EXAMPLES", "300"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Any character a person could type or paste, except lone surrogates (not encodable at all).
any_char = st.characters(blacklist_categories=["Cs"])
# Passwords: weighted towards the characters that break URLs, then anything else.
url_special = st.sampled_from(list("@:/?#%[]&=+ $!'\"\\`~^{}|<>;,."))
password_text = st.text(st.one_of(url_special, any_char), max_size=40)

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
hostname = st.lists(label, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.sampled_from(["::1", "2001:db8::7", "fe80::1:2:3:4", "::ffff:10.0.0.1"])
host = st.one_of(hostname, ipv4, ipv6)


def url_host(value: str) -> str:
    return f"[{value}]" if ":" in value else value


# -- parse_url ------------------------------------------------------------------------------


# The parts both kinds of URL share: user, password, host, port (None: the default).
AUTHORITY = {
    "user": st.text(any_char, min_size=1, max_size=20),
    "password": password_text,
    "host": host,
    "port": st.one_of(st.none(), st.integers(1, 65535)),
}


def url_of(scheme: str, user: str, password: str, host: str, port: int | None, path: str) -> str:
    authority = f"{quote(user, safe='')}:{quote(password, safe='')}@{url_host(host)}"
    return f"{scheme}://{authority}{'' if port is None else f':{port}'}{path}"


@PROPERTY
@given(
    scheme=st.sampled_from(["postgresql", "postgres", "POSTGRESQL"]),
    database=st.text(any_char.filter(lambda c: c != "/"), min_size=1, max_size=20),
    **AUTHORITY,
)
def test_postgres_url_round_trips(
    scheme: str, user: str, password: str, host: str, port: int | None, database: str
) -> None:
    raw = url_of(scheme, user, password, host, port, f"/{quote(database, safe='')}")
    url = parse_url(raw, "postgres")
    assert (url.username, url.password, url.host) == (user, password, host.lower())
    assert (url.port, url.database) == (5432 if port is None else port, database)


@PROPERTY
@given(
    scheme=st.sampled_from(["redis", "rediss"]),
    db=st.one_of(st.none(), st.integers(0, 15)),
    **AUTHORITY,
)
def test_redis_url_round_trips(
    scheme: str, user: str, password: str, host: str, port: int | None, db: int | None
) -> None:
    raw = url_of(scheme, user, password, host, port, "" if db is None else f"/{db}")
    url = parse_url(raw, "redis")
    assert (url.username, url.password, url.host) == (user, password, host.lower())
    assert (url.port, url.db_index) == (6379 if port is None else port, db or 0)


url_like = st.one_of(
    st.text(any_char, max_size=80),
    st.builds(
        lambda scheme, rest: f"{scheme}://{rest}",
        st.sampled_from(["postgresql", "postgres", "redis", "rediss", "http", "", "x+y"]),
        st.text(st.one_of(url_special, any_char), max_size=60),
    ),
    st.builds(
        lambda scheme, userinfo, host, port, path, query: (
            f"{scheme}://{userinfo}@{host}:{port}/{path}?{query}"
        ),
        st.sampled_from(["postgresql", "redis", "rediss"]),
        st.text(st.one_of(url_special, any_char), max_size=20),
        st.one_of(host.map(url_host), st.text(max_size=10)),
        st.one_of(st.integers(-10, 10**6).map(str), st.text(max_size=6)),
        st.text(st.one_of(url_special, any_char), max_size=20),
        st.text(st.one_of(url_special, any_char), max_size=20),
    ),
)


@PROPERTY
@given(raw=url_like, target=st.sampled_from(["postgres", "redis"]))
@example(raw="redis://h/²", target="redis")  # str.isdigit() is true for "²"; int() is not
@example(raw="redis://h/?db=³", target="redis")
@example(raw="postgresql://u:p@h:٣/db", target="postgres")  # an Arabic-Indic digit port
@example(raw="postgresql://u:p@[::1/db", target="postgres")
def test_parse_url_raises_only_rung_failed(raw: str, target: Target) -> None:
    try:
        url = parse_url(raw, target)
    except RungFailed as failure:
        assert failure.rung == "url" and failure.message and failure.hint
        return
    assert url.host and 0 < url.port < 65536


# -- masking --------------------------------------------------------------------------------


def masked_form(scheme: str, user: str, password: str, rest: str) -> str:
    """The URL as it must look after masking: the password replaced by ****."""
    hidden = MASK if password else ""
    return f"{scheme}://{quote(user, safe='')}:{hidden}@{rest}"


url_rest = st.builds(
    lambda h, port, tail: f"{url_host(h)}{port}{tail}",
    host,
    st.sampled_from(["", ":5432", ":6379", ":65535"]),
    st.sampled_from(["", "/authkit", "/0", "/db?sslmode=require", "?x=1", "#frag"]),
)


@PROPERTY
@given(
    scheme=st.sampled_from(["postgresql", "postgres", "redis", "rediss"]),
    user=st.text(any_char, min_size=1, max_size=12),
    password=password_text,
    rest=url_rest,
)
def test_mask_url_hides_any_password(scheme: str, user: str, password: str, rest: str) -> None:
    forget()
    url = f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"
    assert mask_url(url) == masked_form(scheme, user, password, rest)


@PROPERTY
@given(
    scheme=st.sampled_from(["postgresql", "postgres", "redis", "rediss"]),
    user=st.text(any_char, min_size=1, max_size=12),
    password=password_text.filter(bool),
    rest=url_rest,
    before=st.text(any_char, max_size=30),
    after=st.text(any_char, max_size=30),
    lead=st.sampled_from(["", " ", "=", "(", "'", "\n", "x", "_", "7", "é"]),
    glue=st.sampled_from(["", ".", ",", ")", ";", "'", '"', ">", " (x)"]),
)
@example(
    scheme="postgresql",
    user="u",
    password="hunter2!",
    rest="h/db",
    before="",
    after="",
    lead="_",
    glue="",
)  # a URL glued to a word: "DB_postgresql://…"
def test_redact_hides_the_password_inside_any_text(
    scheme: str,
    user: str,
    password: str,
    rest: str,
    before: str,
    after: str,
    lead: str,
    glue: str,
) -> None:
    forget()
    url = f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"
    forms = {password, quote(password, safe=""), quote(password)}
    text = f"{before}{lead}{url}{glue} {after}"
    expected = text.replace(url, masked_form(scheme, user, password, rest))
    # A password that is also a piece of the rest of the message (the host, "****", the
    # surrounding words) cannot be told apart from it; any other must vanish.
    assume(not any(form in expected for form in forms))
    printed = redact(text)
    for form in forms:
        assert form not in printed
    # A driver error printed later, quoting the password itself, once the URL is registered
    # (only a strong password is replaced in free text: a weak one could be an ordinary word).
    register(url)
    if is_strong(password) and password.strip() == password:
        later = redact(f'server said: password "{password}" is wrong; {before}')
        assert password not in later and quote(password, safe="") not in later


@PROPERTY
@given(
    password=password_text.filter(lambda p: len(p) >= 4),
    lead=st.sampled_from(["", " ", "x", "_", "7", "REDIS_URL="]),
    scheme=st.sampled_from(["redis", "rediss", "REDIS"]),
)
def test_redis_lone_password_is_masked(password: str, lead: str, scheme: str) -> None:
    """redis://PASSWORD@host: a lone userinfo is the password."""
    forget()
    encoded = quote(password, safe="")
    printed = redact(f"{lead}{scheme}://{encoded}@red-abc:6379 refused")
    skeleton = f"{lead}{scheme}://****@red-abc:6379 refused"
    assume(encoded not in skeleton and password not in skeleton)
    assert encoded not in printed and password not in printed
    assert f"{scheme}://****@red-abc:6379" in printed


def test_error_message_with_url_is_masked() -> None:
    secret = "p@ss:w/rd?#%é"
    url = f"postgresql://app:{quote(secret, safe='')}@db.example.com:5432/prod"
    printed = redact(f'could not connect to "{url}": timeout expired')
    assert secret not in printed and quote(secret, safe="") not in printed
    assert "postgresql://app:****@db.example.com:5432/prod" in printed


# -- .env editing ---------------------------------------------------------------------------

KEYS = ["DATABASE_URL", "REDIS_URL", "DIRECT_URL", "APP_NAME", "SECRET_KEY", "PORT", "my.key"]
EOLS = [b"\n", b"\r\n"]


@dataclass(frozen=True)
class Entry:
    """One logical line of a .env file (an assignment may span lines)."""

    key: str | None
    raw: bytes  # with its line ending(s)


unquoted = st.from_regex(r"[A-Za-z0-9_./:@%+,~-]{0,20}", fullmatch=True)
single_quoted_body = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="'\\$"), max_size=20
)
double_quoted_body = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters='"\\$'), max_size=20
)
comment_text = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30)


@st.composite
def entries(draw: st.DrawFn, eol: bytes) -> Entry:
    kind = draw(
        st.sampled_from(
            [
                "comment",
                "blank",
                "plain",
                "export",
                "indented",
                "single",
                "double",
                "multi",
                "inline",
            ]
        )
    )
    if kind == "comment":
        text = draw(st.one_of(comment_text, st.sampled_from(KEYS).map(lambda k: f" {k}=old")))
        return Entry(None, f"#{text}".encode() + eol)
    if kind == "blank":
        return Entry(None, draw(st.sampled_from([b"", b"  ", b"\t"])) + eol)
    key = draw(st.sampled_from(KEYS))
    if kind == "plain":
        body = draw(unquoted)
    elif kind == "export":
        return Entry(key, f"export {key}={draw(unquoted)}".encode() + eol)
    elif kind == "indented":
        return Entry(key, f"  {key}={draw(unquoted)}".encode() + eol)
    elif kind == "single":
        body = f"'{draw(single_quoted_body)}'"
    elif kind == "double":
        body = f'"{draw(double_quoted_body)}"'
    elif kind == "multi":
        first, second = draw(double_quoted_body), draw(double_quoted_body)
        # The continuation line looks like an assignment of another key on purpose.
        return Entry(key, f'{key}="{first}'.encode() + eol + f' X={second}"'.encode() + eol)
    else:
        body = f"{draw(unquoted)} # note"
    return Entry(key, f"{key}={body}".encode() + eol)


@st.composite
def env_files(draw: st.DrawFn) -> tuple[list[Entry], bytes]:
    eol = draw(st.sampled_from(EOLS))
    items = draw(st.lists(entries(eol), max_size=12))
    cut_last_eol = draw(st.booleans())  # a last line without its line ending
    if items and cut_last_eol:
        items[-1] = Entry(items[-1].key, items[-1].raw.rstrip(b"\r\n"))
    return items, eol


update_values = st.text(
    st.one_of(st.sampled_from(list("'\"\\#= $`{}")), st.characters(blacklist_categories=["Cs"])),
    max_size=30,
).filter(lambda v: "\n" not in v and "\r" not in v)


def read_back(data: bytes) -> dict[str, str | None]:
    return dict(dotenv_values(stream=io.StringIO(data.decode("utf-8"))))


@PROPERTY
@given(
    file=env_files(),
    updates=st.dictionaries(
        st.sampled_from(KEYS + ["NEW_KEY", "OTHER"]), update_values, max_size=4
    ),
)
@example(file=([Entry("SECRET_KEY", b"SECRET_KEY=x\n")], b"\n"), updates={"SECRET_KEY": "a\\"})
@example(file=([Entry("SECRET_KEY", b"SECRET_KEY=x\n")], b"\n"), updates={"SECRET_KEY": "a\\\\b"})
@example(
    file=([Entry("APP_NAME", b'APP_NAME="one\n X=two"\n'), Entry(None, b"# end\n")], b"\n"),
    updates={"APP_NAME": "new"},
)
def test_update_env_file_keeps_every_other_line(
    file: tuple[list[Entry], bytes], updates: dict[str, str]
) -> None:
    items, _ = file
    # python-dotenv expands ${NAME} in every value, however quoted: no spelling survives it.
    assume(not any(re.search(r"\$\{[^}:]*(:-[^}]*)?\}", v) for v in updates.values()))
    original = b"".join(e.raw for e in items)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ".env"
        path.write_bytes(original)
        actions = update_env_file(path, updates)
        result = path.read_bytes()

    # python-dotenv reads back exactly the updated values, and every other value as before.
    assert read_back(result) == {**read_back(original), **updates}
    before = read_back(original)
    assert actions == {
        k: "created"
        if k not in before
        else "unchanged"
        if before[k] == v and sum(e.key == k for e in items) == 1
        else "updated"
        for k, v in updates.items()
    }

    # Every line that is not an assignment of an updated key is kept, byte for byte, in order.
    kept = b"".join(e.raw for e in items if e.key not in updates)
    pattern = re.compile(
        rb"^[ \t]*(export[ \t]+)?(" + b"|".join(re.escape(k.encode()) for k in updates) + rb")="
    )
    lines = result.splitlines(keepends=True)
    rest = b"".join(line for line in lines if not (updates and pattern.match(line)))
    assert rest.rstrip(b"\r\n") == kept.rstrip(b"\r\n")
    assert len(lines) == len(kept.splitlines()) + len(updates)


def test_update_env_file_examples_are_readable_by_dotenv(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"# keep\r\nexport DATABASE_URL='old'\r\nKEEP=1\r\n")
    update_env_file(path, {"DATABASE_URL": 'it\'s \\ "q"', "REDIS_URL": "rediss://u:p@h:6379"})
    assert path.read_bytes().startswith(b"# keep\r\nexport DATABASE_URL=")
    assert dotenv_values(path) == {
        "DATABASE_URL": 'it\'s \\ "q"',
        "KEEP": "1",
        "REDIS_URL": "rediss://u:p@h:6379",
    }


# -- parse_url never echoes a password, raw or encoded ----------------------------------------

printable_password = st.text(
    st.sampled_from([chr(c) for c in range(0x21, 0x7F)]), min_size=8, max_size=30
).filter(is_strong)


@PROPERTY
@given(
    secret=printable_password,
    encoded=st.booleans(),
    target=st.sampled_from(["postgres", "redis"]),
)
@example(secret="Se/cret99", encoded=False, target="postgres")
def test_parse_url_errors_never_show_the_password(secret: str, encoded: bool, target: str) -> None:
    """A password pasted raw (with / ? # @ …) or encoded: parsing either succeeds or fails at
    the url rung, and no message, hint or masked URL holds any form of the password."""
    forget()
    scheme = "postgresql" if target == "postgres" else "redis"
    written = quote(secret, safe="") if encoded else secret
    raw = f"{scheme}://app:{written}@db.example.com:5432/authkit"
    try:
        url = parse_url(raw, "postgres" if target == "postgres" else "redis")
    except RungFailed as failure:
        shown = redact(f"{failure.message} {failure.hint}")
    else:
        shown = redact(f"{url.masked} {url.host} {url.database}")
    for form in {secret, quote(secret, safe=""), quote(secret)}:
        assert form not in shown
