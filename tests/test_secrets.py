"""The secrets module: one way to register a secret, one redactor, masking by parsing.

Property tests generate passwords from every printable ASCII character, raw and percent-encoded,
and put them in URLs, libpq conninfo strings (quoted by psycopg itself) and error messages (raised
by the real drivers); each pins the exact masked text, or that no form of the password is left.
"""

from __future__ import annotations

import io
import string
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from authkit_setup.output import Output
from authkit_setup.secrets import (
    MASK,
    announcements,
    forget,
    is_strong,
    mask_link,
    mask_url,
    redact,
    register,
    split_userinfo,
)
from tests.conftest import PgServer, RedisServer
from tests.helpers import run_cli

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
printable = st.sampled_from(string.printable.strip() + " ")
password = st.text(printable, min_size=1, max_size=30)
no_space_password = st.text(st.sampled_from(string.printable.strip()), min_size=1, max_size=30)
SCHEMES = ["postgresql", "postgres", "redis", "rediss"]
HOSTS = ["db.example.com:5432/app", "127.0.0.1:6379/0", "[::1]:5432/app?sslmode=require", "h"]


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret)}


def as_written(secret: str, encoded: bool) -> str:
    """`secret` as a URL holds it: percent-encoded, or pasted raw."""
    return quote(secret, safe="") if encoded else secret


# Where a password stands in a URL: `{scheme}://app:{password}@{rest}`, encoded or raw.
AROUND = {
    "scheme": st.sampled_from(SCHEMES),
    "rest": st.sampled_from(HOSTS),
    "encoded": st.booleans(),
}


# -- URLs ---------------------------------------------------------------------------------


@PROPERTY
@given(secret=password, **AROUND)
@example(scheme="postgresql", secret="Se/cret99", rest="host/db", encoded=False)
@example(scheme="postgresql", secret="a#b?c/d@e f", rest="h:5432/db", encoded=False)
@example(scheme="postgresql", secret="timeout ", rest="db.example.com:5432/app", encoded=False)
def test_a_url_password_is_masked_whatever_it_holds(
    scheme: str, secret: str, rest: str, encoded: bool
) -> None:
    """Everything between :// and the last @ is userinfo: raw /, ?, #, @ and spaces included."""
    forget()  # each example on its own: an earlier example's secret must not mask this text
    url = f"{scheme}://app:{as_written(secret, encoded)}@{rest}"
    assert mask_url(url) == f"{scheme}://app:{MASK}@{rest}"
    # Once registered, the whole URL is replaced wherever it is quoted, spaces and all.
    register(url)
    text = f'could not connect to "{url}": timeout expired\n{url}'
    masked = f"{scheme}://app:{MASK}@{rest}"
    expected = f'could not connect to "{masked}": timeout expired\n{masked}'
    # A strong password that is also a piece of the rest of the message (a word around it, the
    # host) is masked there too: it cannot be told apart. Hypothesis draws string literals from
    # the source, so it does find such passwords ("timeout expired").
    assume(not (is_strong(secret) and secret in expected))
    assert redact(text) == expected


@PROPERTY
@given(
    secret=no_space_password,
    **AROUND,
    before=st.sampled_from(["", "error: ", "DATABASE_URL=", "x", "(", "'", "url is "]),
    after=st.sampled_from(["", " refused", ": timeout", "\nnext line"]),
)
def test_an_unregistered_url_in_free_text_is_masked(
    scheme: str, secret: str, rest: str, encoded: bool, before: str, after: str
) -> None:
    """A URL nobody registered (a driver echoing it) is masked by parsing alone."""
    text = f"{before}{scheme}://app:{as_written(secret, encoded)}@{rest}{after}"
    assert redact(text) == f"{before}{scheme}://app:{MASK}@{rest}{after}"


@PROPERTY
@given(secret=no_space_password, scheme=st.sampled_from(["redis", "rediss"]))
def test_a_lone_redis_userinfo_is_the_password(secret: str, scheme: str) -> None:
    assume(":" not in secret)
    text = f"Error connecting to {scheme}://{secret}@cache.example.com:6379/0 refused"
    assert redact(text) == f"Error connecting to {scheme}://{MASK}@cache.example.com:6379/0 refused"


# -- conninfo, query parameters, AUTH ------------------------------------------------------


@PROPERTY
@given(secret=password)
@example(secret="a b")
@example(secret="it's x")
@example(secret="back\\slash' q")
def test_a_conninfo_password_is_masked_quoted_or_not(secret: str) -> None:
    """The conninfo string is built by psycopg (libpq's quoting rules) and read back by it."""
    conninfo = make_conninfo(host="db.example.com", user="app", password=secret, dbname="authkit")
    assert conninfo_to_dict(conninfo)["password"] == secret
    expected = make_conninfo(host="db.example.com", user="app", password=MASK, dbname="authkit")
    assert redact(conninfo) == expected
    assert redact(f"connection to {conninfo} failed") == f"connection to {expected} failed"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("host=h password='a b'glued dbname=x", f"host=h password={MASK} dbname=x"),
        ('{"password": 1} password="two words" next', f'{{"password": 1}} password={MASK} next'),
        ("password = 'unterminated and more", f"password = {MASK}"),
        ('token="x y"glued next', f"token={MASK} next"),
        ("PGPASSWORD=s3cr3t psql", f"PGPASSWORD={MASK} psql"),
        ("sslpassword='k\\'ey' x", f"sslpassword={MASK} x"),
    ],
)
def test_conninfo_values_outside_libpq_quoting(text: str, masked: str) -> None:
    assert redact(text) == masked


@PROPERTY
@given(
    secret=st.text(st.sampled_from(string.ascii_letters + string.digits + "-_.~!$*"), min_size=1)
)
def test_secret_query_parameters_are_masked(secret: str) -> None:
    url = f"https://h.example/x.dump?X-Amz-Signature={secret}&part=2#f"
    assert redact(url) == f"https://h.example/x.dump?X-Amz-Signature={MASK}&part=2#f"
    dsn = f"postgresql://h/db?user=app&password={quote(secret)}&sslmode=require"
    assert redact(dsn) == f"postgresql://h/db?user=app&password={MASK}&sslmode=require"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("AUTH s3cret-pass", f"AUTH {MASK}"),
        ("AUTH default s3cret-pass", f"AUTH default {MASK}"),
        ('AUTH app "two words"', f"AUTH app {MASK}"),
        ("AUTH <password> called without any password configured", None),
        ("NOAUTH Authentication required.", None),
        ("Client sent AUTH, but no password is set", None),
    ],
)
def test_redis_auth_arguments_are_masked(text: str, masked: str | None) -> None:
    assert redact(text) == (text if masked is None else masked)


# -- free text: strong registered secrets only, no ordinary word ----------------------------


@pytest.mark.parametrize("weak", ["postgres", "password", "hunter2", "redis", "pw", "database"])
def test_a_weak_password_masks_urls_but_no_ordinary_word(weak: str) -> None:
    url = f"postgresql://{weak}:{weak}@localhost:5432/{weak}"
    register(url, weak, "postgresql://user:password@host:5432/database")
    assert not is_strong(weak)
    hint = (
        "check the port: postgres usually listens on 5432; check the user name or password; "
        "use postgresql://user@host:5432/database or redis://host:6379"
    )
    assert redact(hint) == hint
    assert (
        redact(f"cannot reach {url}")
        == f"cannot reach postgresql://{weak}:{MASK}@localhost:5432/{weak}"
    )


@pytest.mark.parametrize("padded", ["timeout ", " expired", "  secret  "])
def test_whitespace_around_a_short_word_does_not_make_it_strong(padded: str) -> None:
    """CI's hypothesis run found 'timeout ': 8 characters, but a word the tool prints."""
    assert not is_strong(padded)
    register(f"postgresql://app:{quote(padded)}@h:5432/app")
    assert redact("connection timeout expired; secret") == "connection timeout expired; secret"


@PROPERTY
@given(secret=st.text(printable, min_size=8, max_size=30).filter(is_strong))
def test_a_strong_registered_secret_is_masked_in_any_free_text(secret: str) -> None:
    register(secret)
    for form in forms(secret):
        printed = redact(f"server said: {form!s} is wrong ({form})")
        assert secret not in printed and quote(secret, safe="") not in printed


def test_a_url_without_a_password_is_not_a_secret() -> None:
    register("redis://red-abc:6379", "postgresql://app@db.example.com/app", None, "")
    assert announcements() == []
    assert redact("redis://red-abc:6379 and app") == "redis://red-abc:6379 and app"


def test_export_links_are_registered_whole() -> None:
    link = "https://exports.example/db/2026.dir.tar.gz?token=abc&expires=1"
    register(link, link=True)
    assert (
        redact(f"download {link} now")
        == "download https://exports.example/db/2026.dir.tar.gz?**** now"
    )
    assert mask_link("https://u:p@h.example/p#frag") == "https://h.example/p?****"


@pytest.mark.parametrize(
    ("link", "shown"),
    [
        ("https://exports.example/db.dump", "https://exports.example/db.dump"),
        ("HTTPS://exports.example/db.dump?token=t1", "HTTPS://exports.example/db.dump?****"),
        ("https://h.example/p?next=https://other.example/q", "https://h.example/p?****"),
        ("https://h.example/p?a=1?b=2", "https://h.example/p?****"),
        ("https://h.example/p#one#two", "https://h.example/p?****"),
        ("https://u:p@ss@h.example/p?t=1", "https://h.example/p?****"),
        ("https://@?token=t1", MASK),
        ("1https://h.example/p?token=t1", MASK),
        ("no link at all", MASK),
    ],
)
def test_mask_link_keeps_only_scheme_host_and_path(link: str, shown: str) -> None:
    """An export link's token sits in its query or fragment: everything after the first ? or #
    goes, and so does any userinfo (up to the last @)."""
    assert mask_link(link) == shown


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("postgresql://app:pa://ss@h:5432/db", ("postgresql://", "app:pa://ss", "h:5432/db")),
        ("Postgres://app:p@ss@h/db", ("Postgres://", "app:p@ss", "h/db")),
        ("redis://h:6379/0", ("redis://", None, "h:6379/0")),
        ("1postgresql://app:pw@h/db", None),
        ("://app:pw@h/db", None),
        ("no url here", None),
    ],
)
def test_split_userinfo_cuts_at_the_first_scheme_and_the_last_at(
    url: str, parts: tuple[str, str | None, str] | None
) -> None:
    assert split_userinfo(url) == parts


def test_every_value_given_at_once_is_registered() -> None:
    """An empty value or a link among the values does not end the registration early."""
    register(None, "", "first-long-api-key-1", "second-long-api-key-2")
    register(
        "https://exports.example/a.dump?token=tok-a",
        "https://exports.example/b.dump?token=tok-b",
        link=True,
    )
    assert announcements() == [
        "first-long-api-key-1",
        "second-long-api-key-2",
        "https://exports.example/a.dump?token=tok-a",
        "https://exports.example/b.dump?token=tok-b",
    ]
    assert redact("b: https://exports.example/b.dump?token=tok-b") == (
        "b: https://exports.example/b.dump?****"
    )


def test_a_url_with_an_empty_password_is_not_a_secret() -> None:
    register("postgresql://app:@db.example.com/app")
    assert announcements() == []


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        (
            "postgresql://db.example.com/app?user=app&password=p%40ss-word-123&sslmode=require",
            "p@ss-word-123",
        ),
        ("postgresql://db.example.com/app?sslpassword=frag-secret-77#f", "frag-secret-77"),
        ("postgresql://db.example.com/app?sslpassword='it\\'s-a-secret'", "it's-a-secret"),
        ('redis://cache.example.com:6379/0?password="dq\\"secret-42"', 'dq"secret-42'),
    ],
)
def test_a_secret_query_parameter_is_registered_as_the_server_reads_it(
    url: str, secret: str
) -> None:
    """Percent-decoded, up to the next & or #, or unquoted: so a server echoing the value it
    received has it masked in any free text, and GitHub Actions masks it."""
    register(url)
    assert announcements() == [secret]
    assert redact(f"auth failed for {secret!s}.") == "auth failed for ****."


@pytest.mark.parametrize("quote_mark", ["'", '"'])
def test_a_quoted_query_value_is_masked_whole(quote_mark: str) -> None:
    """Quoted, the value runs to the closing quote: an & or # inside it is part of it."""
    text = f"https://h.example/x?password={quote_mark}s3c&ret#x{quote_mark} sent"
    assert redact(text) == f"https://h.example/x?password={MASK} sent"


def test_a_query_secret_ends_at_the_next_parameter() -> None:
    text = "https://h.example/x?token=abc123&part=2&of=3"
    assert redact(text) == f"https://h.example/x?token={MASK}&part=2&of=3"


def test_a_registered_url_inside_a_longer_one_does_not_split_it() -> None:
    """The longest registered URL is replaced first: a redirect link that carries an export link
    is masked whole, not around the inner link."""
    inner = "https://exports.example/db.dump?token=abc123"
    outer = f"https://app.example/go?to={inner}"
    register(inner, outer, link=True)
    assert redact(f"open {outer} now") == "open https://app.example/go?**** now"


# -- drivers' own error messages ------------------------------------------------------------


def registered_url(template: str, secret: str, encoded: bool) -> str:
    """`template` with `secret` as its {password}, raw or percent-encoded, registered as the
    tool registers every URL it is given."""
    url = template.format(password=as_written(secret, encoded))
    register(url)
    return url


@settings(max_examples=60, deadline=None)
@given(secret=no_space_password.filter(is_strong), encoded=st.booleans())
def test_psycopg_parse_errors_never_show_the_password(secret: str, encoded: bool) -> None:
    """libpq cuts a raw password at '/', '?' or '#' and complains about the rest."""
    url = registered_url(
        "postgresql://app:{password}@127.0.0.1:1/app?connect_timeout=1", secret, encoded
    )
    try:
        psycopg.connect(url, connect_timeout=1).close()
    except (psycopg.Error, UnicodeDecodeError) as exc:  # %80 etc.: libpq's bytes, not UTF-8
        printed = redact(str(exc))
    else:  # pragma: no cover - port 1 never accepts
        raise AssertionError("connected to port 1")
    for form in forms(secret):
        assert form not in printed


@settings(max_examples=60, deadline=None)
@given(secret=no_space_password.filter(is_strong), encoded=st.booleans())
def test_redis_py_errors_never_show_the_password(secret: str, encoded: bool) -> None:
    url = registered_url("redis://app:{password}@127.0.0.1:1/0", secret, encoded)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except (redis.RedisError, ValueError, TypeError) as exc:
        # TypeError: redis-py reads a raw '?' in the password as the query ('000000?=' passes
        # an option named ''); the tool's url rung refuses such a URL before redis-py sees it.
        printed = redact(f"{type(exc).__name__}: {exc}")
    else:  # pragma: no cover - port 1 never accepts
        raise AssertionError("connected to port 1")
    for form in forms(secret):
        assert form not in printed


# -- GitHub Actions: the registry feeds ::add-mask:: ----------------------------------------


def test_add_mask_escapes_and_splits_lines() -> None:
    err = io.StringIO()
    out = Output(stdout=io.StringIO(), stderr=err, github_actions=True)
    register("p%0Aw%25d\nsecond-line")
    register("p%0Aw%25d\nsecond-line")  # once only
    out.info("hello")
    out.info("again")
    assert err.getvalue() == ("::add-mask::p%250Aw%2525d\n::add-mask::second-line\nhello\nagain\n")
    quiet = io.StringIO()
    Output(stdout=io.StringIO(), stderr=quiet, github_actions=False).info("hello")
    assert quiet.getvalue() == "hello\n"


def test_registered_urls_announce_their_credentials_only() -> None:
    err = io.StringIO()
    out = Output(stdout=io.StringIO(), stderr=err, github_actions=True)
    register(
        "postgresql://u:p%40ss@db.example.com/app",
        "redis://red-abc:6379",
        "redis://tokenonly@cache.example.com:6379",
        None,
    )
    out.flush_masks()
    assert err.getvalue().splitlines() == [
        "::add-mask::p@ss",
        "::add-mask::p%2540ss",
        "::add-mask::postgresql://u:p%2540ss@db.example.com/app",
        "::add-mask::tokenonly",
        "::add-mask::redis://tokenonly@cache.example.com:6379",
    ]


def test_forget_empties_the_registry() -> None:
    register("a-long-random-secret-value")
    forget()
    assert (
        announcements() == []
        and redact("a-long-random-secret-value") == "a-long-random-secret-value"
    )


# -- `check` end to end, against the real servers -------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["Se/cret99", "pQs?sZ#wRd/xYz", "aQ1/bZ2@cW3#dV4?eK5", "whQte spZce/anX mKre"],
)
def test_check_never_echoes_a_raw_special_character_password(raw: str) -> None:
    url = f"postgresql://app:{raw}@127.0.0.1:5432/authkit"
    for args in (("--json",), ()):
        result = run_cli("check", "--database-url", url, *args)
        assert result.exit_code == 1, result.output
        for piece in {raw, *raw.replace("@", "/").replace("#", "/").replace("?", "/").split("/")}:
            if len(piece) >= 3:
                assert piece not in result.output, (piece, result.output)
        assert "percent-encode the password" in result.output
    doc = run_cli("check", "--database-url", url, "--json").json()
    [item] = doc["checks"]
    assert item["url"] == "postgresql://app:****@127.0.0.1:5432/authkit"
    assert item["failed_rung"] == "url" and item["error"]["code"] == "url_invalid"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:Str0ngPassw0rd@127.0.0.1:5432/authkit?application_name=api@prod",
        "postgresql://app:Str0ngPassw0rd@127.0.0.1:5432/authk@it",
    ],
)
def test_an_at_sign_after_the_host_is_named_as_such(url: str) -> None:
    """An @ in a query value or path cannot be told from a password holding / ? # and @, so
    the url rung still refuses it (the reading that never shows a password), but says why."""
    result = run_cli("check", "--database-url", url, "--json")
    assert result.exit_code == 1, result.output
    [item] = result.json()["checks"]
    assert item["failed_rung"] == "url"
    assert item["error"]["message"].startswith("DATABASE_URL has an '@' after its host")
    assert "%40" in item["hint"] and "Str0ngPassw0rd" not in result.output


def test_check_with_a_weak_password_masks_it_in_urls_only_and_warns(
    pg: PgServer, redis_srv: RedisServer
) -> None:
    """A password `postgres` must not turn `postgresql://` into `****ql://`."""
    db_url = pg.create_database_and_role("authkit_weak", "weak_user", "postgres")
    redis_url = redis_srv.add_acl_user("weak_user", "password")
    human = run_cli("check", "--database-url", db_url, "--redis-url", redis_url)
    assert human.exit_code == 0, human.output
    assert "****ql" not in human.output and "user name or ****" not in human.output
    assert "the password in DATABASE_URL is weak" in human.stdout
    assert "the password in REDIS_URL is weak" in human.stdout
    result = run_cli("check", "--database-url", db_url, "--redis-url", redis_url, "--json")
    doc = result.json()
    pg_item, redis_item = doc["checks"]
    assert pg_item["url"] == db_url.replace(":postgres@", f":{MASK}@")
    assert redis_item["url"] == redis_url.replace(":password@", f":{MASK}@")
    assert pg_item["url"].startswith("postgresql://weak_user:****@")
    assert any("is weak" in w for w in pg_item["warnings"])
    assert "PostgreSQL" in pg_item["server_version"]


def test_github_outputs_pass_through_the_redactor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authkit_setup.ci import write_outputs

    target = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(target))
    err = io.StringIO()
    out = Output(stdout=io.StringIO(), stderr=err, github_actions=True)
    register("a-long-random-api-key-0042")
    write_outputs(
        out,
        {
            "note": "key a-long-random-api-key-0042 and postgresql://u:Se/cret99@h/db",
            "count": 2,
        },
    )
    assert target.read_text() == f"note=key {MASK} and postgresql://u:{MASK}@h/db\ncount=2\n"
    assert err.getvalue() == "::add-mask::a-long-random-api-key-0042\n"
