"""Secrets off the command line: every credential flag has a `-file` form (`-` reads stdin),
and its help says that a value given as a flag shows in `ps` and the shell history."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from authkit_setup.settings import SECRET_FLAGS
from tests.conftest import PgServer
from tests.fakes.fixtures import MakeRenderFake
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI
from tests.helpers import assert_no_secret, run_cli

SECRET = "Flag-File-Secret!7/y"


@pytest.fixture(scope="module")
def app_db(pg: PgServer) -> str:
    return pg.create_database_and_role("authkit_flags", "authkit_flags_user", SECRET)


def test_database_url_from_a_file(app_db: str) -> None:
    Path("db-url").write_text(app_db + "\n")
    result = run_cli("check", "--database-url-file", "db-url", "--json")
    assert result.exit_code == 0, result.output
    assert_no_secret(result, SECRET)
    assert [c["target"] for c in result.json()["checks"]] == ["postgres"]
    assert "DATABASE_URL from the command line" in result.stderr


def test_database_url_from_stdin(app_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(app_db + "\r\n"))
    result = run_cli("check", "--database-url-file=-", "--json")
    assert result.exit_code == 0, result.output
    assert_no_secret(result, SECRET)
    assert result.json()["checks"][0]["ok"] is True


def test_stdin_from_a_real_pipe_keeps_the_url_out_of_argv(app_db: str) -> None:
    """The README's example, in a child process: the URL is piped, argv holds only '-'."""
    proc = subprocess.run(
        [sys.executable, "-m", "authkit_setup", "check", "--database-url-file", "-", "--json"],
        input=app_db,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert '"ok": true' in proc.stdout


def test_stdin_serves_one_flag_only() -> None:
    result = run_cli("check", "--database-url-file", "-", "--redis-url-file", "-")
    assert result.exit_code == 2
    assert result.stderr == "error: --redis-url-file -: stdin can be read for one flag only\n"


def test_render_api_key_from_a_file(
    make_render_fake: MakeRenderFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake: FakeRenderAPI = make_render_fake()
    fake.add_service("authkit-api", region="ohio", plan="starter")
    monkeypatch.setenv("RENDER_API_URL", fake.base_url)
    Path("render-key").write_text(FAKE_RENDER_KEY + "\n")
    result = run_cli("status", "--service", "authkit-api", "--api-key-file", "render-key", "--json")
    monkeypatch.setenv("RENDER_API_KEY", FAKE_RENDER_KEY)
    via_env = run_cli("status", "--service", "authkit-api", "--json")
    monkeypatch.delenv("RENDER_API_KEY")
    assert result.exit_code == via_env.exit_code == 1  # nothing provisioned yet
    assert result.json()["service"] == via_env.json()["service"]
    assert result.json()["service"]["name"] == "authkit-api"
    assert_no_secret(result, FAKE_RENDER_KEY)
    Path("render-key").write_text("rnd_not_the_key_at_all\n")
    rejected = run_cli("status", "--service", "authkit-api", "--api-key-file", "render-key")
    assert rejected.exit_code == 3, rejected.output
    assert "rnd_not_the_key_at_all" not in rejected.output


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("check", ["--database-url", "--redis-url", "--api-key"]),
        ("status", ["--api-key"]),
        (
            "provision",
            [
                "--neon-api-key",
                "--supabase-access-token",
                "--supabase-db-password",
                "--upstash-api-key",
            ],
        ),
    ],
)
def test_credential_flags_say_they_show_in_ps(command: str, flags: list[str]) -> None:
    result = run_cli(command, "--help")
    assert result.exit_code == 0
    offered = [f for f in SECRET_FLAGS if re.search(rf"^\s+{f} ", result.stdout, re.M)]
    assert set(flags) <= set(offered)
    text = "".join(result.stdout.split())  # click wraps lines, also inside flag names
    for flag in offered:
        assert f"{flag}-file<path>(-readsstdin)" in text, flag
    assert text.count("showsin`ps`andshellhistory") == len(offered)
