"""`check` answered by the entry point without Typer (issue 14's speed target): a plain command
line is parsed with the option table Typer declared (launch.plain_params), anything else goes to
Typer; either way the parameters, output and exit code are Typer's."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st

from authkit_setup import launch
from authkit_setup.cli import app
from authkit_setup.cli import main as typer_main
from tests.conftest import PgServer, RedisServer
from tests.helpers import CliResult

TABLE: list[dict[str, Any]] = json.loads(launch.OPTIONS_FILE.read_text(encoding="utf-8"))["check"]
COMMAND = typer.main.get_command(app).commands["check"]  # type: ignore[attr-defined]


def typer_params(args: list[str]) -> dict[str, Any] | None:
    """What Typer hands the command for `args`; None when it refuses the line (or prints help)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            context = COMMAND.make_context("check", list(args))
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return None
    return dict(context.params)


def test_the_stored_option_table_is_what_typer_declares() -> None:
    """options.json is written by `python -m authkit_setup.launch --write`, from Typer."""
    stored = json.loads(launch.OPTIONS_FILE.read_text(encoding="utf-8"))
    assert stored == launch.option_tables(), "run: python -m authkit_setup.launch --write"


PLAIN = [
    [],
    ["--database-url", "postgresql://u:p@db.example.com/app", "--redis-url", "redis://r:6379"],
    ["--json", "--timeout", "3"],
    ["--timeout=0.1", "--env-file", "prod.env"],
    ["--timeout", "300", "--timeout", ".5"],  # the last one wins, as in Click
    ["--service", "my-api", "--workspace", "tea-1", "--api-key", "rnd_x", "--json"],
    ["--database-url=-x", "--redis-url", "-"],  # a glued value may start with -; `-` is a value
    ["--env-file", ""],
]


@pytest.mark.parametrize("args", PLAIN)
def test_a_plain_line_is_parsed_as_typer_parses_it(args: list[str]) -> None:
    params = launch.plain_params(TABLE, args)
    assert params is not None, "this line should not need Typer"
    assert params == typer_params(args)


TYPERS = [
    ["--help"],
    ["-h"],
    ["--databse-url", "x"],  # a typo: Typer suggests the option
    ["extra"],
    ["--", "--json"],
    ["--timeout", "0"],  # out of range: Typer's message
    ["--timeout", "abc"],
    ["--timeout", "1e1"],  # Typer reads it; only plain decimals are read here
    ["--timeout", "nan"],
    ["--json=1"],
    ["--database-url"],  # no value
    ["--database-url", "--json"],  # Click takes `--json` as the URL; leave that to it
    ["--neon-api-key-file", "key.txt"],  # not one of check's options
]


@pytest.mark.parametrize("args", TYPERS)
def test_anything_but_a_plain_line_goes_to_typer(args: list[str]) -> None:
    assert launch.plain_params(TABLE, args) is None


TOKENS = st.sampled_from(
    [
        *(opt for option in TABLE for opt in option["opts"]),
        "--help",
        "-h",
        "--",
        "-",
        "--json=1",
        "--timeout=3",
        "--timeout=0",
        "--redis-url=",
        "--databse-url",
        "",
        "x",
        "-x",
        "3",
        "0",
        "0.1",
        "300",
        "300.5",
        ".5",
        "5.",
        "1e1",
        "+3",
        " 3",
        "nan",
        "1_0",
        "postgresql://u:p@h/d",
        "\udcff",
    ]
)


@given(args=st.lists(TOKENS, max_size=8))
@settings(max_examples=400, deadline=None)
def test_whatever_is_parsed_here_is_what_typer_would_pass(args: list[str]) -> None:
    params = launch.plain_params(TABLE, args)
    if params is not None:
        assert params == typer_params(args), args


def test_an_option_whose_variable_is_set_goes_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    table = [dict(TABLE[0], envvar=["AUTHKIT_TEST_URL"])]
    assert launch.plain_params(table, []) is not None
    monkeypatch.setenv("AUTHKIT_TEST_URL", "x")
    assert launch.plain_params(table, []) is None  # Click reads the variable
    assert launch.plain_params(table, ["--database-url", "y"]) is not None  # the flag wins


# -- the same run, with and without Typer ---------------------------------------------------


def run(entry: str, args: list[str]) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if entry == "launch":
            code = launch.fast_exit_code(args)
            assert code is not None, "launch handed the line to Typer"
        else:
            try:
                typer_main(args)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    return CliResult(code, _steady(out.getvalue()), _steady(err.getvalue()))


def _steady(text: str) -> str:
    """Timings differ from run to run; everything else must not."""
    text = re.sub(r"\d+(\.\d+)? ms", "N ms", text)
    return re.sub(r'"(ms|latency_ms)": [0-9.]+', r'"\1": N', text)


@pytest.fixture(scope="module")
def urls(pg: PgServer, redis_srv: RedisServer) -> tuple[str, str]:
    database = pg.create_database_and_role("authkit_launch", "authkit_launch_user", "Launch-pw-9")
    return database, redis_srv.add_acl_user("authkit_launch_user", "Launch-pw-9")


LINES = {
    "pass": ["--database-url", "{pg}", "--redis-url", "{redis}"],
    "pass-json": ["--database-url", "{pg}", "--redis-url", "{redis}", "--json", "--timeout=2"],
    "fail": ["--database-url", "postgresql://u:p@127.0.0.1:{closed}/db", "--timeout", "1"],
    "fail-json": ["--redis-url", "redis://:p@127.0.0.1:{closed}/0", "--json"],
    "from-file": ["--database-url-file", "{file}", "--redis-url", "{redis}"],
    "from-env-file": ["--env-file", "{env_file}"],
    "nothing": [],
    "no-env-file": ["--env-file", "missing.env"],
    "unreadable-file": ["--database-url-file", "missing.txt"],
    "service-and-url": ["--service", "my-api", "--database-url", "{pg}"],
    "service-json": ["--service", "my-api", "--json"],  # no API key: a credentials error
}


@pytest.mark.parametrize("line", sorted(LINES))
def test_launch_runs_check_as_typer_does(
    line: str, urls: tuple[str, str], closed_port: int, tmp_path: Path
) -> None:
    (tmp_path / "url.txt").write_text(urls[0] + "\n")
    (tmp_path / "ci.env").write_text(f"DATABASE_URL={urls[0]}\nREDIS_URL={urls[1]}\n")
    values = {
        "pg": urls[0],
        "redis": urls[1],
        "closed": str(closed_port),
        "file": str(tmp_path / "url.txt"),
        "env_file": str(tmp_path / "ci.env"),
    }
    args = ["check", *(arg.format(**values) for arg in LINES[line])]
    fast, slow = run("launch", args), run("typer", args)
    assert fast == slow
    assert "Launch-pw-9" not in fast.stdout + fast.stderr


def test_check_starts_without_typer_pydantic_or_rich(closed_port: int) -> None:
    from benchmarks.bench_imports import measure

    url = f"postgresql://u:p@127.0.0.1:{closed_port}/db"
    imports = measure("check", "--database-url", url, "--timeout", "1")
    assert imports.exit_code == 1  # the tcp rung fails: the check ran
    assert "authkit_setup.check.urls" in imports.modules
    loaded = {name.split(".")[0] for name in imports.modules}
    assert loaded.isdisjoint({"typer", "click", "pydantic", "rich", "httpx"}), sorted(loaded)


def test_a_line_for_typer_still_gets_typer_s_answer(closed_port: int) -> None:
    from tests.helpers import run_cli_process

    result = run_cli_process("check", "--timeout", "0")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Invalid value for '--timeout'"), result.stderr


def test_two_ladders_never_import_their_drivers_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each ladder imports its driver under one lock (diagnostics/drivers.py)."""
    import importlib
    import threading
    import time

    from authkit_setup.diagnostics import drivers

    inside: list[int] = []
    most: list[int] = [0]

    def slow_import(name: str) -> None:
        inside.append(1)
        most[0] = max(most[0], len(inside))
        time.sleep(0.1)
        inside.pop()

    monkeypatch.setattr(importlib, "import_module", slow_import)
    threads = [threading.Thread(target=drivers.load, args=(t,)) for t in ("postgres", "redis")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert most == [1]


def test_render_imports_the_check_drivers_while_its_stores_become_ready() -> None:
    """`pipeline.verify.prepare`: a wait ahead starts the driver imports in the background; with
    every store ready (nothing to wait for) nothing is started."""
    import subprocess
    import sys

    script = """
import sys, time
from authkit_setup.kinds import Kind
from authkit_setup.pipeline.plan import StorePlan
from authkit_setup.pipeline.verify import prepare
from authkit_setup.providers.base import Readiness, Store, StoreSpec

def plan(kind, readiness):
    store = Store(provider="render", kind=kind, id="x", name="x", region="ohio", plan="free",
                  status="s", readiness=readiness)
    return StorePlan(spec=StoreSpec(kind=kind, name="x", region="ohio", plan="free"),
                     provider=None, existing=None, store=store)

prepare([plan(Kind.POSTGRES, Readiness.READY), plan(Kind.REDIS, Readiness.READY)])
time.sleep(0.3)
assert "psycopg" not in sys.modules and "redis" not in sys.modules, "preloaded with no wait"
prepare([plan(Kind.POSTGRES, Readiness.PENDING), plan(Kind.REDIS, Readiness.READY)])
deadline = time.monotonic() + 20
while not {"psycopg", "redis"} <= set(sys.modules) and time.monotonic() < deadline:
    time.sleep(0.05)
assert {"psycopg", "redis", "authkit_setup.diagnostics.postgres"} <= set(sys.modules)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
