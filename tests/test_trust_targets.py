"""Fast unit tests of where the URLs go and how a check reads to a person: the env step
(pipeline/env.py) on a Render service's variables and on a .env file, keeping a .env file out of
git (envfile.py, real git in a temporary folder), and `check`'s human output, colours included
(check/urls.py). Written so that the mutants scripts/mutation.py makes are noticed; no servers.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from authkit_setup import envfile
from authkit_setup.check import service as service_check
from authkit_setup.check import urls as verify
from authkit_setup.diagnostics.inside import InsideCheckResult
from authkit_setup.diagnostics.model import CheckResult, Rung
from authkit_setup.errors import UsageError
from authkit_setup.kinds import Kind
from authkit_setup.output import Output
from authkit_setup.pipeline.env import planned_env, write_env
from authkit_setup.pipeline.plan import StorePlan
from authkit_setup.providers.base import ConnectionInfo, StoreSpec
from authkit_setup.targets.env_file import EnvFile
from authkit_setup.targets.render_service import ServiceEnv


def plain_output() -> tuple[Output, io.StringIO, io.StringIO]:
    """An Output writing plain text (not a terminal) to two buffers: stdout, stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    return Output(stdout=stdout, stderr=stderr, github_actions=False), stdout, stderr


# -- the env step: a Render service's variables ---------------------------------------------


class FakeRender:
    """Render's env-var endpoints over a dict of (service id, key) -> value."""

    def __init__(self, variables: dict[tuple[str, str], str]) -> None:
        self.variables = dict(variables)
        self.puts: list[tuple[str, str, str]] = []

    def env_var(self, service_id: str, key: str) -> str | None:
        return self.variables.get((service_id, key))

    def put_env_var(self, service_id: str, key: str, value: str) -> None:
        self.puts.append((service_id, key, value))
        self.variables[(service_id, key)] = value


def service_env(render: FakeRender) -> ServiceEnv:
    return ServiceEnv(cast(Any, render), service_id="srv-1", service_name="my-api")


def plan(kind: Kind, info: ConnectionInfo | None) -> StorePlan:
    spec = StoreSpec(kind=kind, name=f"authkit-{kind.value}", region="oregon", plan="free")
    return StorePlan(spec=spec, provider=cast(Any, None), existing=None, info=info)


PG = ConnectionInfo(
    app_url="postgresql://u:pg-secret-1@pg-internal/app",
    external_url="postgresql://u:pg-secret-1@pg.example.com/app",
    extra_env={"DIRECT_URL": "postgresql://u:pg-secret-1@pg-direct.example.com/app"},
)
KV = ConnectionInfo(
    app_url="redis://:kv-secret-2@kv-internal:6379",
    external_url="rediss://:kv-secret-2@kv.example.com:6379",
)


def test_a_service_reads_its_own_variables_and_says_what_points_elsewhere() -> None:
    render = FakeRender(
        {
            ("srv-1", "DATABASE_URL"): "postgresql://u:old-pw-1@old-db.example.com:5432/app",
            ("srv-2", "REDIS_URL"): "redis://other-service",
        }
    )
    target = service_env(render)
    assert target.read("DATABASE_URL") == "postgresql://u:old-pw-1@old-db.example.com:5432/app"
    assert target.read("REDIS_URL") is None  # another service's variable is not this one's
    assert target.current(["DATABASE_URL", "REDIS_URL"]) == {
        "DATABASE_URL": "postgresql://u:old-pw-1@old-db.example.com:5432/app",
        "REDIS_URL": None,
    }
    assert target.conflict(
        "DATABASE_URL", "postgresql://u:old-pw-1@old-db.example.com:5432/app", "authkit-db"
    ) == (
        "my-api already has DATABASE_URL pointing at old-db.example.com/app"
        " (postgresql://u:****@old-db.example.com:5432/app), not at authkit-db"
    )


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (
            "redis://:pw-abc@kv.example.com:6379",
            "kv.example.com (redis://:****@kv.example.com:6379)",
        ),
        ("postgresql:///app", "?/app (postgresql:///app)"),  # no host: the local socket
        ("redis://:pw-abcdef@[::1:6379", "redis://:****@[::1:6379"),  # unparseable: masked only
    ],
)
def test_a_conflict_names_the_host_it_points_at(value: str, where: str) -> None:
    message = service_env(FakeRender({})).conflict("REDIS_URL", value, "authkit-kv")
    assert message == f"my-api already has REDIS_URL pointing at {where}, not at authkit-kv"


def test_a_service_takes_the_internal_urls_and_the_extras_beside_them() -> None:
    out, _, _ = plain_output()
    target = service_env(FakeRender({}))
    assert target.values({Kind.POSTGRES: PG, Kind.REDIS: KV}, out) == {
        "DATABASE_URL": "postgresql://u:pg-secret-1@pg-internal/app",
        "DIRECT_URL": "postgresql://u:pg-secret-1@pg-direct.example.com/app",
        "REDIS_URL": "redis://:kv-secret-2@kv-internal:6379",
    }
    no_url = ConnectionInfo(app_url="", extra_env={"DIRECT_URL": "postgresql://x@h/d"})
    assert target.values({Kind.POSTGRES: no_url}, out) == {}  # nor its extras


def test_the_env_step_writes_each_changed_key_of_the_service_and_nothing_else() -> None:
    render = FakeRender(
        {
            ("srv-1", "REDIS_URL"): "redis://:kv-secret-2@kv-internal:6379",
            ("srv-1", "DIRECT_URL"): "postgresql://u:pg-secret-1@pg-direct.example.com/app",
            ("srv-1", "SECRET_KEY"): "keep-me",
        }
    )
    out, _, stderr = plain_output()
    current = {"DATABASE_URL": None, "REDIS_URL": "redis://:kv-secret-2@kv-internal:6379"}
    changes = write_env(
        service_env(render), [plan(Kind.POSTGRES, PG), plan(Kind.REDIS, KV)], current, out
    )
    assert [c.to_json() for c in changes] == [
        {"key": "DATABASE_URL", "action": "created"},
        {"key": "DIRECT_URL", "action": "unchanged"},  # read now: the plan had not read it
        {"key": "REDIS_URL", "action": "unchanged"},
    ]
    assert render.puts == [("srv-1", "DATABASE_URL", "postgresql://u:pg-secret-1@pg-internal/app")]
    assert render.variables[("srv-1", "SECRET_KEY")] == "keep-me"
    assert stderr.getvalue() == (
        "DATABASE_URL: created (postgresql://u:****@pg-internal/app)\n"
        "DIRECT_URL: unchanged (postgresql://u:****@pg-direct.example.com/app)\n"
        "REDIS_URL: unchanged (redis://:****@kv-internal:6379)\n"
    )


def test_a_store_without_urls_yet_is_not_written() -> None:
    render = FakeRender({})
    out, _, _ = plain_output()
    changes = write_env(
        service_env(render), [plan(Kind.POSTGRES, None), plan(Kind.REDIS, KV)], {}, out
    )
    assert [c.to_json() for c in changes] == [{"key": "REDIS_URL", "action": "created"}]
    assert render.puts == [("srv-1", "REDIS_URL", "redis://:kv-secret-2@kv-internal:6379")]


def test_a_dry_run_predicts_each_variable_of_the_target() -> None:
    current: dict[str, str | None] = {
        "DATABASE_URL": "postgresql://u:pg-secret-1@pg-internal/app",
        "REDIS_URL": "redis://old",
    }
    target = service_env(FakeRender({}))
    changes = planned_env(target, [plan(Kind.POSTGRES, PG), plan(Kind.REDIS, KV)], current)
    assert [c.to_json() for c in changes] == [
        {"key": "DATABASE_URL", "action": "unchanged"},  # the service's URL: internal
        {"key": "REDIS_URL", "action": "updated"},
    ]
    file_target = EnvFile(Path("app.env"))  # a .env file gets the external URL
    changes = planned_env(file_target, [plan(Kind.POSTGRES, PG)], current)
    assert [c.to_json() for c in changes] == [{"key": "DATABASE_URL", "action": "updated"}]
    # A store not created yet: its variable will be created, or replaced when set.
    changes = planned_env(
        target, [plan(Kind.POSTGRES, None), plan(Kind.REDIS, None)], {"REDIS_URL": "redis://old"}
    )
    assert [c.to_json() for c in changes] == [
        {"key": "DATABASE_URL", "action": "created"},
        {"key": "REDIS_URL", "action": "updated"},
    ]
    assert planned_env(target, [], current) == []


# -- the env step: a .env file --------------------------------------------------------------


def test_the_env_step_writes_the_external_urls_to_a_env_file_and_warns_when_unreachable() -> None:
    Path("app.env").write_text(
        "SECRET_KEY=keep\nREDIS_URL=rediss://:kv-secret-2@kv.example.com:6379\n"
    )
    walled = ConnectionInfo(
        app_url="postgresql://u:pg-secret-3@pg-internal/app",
        external_url="postgresql://u:pg-secret-3@pg.example.com/app",
        external_reachable=False,
        unreachable_reason="its IP allow list does not include this machine",
    )
    out, _, stderr = plain_output()
    changes = write_env(
        EnvFile(Path("app.env")), [plan(Kind.POSTGRES, walled), plan(Kind.REDIS, KV)], {}, out
    )
    assert [c.to_json() for c in changes] == [
        {"key": "DATABASE_URL", "action": "created"},
        {"key": "REDIS_URL", "action": "unchanged"},
    ]
    assert Path("app.env").read_text() == (
        "SECRET_KEY=keep\n"
        "REDIS_URL=rediss://:kv-secret-2@kv.example.com:6379\n"
        "DATABASE_URL=postgresql://u:pg-secret-3@pg.example.com/app\n"
    )
    assert stderr.getvalue() == (
        "warning: app.env: DATABASE_URL is written but its IP allow list does not include this"
        " machine\n"
        "app.env: DATABASE_URL created\n"
        "app.env: REDIS_URL unchanged\n"
    )


# -- a .env file stays out of git (real git, in the test's own folder) -------------------------


def git(*args: str) -> int:
    return subprocess.run(["git", *args], capture_output=True, check=False).returncode


def git_init() -> None:
    assert git("init", "-q", ".") == 0


def ignored(name: str) -> bool:
    return git("check-ignore", "-q", "--", name) == 0


def test_outside_a_work_tree_nothing_is_done() -> None:
    Path(".env").write_text("A=1\n")
    assert envfile.keep_out_of_git(Path(".env")) == ("skipped", None)
    assert not Path(".gitignore").exists()


def test_inside_the_git_folder_itself_nothing_is_done() -> None:
    """`git rev-parse --is-inside-work-tree` exits 0 there (printing "false"); no .gitignore
    may be written into .git/."""
    git_init()
    Path(".git/app.env").write_text("A=1\n")
    assert envfile.keep_out_of_git(Path(".git/app.env")) == ("skipped", None)
    assert not Path(".git/.gitignore").exists()


def test_a_new_gitignore_is_created_beside_the_file_and_git_ignores_it() -> None:
    git_init()
    Path("backend").mkdir()
    Path("backend/app.env").write_text("A=1\n")
    action = envfile.keep_out_of_git(Path("backend/app.env"))
    assert action == ("created", Path("backend").resolve() / ".gitignore")
    assert Path("backend/.gitignore").read_bytes() == b"/app.env\n"
    assert not Path(".gitignore").exists()
    assert ignored("backend/app.env")
    assert envfile.keep_out_of_git(Path("backend/app.env")) == ("ignored", None)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"node_modules/\n", b"node_modules/\n/.env\n"),
        (b"node_modules/", b"node_modules/\n/.env\n"),  # no final newline: one is added first
        (b"dist/\r\n", b"dist/\r\n/.env\r\n"),  # CRLF endings are kept
        (b"dist/\r\nbuild/", b"dist/\r\nbuild/\r\n/.env\r\n"),
        (b"", b"/.env\n"),  # an empty file is not "created"
    ],
)
def test_the_name_is_appended_to_an_existing_gitignore(before: bytes, after: bytes) -> None:
    git_init()
    Path(".gitignore").write_bytes(before)
    Path(".env").write_text("A=1\n")
    assert envfile.keep_out_of_git(Path(".env")) == ("added", Path.cwd().resolve() / ".gitignore")
    assert Path(".gitignore").read_bytes() == after
    assert ignored(".env")


def test_a_file_git_tracks_or_ignores_is_left_alone_even_when_its_name_looks_like_an_option() -> (
    None
):
    git_init()
    Path(".gitignore").write_text("*.env\n!-tracked.env\n")
    for name in ("-ignored.env", "-tracked.env"):
        Path(name).write_text("A=1\n")
    assert git("add", "--", "-tracked.env") == 0
    assert envfile.keep_out_of_git(Path("-ignored.env")) == ("ignored", None)
    assert envfile.keep_out_of_git(Path("-tracked.env")) == ("tracked", None)
    assert Path(".gitignore").read_text() == "*.env\n!-tracked.env\n"


def test_a_gitignore_that_cannot_be_written_is_reported() -> None:
    git_init()
    Path(".gitignore").mkdir()  # not a file: appending to it fails
    Path(".env").write_text("A=1\n")
    assert envfile.keep_out_of_git(Path(".env")) == ("skipped", Path.cwd().resolve() / ".gitignore")


def test_git_says_nothing_on_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    Path(".env").write_text("A=1\n")
    envfile.keep_out_of_git(Path(".env"))  # outside a work tree: git complains, to no one
    git_init()
    Path("tracked.env").write_text("A=1\n")
    assert git("add", "tracked.env") == 0
    capfd.readouterr()
    for name in (".env", "tracked.env", "missing.env"):
        envfile.keep_out_of_git(Path(name))
    assert capfd.readouterr() == ("", "")


def test_without_git_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    git_init()
    Path(".env").write_text("A=1\n")
    monkeypatch.setenv("PATH", str(Path("no-bin").resolve()))
    assert envfile.keep_out_of_git(Path(".env")) == ("skipped", None)
    assert not Path(".gitignore").exists()


def test_a_git_that_hangs_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(args: list[str], **kwargs: Any) -> Any:
        timeout = kwargs.get("timeout")
        assert timeout is not None and 0 < timeout <= 60, "a hanging git would hang the run"
        raise subprocess.TimeoutExpired(args, timeout)

    monkeypatch.setattr(subprocess, "run", hang)
    assert envfile.keep_out_of_git(Path(".env")) == ("skipped", None)


def test_what_the_user_is_told() -> None:
    git_init()
    for name in ("new.env", "tracked.env", "other.env"):
        Path(name).write_text("A=1\n")
    assert git("add", "tracked.env") == 0
    out, stdout, stderr = plain_output()
    here = Path.cwd().resolve()
    assert envfile.say_kept_out_of_git(Path("new.env"), out) == "created"
    assert envfile.say_kept_out_of_git(Path("other.env"), out) == "added"
    assert envfile.say_kept_out_of_git(Path("new.env"), out) == "ignored"
    assert envfile.say_kept_out_of_git(Path("tracked.env"), out) == "tracked"
    Path(".gitignore").unlink()
    Path(".gitignore").mkdir()
    assert envfile.say_kept_out_of_git(Path("new.env"), out) == "skipped"
    assert stdout.getvalue() == ""
    assert stderr.getvalue() == (
        f"{here}/.gitignore: /new.env created (it holds secrets; git now ignores it)\n"
        f"{here}/.gitignore: /other.env added (it holds secrets; git now ignores it)\n"
        "warning: tracked.env holds secrets and git tracks it: run `git rm --cached tracked.env`"
        " and add it to .gitignore\n"
        f"warning: could not update {here}/.gitignore: add /new.env to it yourself\n"
    )


def test_outside_a_work_tree_the_user_is_told_nothing() -> None:
    out, stdout, stderr = plain_output()
    assert envfile.say_kept_out_of_git(Path(".env"), out) == "skipped"
    assert (stdout.getvalue(), stderr.getvalue()) == ("", "")


# -- check: what a person reads, colours included ----------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLORTERM"):
        monkeypatch.delenv(name, raising=False)
    return Terminal()


BOLD, GREEN, RED, YELLOW, CYAN, WARN, END = (
    "\x1b[1m",
    "\x1b[32m",
    "\x1b[1;31m",
    "\x1b[33m",
    "\x1b[1;36m",
    "\x1b[1;33m",
    "\x1b[0m",
)


def failing_postgres() -> CheckResult:
    result = CheckResult("postgres", "postgresql://db.example.com:5432/app")
    result.rungs += [Rung("url", True, 1.4, "fine"), Rung("tcp", False, 2.6, "refused")]
    result.failed_rung, result.error_message, result.hint = "tcp", "refused", "start it"
    result.warn("the password is short")
    return result


def skipped_redis() -> CheckResult:
    result = CheckResult("redis", "redis://kv.example.com:6379")
    result.skipped, result.reason = True, "its allow list is empty"
    return result


def unexplained_inside() -> InsideCheckResult:
    result = InsideCheckResult("redis", "redis://kv-internal:6379", unexplained=True)
    result.error_message, result.hint = "probe job job-1 failed", "read the job's logs"
    return result


def passing_redis() -> CheckResult:
    result = CheckResult("redis", "redis://kv.example.com:6379")
    result.rungs.append(Rung("url", True, 0.4, "fine"))
    return result


def screen(terminal: Terminal, results: list[CheckResult]) -> list[str]:
    out = Output(stdout=terminal, stderr=Terminal(), github_actions=False)
    verify.render_checks(out, results)
    return terminal.getvalue().split("\n")


def test_a_failed_check_on_a_terminal(terminal: Terminal) -> None:
    assert screen(terminal, [failing_postgres(), passing_redis()]) == [
        f"{BOLD}PostgreSQL{END}  postgresql://db.example.com:5432/app",
        f"{GREEN}  ✓{END} url       fine  (1 ms)",
        f"{RED}  ✗ tcp      {END} refused  (3 ms)",  # the failed rung's name in red, too
        f"{CYAN}    fix:{END} start it",
        f"{WARN}  !{END} the password is short",
        "",
        f"{BOLD}Redis{END}  redis://kv.example.com:6379",
        f"{GREEN}  ✓{END} url       fine  (0 ms)",
        "",
        f"{RED}1 of 2 failed.{END}",
        "",
    ]


def test_a_check_that_could_not_be_made_on_a_terminal(terminal: Terminal) -> None:
    assert screen(terminal, [skipped_redis(), unexplained_inside()]) == [
        f"{BOLD}Redis{END}  redis://kv.example.com:6379",
        f"{YELLOW}  - not checked:{END} its allow list is empty",
        "",
        f"{BOLD}Redis{END}  redis://kv-internal:6379 (checked from inside the service)",
        f"{RED}  ✗{END} probe job job-1 failed",
        f"{CYAN}    fix:{END} read the job's logs",
        "",
        f"{RED}1 of 2 failed.{END}",
        "",
    ]


def test_checks_that_pass_or_are_skipped_on_a_terminal(terminal: Terminal) -> None:
    assert screen(terminal, [passing_redis(), skipped_redis()])[-2:] == [
        f"{YELLOW}Not everything could be checked from here (see above).{END}",
        "",
    ]
    terminal.seek(0)
    terminal.truncate()
    assert screen(terminal, [passing_redis()])[-2:] == [f"{GREEN}All checks passed.{END}", ""]


def test_a_check_from_here_is_not_said_to_be_from_inside() -> None:
    out, stdout, _ = plain_output()
    verify.render_checks(out, [skipped_redis()])
    assert stdout.getvalue().splitlines()[0] == "Redis  redis://kv.example.com:6379"


# -- check: the request reaches the check --------------------------------------------------


@pytest.fixture
def service_checks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def from_here(out: Any, **kwargs: Any) -> list[CheckResult]:
        calls.append(("from here", kwargs))
        return [passing_redis()]

    def from_inside(out: Any, **kwargs: Any) -> list[CheckResult]:
        calls.append(("from inside", kwargs))
        return [unexplained_inside()]

    monkeypatch.setattr(service_check, "check_service", from_here)
    monkeypatch.setattr(service_check, "check_service_from_inside", from_inside)
    return calls


def test_check_service_uses_the_default_timeouts(
    service_checks: list[tuple[str, dict[str, Any]]],
) -> None:
    out, _, _ = plain_output()
    ask = verify.CheckRequest(
        env_file=Path("app.env"), service="my-api", workspace="ws-1", api_key="rnd_key"
    )
    verify.diagnose(ask, out)
    verify.diagnose(verify.CheckRequest(service="my-api", verify_inside=True), out)
    assert service_checks == [
        (
            "from here",
            {
                "service": "my-api",
                "workspace": "ws-1",
                "api_key": "rnd_key",
                "env_file": Path("app.env"),
                "timeout": 5.0,  # each rung's
            },
        ),
        (
            "from inside",
            {
                "service": "my-api",
                "workspace": None,
                "api_key": None,
                "env_file": Path(".env"),
                "timeout": 300.0,  # the whole job's
            },
        ),
    ]


def test_check_timeout_is_the_rungs_or_the_jobs(
    service_checks: list[tuple[str, dict[str, Any]]],
) -> None:
    out, _, _ = plain_output()
    for inside in (False, True):
        verify.diagnose(verify.CheckRequest(service="s", timeout=2.5, verify_inside=inside), out)
    assert [(how, kwargs["timeout"]) for how, kwargs in service_checks] == [
        ("from here", 2.5),
        ("from inside", 2.5),
    ]


def test_check_from_inside_needs_a_service() -> None:
    out, _, _ = plain_output()
    with pytest.raises(UsageError) as caught:
        verify.diagnose(
            verify.CheckRequest(database_url="postgresql://h/db", verify_inside=True), out
        )
    assert caught.value.message == (
        "--verify-inside runs a job inside a Render service: pass --service NAME too"
    )


def test_check_reads_the_named_env_file_with_the_given_timeout(
    checks_seen: list[tuple[dict[str, str], float]],
) -> None:
    seen = checks_seen
    Path("app.env").write_text("DATABASE_URL=postgresql://file-host/db\n")
    out, _, stderr = plain_output()
    request = verify.CheckRequest(redis_url="redis://flag-host", env_file=Path("app.env"))
    assert verify.run_check(out, request) == 0
    verify.diagnose(verify.CheckRequest(env_file=Path("app.env"), timeout=1.5), out)
    assert seen == [
        ({"postgres": "postgresql://file-host/db", "redis": "redis://flag-host"}, 5.0),
        ({"postgres": "postgresql://file-host/db"}, 1.5),
    ]
    assert stderr.getvalue().splitlines()[:2] == [
        "DATABASE_URL from app.env",
        "REDIS_URL from the command line",
    ]
