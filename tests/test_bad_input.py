"""A catalogue of malformed input, one row each: every row ends in a short, clear failure.

Each row runs the real CLI in-process and must give the documented exit code (2 usage, 1 a
failed check, 3 credentials), no traceback, no secret, and a short stderr: at most an
`error:` line and a `hint:` line. Rows that fail only after talking to the (fake) Render API
(`progress=True`) may print progress first; their error block is still those two lines.
`check` rows that fail a rung (`rung=`) are run with --json and must fail at that rung.

Placeholders: {closed} is a loopback port nothing listens on; {dir}, {missing}, {binary},
{empty}, {garbage}, {nul} name files the fixture creates in the test's folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.render_api import FakeRenderAPI
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import fabricated_render

PASSWORD = "p@ss:w/rd?#é%"  # percent-encoded as below in the URLs that carry it
ENCODED = "p%40ss%3Aw%2Frd%3F%23%C3%A9%25"
HUGE = "x" * 100_000


@dataclass(frozen=True)
class Row:
    id: str
    argv: tuple[str, ...]
    exit_code: int
    says: str  # a piece of the error message (or of the failed rung's message); never empty
    rung: str | None = None  # check: the rung that must fail (run with --json)
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset
    progress: bool = False


def check(*argv: str) -> tuple[str, ...]:
    return ("check", *argv)


PG = "--database-url"
RD = "--redis-url"
SERVICE = ("--service", "authkit-api", "--yes", "--no-verify")

ROWS: list[Row] = [
    # -- check: URLs that are not URLs, or not the right kind ------------------------------
    Row("odd-scheme-mysql", check(PG, "mysql://u:p@localhost/db"), 1, "scheme 'mysql'", "url"),
    Row("odd-scheme-http", check(PG, "http://u:p@localhost/db"), 1, "scheme 'http'", "url"),
    Row("redis-url-as-database-url", check(PG, "redis://localhost:6379"), 1, "REDIS_URL", "url"),
    Row("postgres-url-as-redis-url", check(RD, "postgresql://u:p@h/db"), 1, "DATABASE_URL", "url"),
    Row("no-scheme-separator", check(PG, "postgresql//u:p@localhost/db"), 1, "no scheme", "url"),
    Row("missing-host", check(PG, "postgresql:///authkit"), 1, "no host", "url"),
    Row("empty-host-with-port", check(PG, "postgresql://u:p@:5432/authkit"), 1, "no host", "url"),
    Row("non-numeric-port", check(PG, "postgresql://u:p@localhost:abc/db"), 1, "port", "url"),
    Row("port-out-of-range", check(PG, "postgresql://u:p@localhost:65536/db"), 1, "port", "url"),
    Row("port-zero", check(PG, "postgresql://u:p@localhost:0/db"), 1, "port 0", "url"),
    Row("negative-port", check(PG, "postgresql://u:p@localhost:-1/db"), 1, "port", "url"),
    Row("unicode-digit-port", check(PG, "postgresql://u:p@localhost:٥٤٣٢/db"), 1, "port", "url"),
    Row("no-database", check(PG, "postgresql://u:p@localhost:5432"), 1, "no database", "url"),
    Row("database-with-slash", check(PG, "postgresql://u:p@localhost/a/b"), 1, "'/'", "url"),
    Row("bad-sslmode", check(PG, "postgresql://u:p@localhost/db?sslmode=yes"), 1, "sslmode", "url"),
    Row("unclosed-ipv6", check(PG, "postgresql://u:p@[::1/db"), 1, "Invalid IPv6 URL", "url"),
    Row(
        "not-an-ipv6", check(PG, "postgresql://u:p@[zz::1]/db"), 1, "'zz::1' does not appear", "url"
    ),
    Row(
        "host-label-too-long",
        check(PG, f"postgresql://u:p@{'a' * 64}.example/db"),
        1,
        "not a valid host name",
        "url",
    ),
    Row("redis-db-not-a-number", check(RD, "redis://localhost/zero"), 1, "not a number", "url"),
    Row("redis-db-superscript", check(RD, "redis://localhost/²"), 1, "not a number", "url"),
    Row("redis-db-query", check(RD, "redis://localhost?db=x"), 1, "not a number", "url"),
    Row("whitespace-url", check(PG, "   "), 1, "is empty", "url"),
    # -- check: well-formed URLs that reach nothing (closed loopback ports) ----------------
    Row(
        "ipv6-literal-closed",
        check(PG, "postgresql://u:p@[::1]:{closed}/db"),
        1,
        "refused the connection",
        "tcp",
    ),
    Row("ipv4-closed", check(PG, "postgresql://u:p@127.0.0.1:{closed}/db"), 1, "refused", "tcp"),
    Row(
        "percent-encoded-password",
        check(PG, f"postgresql://app:{ENCODED}@127.0.0.1:{{closed}}/db"),
        1,
        "refused",
        "tcp",
    ),
    Row(
        "non-ascii-raw-password",
        check(PG, "postgresql://app:pässwörd€@127.0.0.1:{closed}/db"),
        1,
        "refused",
        "tcp",
    ),
    Row(
        "bad-percent-escape",
        check(PG, "postgresql://app:p%ZZ%@127.0.0.1:{closed}/db"),
        1,
        "refused",
        "tcp",
    ),
    Row(
        "huge-password",
        check(PG, f"postgresql://app:{HUGE}@127.0.0.1:{{closed}}/db"),
        1,
        "refused",
        "tcp",
    ),
    Row("huge-host", check(PG, f"postgresql://u:p@{HUGE}/db"), 1, "not a valid host name", "url"),
    Row(
        "rediss-ipv6-closed",
        check(RD, f"rediss://default:{ENCODED}@[::1]:{{closed}}/0"),
        1,
        "refused the connection",
        "tcp",
    ),
    Row(
        "unresolvable-host",
        check(PG, "postgresql://u:p@nowhere.invalid/db"),
        1,
        "does not resolve",
        "dns",
    ),
    # -- check: usage ------------------------------------------------------------------------
    Row("empty-database-url", check(PG, ""), 2, "nothing to check"),
    Row("missing-env-file", check("--env-file", "{missing}"), 2, "no such file"),
    Row("directory-as-env-file", check("--env-file", "{dir}"), 2, "is a directory"),
    Row("unreadable-env-file", check("--env-file", "/proc/self/mem"), 2, "cannot be read"),
    Row("binary-env-file", check("--env-file", "{binary}"), 2, "not a UTF-8 text file"),
    Row("empty-env-file", check("--env-file", "{empty}"), 2, "nothing to check"),
    Row("env-file-with-nul-bytes", check("--env-file", "{nul}"), 2, "nothing to check"),
    Row("garbage-url-in-env-file", check("--env-file", "{garbage}"), 1, "no scheme", "url"),
    Row(
        "service-with-database-url",
        check("--service", "authkit-api", PG, "postgresql://u:p@h/db"),
        2,
        "--service",
    ),
    Row("timeout-zero", check(PG, "postgresql://u:p@h/db", "--timeout", "0"), 2, "--timeout"),
    Row("timeout-text", check(PG, "postgresql://u:p@h/db", "--timeout", "soon"), 2, "--timeout"),
    Row(
        "timeout-infinite",
        check(PG, "postgresql://u:p@127.0.0.1:{closed}/db", "--timeout", "inf"),
        2,
        "--timeout",
    ),
    Row("unknown-option", check("--database", "x"), 2, "No such option"),
    Row("extra-argument", check("surplus"), 2, "unexpected extra argument(s) (surplus)"),
    # -- render: flags ---------------------------------------------------------------------------
    Row("unknown-region", ("render", *SERVICE, "--region", "mars"), 2, "not a Render region"),
    Row("region-wrong-case", ("render", *SERVICE, "--region", "Ohio"), 2, "not a Render region"),
    Row(
        "region-other-than-service",
        ("render", *SERVICE, "--region", "oregon"),
        2,
        "does not match",
        progress=True,
    ),
    Row("invalid-postgres-plan", ("render", *SERVICE, "--postgres-plan", "gold"), 2, "plan"),
    Row("invalid-redis-plan", ("render", *SERVICE, "--redis-plan", "huge"), 2, "plan"),
    Row("invalid-policy", ("render", *SERVICE, "--maxmemory-policy", "lru"), 2, "policy"),
    Row("invalid-cidr", ("render", *SERVICE, "--postgres-allow-cidr", "300.1.1.1/8"), 2, "CIDR"),
    Row(
        "cidr-prefix-too-long", ("render", *SERVICE, "--redis-allow-cidr", "10.0.0.0/33"), 2, "CIDR"
    ),
    Row("empty-cidr", ("render", *SERVICE, "--redis-allow-cidr", ""), 2, "CIDR"),
    Row("preview-uppercase", ("render", *SERVICE, "--preview", "PR_123"), 2, "preview"),
    Row("preview-empty", ("render", *SERVICE, "--preview", ""), 2, "preview"),
    Row("preview-too-long", ("render", *SERVICE, "--preview", "p" * 41), 2, "preview"),
    Row("preview-leading-hyphen", ("render", *SERVICE, "--preview", "-pr"), 2, "preview"),
    Row("preview-huge", ("render", *SERVICE, "--preview", HUGE), 2, "preview"),
    Row(
        "no-deploy-and-wait-deploy",
        ("render", *SERVICE, "--no-deploy", "--wait-deploy"),
        2,
        "contradict",
    ),
    Row("postgres-version-too-old", ("render", *SERVICE, "--postgres-version", "10"), 2, "version"),
    Row(
        "postgres-version-text", ("render", *SERVICE, "--postgres-version", "latest"), 2, "version"
    ),
    Row("empty-db-name", ("render", *SERVICE, "--db-name", ""), 2, "--db-name is empty"),
    Row("blank-redis-name", ("render", *SERVICE, "--redis-name", "  "), 2, "--redis-name is empty"),
    Row(
        "empty-migrate-command",
        ("render", *SERVICE, "--migrate-command", ""),
        2,
        "--migrate-command",
    ),
    Row("timeout-below-one", ("render", *SERVICE, "--timeout", "0.5"), 2, "--timeout"),
    Row("service-missing", ("render", "--yes"), 2, "--service"),
    Row("service-empty", ("render", "--service", "", "--yes"), 2, "--service is empty"),
    Row("service-unknown", ("render", "--service", "nope", "--yes"), 2, "no service named"),
    Row("service-huge", ("render", "--service", HUGE, "--yes"), 2, "cannot build the request URL"),
    Row(
        "service-id-unknown",
        ("render", "--service", "srv-" + "a" * 20, "--yes"),
        2,
        "no service srv-",
    ),
    Row("workspace-unknown", ("render", *SERVICE, "--workspace", "Nope Inc"), 2, "workspace"),
    Row(
        "directory-as-output-env-file",
        ("render", *SERVICE, "--env-file", "{dir}"),
        2,
        "directory",
        progress=True,
    ),
    # -- render: credentials and environment ----------------------------------------------------
    Row("no-api-key", ("render", *SERVICE), 3, "RENDER_API_KEY", env={"RENDER_API_KEY": None}),
    Row(
        "empty-api-key",
        ("render", *SERVICE, "--api-key", ""),
        3,
        "RENDER_API_KEY",
        env={"RENDER_API_KEY": None},
    ),
    Row(
        "rejected-api-key",
        ("render", *SERVICE, "--api-key", "rnd_not-the-right-key-0000"),
        3,
        "rejected",
    ),
    Row(
        "api-url-not-http",
        ("render", *SERVICE),
        2,
        "RENDER_API_URL",
        env={"RENDER_API_URL": "ftp://x"},
    ),
    Row(
        "http-timeout-not-a-number",
        ("render", *SERVICE),
        2,
        "AUTHKIT_HTTP_TIMEOUT",
        env={"AUTHKIT_HTTP_TIMEOUT": "soon"},
    ),
    Row(
        "http-timeout-negative",
        ("render", *SERVICE),
        2,
        "AUTHKIT_HTTP_TIMEOUT",
        env={"AUTHKIT_HTTP_TIMEOUT": "-1"},
    ),
    # -- other commands ------------------------------------------------------------------------
    Row("status-bad-preview", ("status", "--preview", "Bad Name"), 2, "preview"),
    Row("status-no-api-key", ("status",), 3, "RENDER_API_KEY", env={"RENDER_API_KEY": None}),
    Row("teardown-without-preview", ("teardown",), 2, "--preview"),
    Row("teardown-empty-preview", ("teardown", "--preview", ""), 2, "preview"),
    Row("teardown-include-base-without-yes", ("teardown", "--include-base"), 2, "--yes"),
    Row("provision-unknown-postgres", ("provision", "--postgres", "mysql"), 2, "provider"),
    Row(
        "provision-unknown-redis",
        ("provision", "--postgres", "neon", "--redis", "memcached"),
        2,
        "provider",
    ),
    Row("provision-no-neon-key", ("provision", "--postgres", "neon"), 3, "NEON_API_KEY"),
    Row("local-privileged-port", ("local", "--port-postgres", "80"), 2, "--port-postgres"),
    Row("local-port-out-of-range", ("local", "--port-redis", "70000"), 2, "--port-redis"),
    Row("local-unknown-subcommand", ("local", "explode"), 2, "No such command 'explode'"),
    Row("unknown-command", ("deploy-everything",), 2, "No such command 'deploy-everything'"),
    # -- check: a password pasted raw, with characters that end a URL's authority ----------
    Row(
        "raw-special-password",
        check(PG, f"postgresql://u:{PASSWORD}@127.0.0.1:{{closed}}/db"),
        1,
        "percent-encode",
        "url",
    ),
    Row("raw-slash-password", check(PG, "postgresql://u:Se/cret99@host/db"), 1, "'/'", "url"),
    Row(
        "raw-hash-redis-password",
        check(RD, f"redis://:{PASSWORD}@127.0.0.1:{{closed}}/0"),
        1,
        "percent-encode",
        "url",
    ),
    Row("raw-question-password", check(RD, "rediss://default:a?b@h:6379"), 1, "'?'", "url"),
    Row("password-escape-not-utf8", check(PG, "postgresql://u:0000%80@h/db"), 1, "UTF-8", "url"),
    # -- secrets read from a file or stdin (--…-file PATH / -) -----------------------------
    Row("database-url-file-missing", check("--database-url-file", "{missing}"), 2, "cannot be"),
    Row("database-url-file-empty", check("--database-url-file={empty}"), 2, "is empty"),
    Row("redis-url-file-binary", check("--redis-url-file", "{binary}"), 2, "not UTF-8"),
    Row("database-url-file-two-lines", check("--database-url-file", "{garbage}"), 2, "one line"),
    Row("api-key-file-is-a-folder", ("status", "--api-key-file", "{dir}"), 2, "cannot be read"),
    Row("api-key-file-without-path", ("status", "--api-key-file"), 2, "needs a file path"),
]


def _param(row: Row) -> object:
    return pytest.param(row, id=row.id)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "binary.env").write_bytes(b"\xff\xfe\x00\x01DATABASE_URL=\x80\x81\n")
    (tmp_path / "empty.env").write_bytes(b"")
    (tmp_path / "nul.env").write_bytes(b"\x00\x00\x00\n\x00=\x00\n")
    (tmp_path / "garbage.env").write_text("# junk\nDATABASE_URL=not a url at all\n")
    return {
        "dir": str(tmp_path / "a-folder"),
        "missing": str(tmp_path / "nope.env"),
        "binary": str(tmp_path / "binary.env"),
        "empty": str(tmp_path / "empty.env"),
        "nul": str(tmp_path / "nul.env"),
        "garbage": str(tmp_path / "garbage.env"),
    }


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> Iterator[FakeRenderAPI]:
    # Nothing may leave the machine: the other providers' APIs point at a closed local port.
    for name in ("NEON_API_URL", "SUPABASE_API_URL", "UPSTASH_API_URL"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{closed_port}")
    yield from fabricated_render({"KEEP": "me"}, monkeypatch)


@pytest.mark.parametrize("row", [_param(row) for row in ROWS])
def test_bad_input(
    row: Row,
    fake: FakeRenderAPI,
    files: dict[str, str],
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in row.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    argv = [arg.format(closed=closed_port, **files) if "{" in arg else arg for arg in row.argv]
    if row.rung is not None:
        argv.append("--json")
    result = run_cli(*argv)

    assert result.exit_code == row.exit_code, result.output[-2000:]
    assert "Traceback" not in result.output
    assert "internal error" not in result.stderr, result.stderr
    assert_no_secret(result, PASSWORD)
    if row.rung is not None:
        assert_failed_rung(result, row)
    else:
        assert_error_block(result, row)


def assert_error_block(result: CliResult, row: Row) -> None:
    lines = result.stderr.strip().splitlines()
    if not row.progress:
        assert len(lines) <= 2, lines
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1, lines
    block = lines[errors[0] :]
    assert len(block) <= 2 and all(line.startswith(("error:", "hint:")) for line in block), block
    assert row.says in block[0], block
    assert all(len(line) <= 500 for line in block), "an error line echoes a huge value"


def assert_failed_rung(result: CliResult, row: Row) -> None:
    """A failed check: the result is on stdout; stderr only says where the URL came from."""
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
    doc = json.loads(result.stdout)
    failed = [c for c in doc["checks"] if not c["ok"]]
    assert len(failed) == 1, doc
    assert failed[0]["failed_rung"] == row.rung, failed[0]
    assert failed[0]["hint"]
    assert row.says in failed[0]["error"]["message"] + failed[0]["hint"], failed[0]
    assert len(failed[0]["error"]["message"]) <= 500, "the message echoes a huge value"


def test_the_catalogue_is_big_enough() -> None:
    assert len(ROWS) >= 40
    assert [row.id for row in ROWS if not row.says] == [], "every row names its message"
    assert len({row.id for row in ROWS}) == len(ROWS)


# -- start-up: --help and --version import no driver, no httpx, no rich -------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("check", "--help"),
        ("render", "--help"),
        ("blueprint", "--help"),
    ],
    ids=["help", "version", "check-help", "render-help", "blueprint-help"],
)
def test_help_and_version_start_without_heavy_imports(args: tuple[str, ...]) -> None:
    from benchmarks.bench_imports import HEAVY, measure

    imports = measure(*args)
    assert imports.exit_code == 0
    assert "authkit_setup.launch" in imports.modules  # the measurement saw the real start-up
    assert imports.heavy == [], f"{' '.join(args)} imports {imports.heavy} (none of {HEAVY})"
