"""The first ten minutes: help with no arguments, and retries that talk: every retry says what
failed and when the next try is, and the final error names the API's address and the variable
that set it (a wrong RENDER_API_URL used to give 11-12 s of silence, then no address)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest

from authkit_setup import launch
from authkit_setup.errors import ApiConnectionError
from authkit_setup.output import Output
from authkit_setup.pipeline.wait import wait_until_ready
from authkit_setup.providers.base import Kind, Readiness, Store
from authkit_setup.providers.render import RenderClient
from tests.fakes.local_backend import CloudFakes
from tests.fakes.render_api import FAKE_RENDER_KEY
from tests.helpers import run_cli, run_cli_process
from tests.render_env import RenderWorld


def test_each_retry_says_what_failed_and_when_the_next_try_is(closed_port: int) -> None:
    notices: list[str] = []
    sleeps: list[float] = []
    client = RenderClient(
        token="rnd_test_token_for_retries",
        base_url=f"http://127.0.0.1:{closed_port}/v1",
        base_url_source="set by RENDER_API_URL",
        max_retries=3,
        sleep=sleeps.append,
        on_retry=notices.append,
    )
    with pytest.raises(ApiConnectionError) as caught:
        client.get("/services")
    assert len(notices) == 3 == len(sleeps)
    for number, (notice, slept) in enumerate(zip(notices, sleeps, strict=True), start=1):
        match = re.fullmatch(
            rf"Render API at 127\.0\.0\.1:{closed_port} refused the connection; "
            rf"retry {number} of 3 in (\d+(?:\.\d)?) s",
            notice,
        )
        assert match is not None, notice
        assert float(match.group(1)) == pytest.approx(slept, abs=0.51)
    assert str(caught.value) == (
        f"Render API at 127.0.0.1:{closed_port} (set by RENDER_API_URL) refused the "
        "connection after 4 tries: GET /services"
    )


def test_a_server_error_retry_names_the_status(closed_port: int) -> None:
    import httpx

    answers = iter([httpx.Response(503, json={"message": "busy"}), httpx.Response(200, json=[])])
    notices: list[str] = []
    client = RenderClient(
        token="rnd_test_token_for_retries",
        base_url="http://127.0.0.1:1/v1",
        transport=httpx.MockTransport(lambda request: next(answers)),
        sleep=lambda seconds: None,
        on_retry=notices.append,
    )
    assert client.get("/services") == []
    assert len(notices) == 1
    assert notices[0].startswith("Render API at 127.0.0.1:1 answered 503; retry 1 of 5 in ")


def test_unreachable_api_talks_on_stderr_and_names_the_variable(closed_port: int) -> None:
    result = run_cli_process(
        "render",
        "--service",
        "my-api",
        env={
            "RENDER_API_URL": f"http://127.0.0.1:{closed_port}/v1",
            "RENDER_API_KEY": "rnd_test_token_for_retries",
            "AUTHKIT_HTTP_RETRIES": "2",
        },
    )
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    retries = [line for line in lines if "; retry " in line]
    assert [line.split("; retry ")[1].split(" in ")[0] for line in retries] == ["1 of 2", "2 of 2"]
    assert (
        f"error: Render API at 127.0.0.1:{closed_port} (set by RENDER_API_URL) refused the "
        "connection after 3 tries: GET /services" in lines
    )
    assert "rnd_test_token_for_retries" not in result.output


@pytest.mark.parametrize("raw", ["-1", "many", "21"])
def test_bad_retry_count_is_a_usage_error(raw: str) -> None:
    result = run_cli_process(
        "render",
        "--service",
        "my-api",
        env={"RENDER_API_KEY": "rnd_test_token_for_retries", "AUTHKIT_HTTP_RETRIES": raw},
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == (
        f"error: AUTHKIT_HTTP_RETRIES={raw!r} is not a whole number from 0 to 20"
    )


def test_no_arguments_prints_the_help_with_the_command_list() -> None:
    result = run_cli_process()
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout == run_cli_process("--help").stdout
    assert "Commands" in result.stdout and "render" in result.stdout


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


class _StoresReadyAt:
    """A provider whose stores become available at fixed clock times: it counts the polls."""

    name = "render"
    kinds = frozenset({Kind.POSTGRES, Kind.REDIS})
    typical_ready = {Kind.POSTGRES: 60.0, Kind.REDIS: 20.0}

    def __init__(self, clock: _Clock, ready_at: dict[str, float]) -> None:
        self.clock = clock
        self.ready_at = ready_at
        self.polls: dict[str, list[float]] = {name: [] for name in ready_at}

    def refresh(self, store: Store) -> Store:
        self.polls[store.name].append(self.clock.now)
        ready = self.clock.now >= self.ready_at[store.name]
        return replace(
            store,
            status="available" if ready else "creating",
            readiness=Readiness.READY if ready else Readiness.PENDING,
        )


def _pending(kind: Kind, name: str) -> Store:
    return Store("render", kind, f"id-{name}", name, "ohio", "free", "unknown", Readiness.PENDING)


def _wait(ready_at: dict[str, float]) -> _StoresReadyAt:
    clock = _Clock()
    provider = _StoresReadyAt(clock, ready_at)
    stores = [_pending(Kind.POSTGRES, "authkit-db"), _pending(Kind.REDIS, "authkit-redis")]
    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    ready = wait_until_ready(
        [(provider, store) for store in stores],  # type: ignore[misc]
        out,
        timeout=900,
        sleep=clock.sleep,
        clock=clock,
    )
    assert [s.readiness for s in ready] == [Readiness.READY, Readiness.READY]
    return provider


def test_the_store_expected_last_is_watched_closely_the_other_sparingly() -> None:
    provider = _wait({"authkit-db": 20.0, "authkit-redis": 10.0})
    # Key Value (typically quicker): polled at 3, 6 and 12 s, where it is available.
    assert provider.polls["authkit-redis"] == [3.0, 6.0, 12.0]
    # Postgres, expected last (typically a minute): doubling until a quarter of that (15 s),
    # then a twentieth of the time waited, at least 1 s: seen at 20 s, 9 polls (12 with the
    # earlier "1 s, then a sixth of the time waited", which saw it at 20.5 s).
    assert provider.polls["authkit-db"] == [3.0, 6.0, 12.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0]


def test_when_the_quicker_kind_is_last_it_is_watched_closely_at_once() -> None:
    # Postgres ready first (seen at 6 s: a Render Postgres is not expected before 15 s, so its
    # polls double until then), Key Value late (at 40 s): once Postgres is seen ready, Key
    # Value is polled at once and then on the close schedule, not at its sparse 12 s, 24 s...
    provider = _wait({"authkit-db": 5.0, "authkit-redis": 40.0})
    assert provider.polls["authkit-db"] == [3.0, 6.0]
    redis_polls = provider.polls["authkit-redis"]
    assert redis_polls[:3] == [3.0, 6.0, 7.0]
    assert all(b - a <= max(1.0, a / 20) + 1e-9 for a, b in pairwise(redis_polls[1:]))
    assert redis_polls[-1] - 40.0 < 40.0 / 20


def test_stored_help_pages_are_what_typer_prints() -> None:
    """help.json is rendered by Typer itself; when a command's options change, this fails until
    `python -m authkit_setup.launch --write` renders the pages again."""
    stored = json.loads(launch.HELP_FILE.read_text(encoding="utf-8"))
    assert stored == launch.render_pages(), "run: python -m authkit_setup.launch --write"
    assert {"", "render", "check", "provision", "local", "local status"} <= set(stored)


@pytest.mark.parametrize("argv", [["--help"], ["render", "--help"], ["local", "status", "-h"]])
def test_help_is_answered_without_importing_typer(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from authkit_setup import launch\n"
        f"text = launch.stored_answer({argv!r})\n"
        "assert text and text.startswith('Usage: authkit-setup'), text\n"
        "assert 'typer' not in sys.modules and 'pydantic' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr


def test_console_entry_prints_the_same_help_as_typer() -> None:
    live = launch.render_pages()
    wide = run_cli_process("render", "--help", env={"COLUMNS": "100"})
    assert wide.exit_code == 0 and wide.stderr == ""
    assert wide.stdout == live["render"]
    # A narrow terminal is answered by Typer itself, wrapped to its width.
    narrow = run_cli_process("render", "--help", env={"COLUMNS": "60"})
    assert narrow.exit_code == 0
    assert narrow.stdout != live["render"]
    assert narrow.stdout == launch.render_pages(width=60)["render"]


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "--service", "x", "--help"],  # options before --help: Typer decides
        ["render", "--help", "--json"],
        ["no-such-command", "--help"],
    ],
)
def test_anything_but_a_plain_help_request_goes_to_typer(argv: list[str]) -> None:
    assert launch.stored_answer(argv) is None


# -- --yes on every command that changes something ----------------------------------------------

READ_ONLY = {"check", "status", "local status"}  # they change nothing, so they never ask


def _commands() -> dict[str, Any]:
    """Every command by its path (`local stop`), from the Typer app's Click objects."""
    import typer

    from authkit_setup.cli import app

    found: dict[str, Any] = {}

    def walk(command: Any, path: list[str]) -> None:
        if path:
            found[" ".join(path)] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_that_changes_something_takes_yes() -> None:
    commands = _commands()
    assert {"render", "provision", "migrations", "backup", "local", "local stop"} <= set(commands)
    for path, command in commands.items():
        options = {opt for param in command.params for opt in param.opts}
        if path in READ_ONLY:
            continue
        assert {"--yes", "-y"} <= options, path


def test_yes_where_nothing_asks_changes_nothing(render_world: RenderWorld) -> None:
    """The same outcome with and without --yes: on `migrations`, `backup`, `blueprint`,
    `local stop` and `local` before a subcommand; `local --yes destroy` is `destroy --yes`."""
    from tests.test_backup import add_postgres

    add_postgres(render_world.fake, "basic_256mb")
    service = str(render_world.service["name"])
    runs = [
        ("migrations", "--service", service, "--command", "pnpm db:push", "--dry-run", "--json"),
        ("backup", "--service", service, "--list", "--json"),
        ("blueprint", "--service", service, "--json"),
        ("local", "stop", "--json"),
    ]
    for args in runs:
        plain = run_cli(*args)
        with_yes = run_cli(*args, "--yes")
        assert plain.exit_code == 0, plain.output
        assert (with_yes.exit_code, with_yes.stdout) == (0, plain.stdout), args
    without = run_cli("local", "destroy", "--json")
    assert without.exit_code == 2 and "pass --yes" in without.stderr  # no terminal to ask
    before = run_cli("local", "--yes", "destroy", "--json")
    assert before.exit_code == 0, before.output
    assert before.json()["removed"] == []


def test_provision_takes_yes(cloud_fakes: CloudFakes) -> None:
    args = ("provision", "--postgres", "neon", "--redis", "upstash", "--dry-run", "--json")
    plain = run_cli(*args)
    with_yes = run_cli(*args, "-y")
    assert plain.exit_code == 0, plain.output
    assert (with_yes.exit_code, with_yes.json()) == (0, plain.json())


# -- every missing credential named at once -----------------------------------------------------


def test_provision_names_every_missing_credential_at_once(
    cloud_fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NEON_API_KEY", "UPSTASH_EMAIL", "UPSTASH_API_KEY"):
        monkeypatch.delenv(name)
    result = run_cli("provision", "--postgres", "neon", "--redis", "upstash", "--env-file", ".env")
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines() == [
        "error: 3 credentials missing: Neon API key (--neon-api-key or NEON_API_KEY); Upstash "
        "account email (--upstash-email or UPSTASH_EMAIL); Upstash API key (--upstash-api-key or "
        "UPSTASH_API_KEY). Pass the flags or set the variables (in the environment or in .env)",
        "hint: get them at Neon Console → Account settings → API keys; console.upstash.com → "
        "Account → Management API",
    ]
    assert all(fake.count() == 0 for fake in cloud_fakes.all)


def test_render_names_the_render_key_and_the_providers_credentials_at_once(
    render_world: RenderWorld, cloud_fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RENDER_API_KEY", "SUPABASE_ACCESS_TOKEN", "UPSTASH_API_KEY"):
        monkeypatch.delenv(name)
    render_world.fake.reset_log()
    args = ("--service", "authkit-api", "--postgres", "supabase", "--redis", "upstash", "--json")
    result = run_cli("render", *args)
    assert result.exit_code == 3, result.output
    error = result.json()["error"]
    assert error["code"] == "missing_credentials"
    assert error["message"].startswith(
        "3 credentials missing: Render API key (--api-key or RENDER_API_KEY); Supabase access "
        "token (--supabase-access-token or SUPABASE_ACCESS_TOKEN); Upstash API key "
        "(--upstash-api-key or UPSTASH_API_KEY). "
    )
    # With the Render key, the providers' two are still named together.
    monkeypatch.setenv("RENDER_API_KEY", FAKE_RENDER_KEY)
    result = run_cli("render", *args)
    assert result.exit_code == 3, result.output
    assert result.json()["error"]["message"].startswith(
        "2 credentials missing: Supabase access token (--supabase-access-token or "
        "SUPABASE_ACCESS_TOKEN); Upstash API key (--upstash-api-key or UPSTASH_API_KEY). "
    )
    assert render_world.fake.count() == 0
    assert all(fake.count() == 0 for fake in cloud_fakes.all)


# -- help: every option described, placeholders a person understands ---------------------------

PYTHON_TYPES = {"str", "int", "float", "bool", "bytes", "text", "integer", "list", "dict", "tuple"}


def _options_help() -> list[tuple[str, Any, str, str]]:
    """(command, option, its placeholder column, its help column) for every option of every
    command, as Click renders them in --help."""
    import click

    rows = []
    for path, command in _commands().items():
        context = click.Context(command, info_name=path)
        for param in command.params:
            record = param.get_help_record(context)
            if param.param_type_name == "option" and record is not None:
                rows.append((path, param, record[0], record[1]))
    return rows


def test_every_option_has_help_and_a_placeholder_a_person_understands() -> None:
    rows = _options_help()
    assert len(rows) > 100
    for path, option, names, text in rows:
        where = f"{path} {option.opts[0]}"
        assert (option.help or "").strip(), f"{where}: no help text"
        if option.is_flag:
            continue
        placeholder = names.rsplit(" ", 1)[-1]
        assert re.fullmatch(r"<[a-z][a-z-]*>", placeholder), f"{where}: {placeholder}"
        assert placeholder.strip("<>") not in PYTHON_TYPES, f"{where}: {placeholder}"
        for variable in re.findall(r"\[env var: ([A-Z_]+)\]", text):
            assert text.count(f"env var: {variable}") == 1, f"{where}: {text}"


def test_each_secret_option_names_its_file_form() -> None:
    from authkit_setup.settings import SECRET_FLAGS

    seen = set()
    for path, option, _, text in _options_help():
        flag = option.opts[0]
        if flag in SECRET_FLAGS:
            seen.add(flag)
            assert f"{flag}-file <path> (- reads stdin)" in text, f"{path} {flag}: {text}"
    assert seen == set(SECRET_FLAGS)


def test_render_help_shows_the_workspace_variable_once() -> None:
    page = launch.render_pages()["render"]
    assert page.count("RENDER_WORKSPACE") == 1
    assert "--postgres-allow-cidr <cidr>" in page and "--timeout <seconds>" in page


# -- "not verifiable": said once, naming the service --------------------------------------------


def test_not_verifiable_is_said_once_and_names_the_service(render_world: RenderWorld) -> None:
    # The fake's Key Value gets an empty allow list (Render's default): not reachable from here.
    result = run_cli("render", "--service", "authkit-api")
    assert result.exit_code == 0, result.output
    assert result.output.count("not verifiable from here") == 1
    assert "warning: authkit-redis: not verifiable" not in result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "not verifiable" in line]
    assert line.startswith("  - not checked: not verifiable from here: authkit-redis's IP allow")
    assert line.endswith(
        "To verify, add --verify-inside (one Render job checks it from inside the service), "
        "re-run with --redis-allow-cidr <this machine's IP>/32, or run "
        "`authkit-setup check --service authkit-api` from a Render shell in the same region"
    )


@pytest.mark.parametrize(
    ("service", "ways"),
    [
        (
            "My API",
            "add --verify-inside (one Render job checks it from inside the service), re-run "
            "with --redis-allow-cidr <this machine's IP>/32, or run `authkit-setup check "
            "--service 'My API'` from a Render shell in the same region",
        ),
        (
            None,
            "re-run with --redis-allow-cidr <this machine's IP>/32, or run `authkit-setup "
            "check` where the store admits connections",
        ),
    ],
)
def test_not_verifiable_names_a_service_as_a_shell_reads_it(service: str | None, ways: str) -> None:
    from authkit_setup.pipeline.plan import StorePlan
    from authkit_setup.pipeline.verify import verify_stores
    from authkit_setup.providers.base import ConnectionInfo, StoreSpec

    info = ConnectionInfo(
        app_url="redis://red-x:6379",
        external_url="rediss://red-x:pw@example.invalid:6379",
        external_reachable=False,
        unreachable_reason="its IP allow list is empty",
    )
    plan = StorePlan(StoreSpec(Kind.REDIS, "authkit-redis", "ohio", "free"), None, None, info)  # type: ignore[arg-type]
    stderr = io.StringIO()
    out = Output(stdout=io.StringIO(), stderr=stderr)
    (result,) = verify_stores([plan], out, timeout=1, service=service)
    assert result.skipped and result.reason == (
        f"not verifiable from here: its IP allow list is empty. To verify, {ways}"
    )
    assert stderr.getvalue() == "verifying nothing reachable from here\n"
