"""`authkit-setup local` gives a safe default, also when run as root (as CI and containers are):
tested against the real servers it starts.

- Redis does not run as root: as `nobody` when started by root, else as the calling user.
- The app's Redis user (the one in REDIS_URL) runs everything AuthKit needs (GET, SET, INCR,
  EXPIRE, EVAL, PING, pub/sub) and nothing in @dangerous (CONFIG, MODULE, DEBUG, SAVE…), not even
  from a script; maxmemory-policy is in the config file.
- PostgreSQL's unix socket lets only the calling OS user in as the superuser without a password.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
from dotenv import dotenv_values

from tests.helpers import run_cli
from tests.test_local import _no_servers_left  # noqa: F401  (autouse: no local server left)


@pytest.fixture
def local_up(tmp_path: Path) -> dict[str, Any]:
    result = run_cli("local", "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert isinstance(doc, dict) and doc["ok"] is True
    return doc


def server(doc: dict[str, Any], name: str) -> dict[str, Any]:
    [entry] = [s for s in doc["servers"] if s["server"] == name]
    assert isinstance(entry, dict)
    return entry


def process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # the effective uid
    raise AssertionError(f"no Uid line for pid {pid}")


def app_redis() -> redis.Redis:
    url = dotenv_values(".env")["REDIS_URL"]
    assert url is not None
    return redis.Redis.from_url(url, socket_timeout=5, protocol=2)


def test_redis_does_not_run_as_root(local_up: dict[str, Any]) -> None:
    uid = process_uid(server(local_up, "redis")["pid"])
    if os.geteuid() == 0:
        assert uid == pwd.getpwnam("nobody").pw_uid  # root hands it to `nobody`
    else:
        assert uid == os.geteuid()  # a normal user runs it as themselves
    assert uid != 0


@pytest.mark.usefixtures("local_up")
def test_the_app_redis_user_has_what_authkit_needs() -> None:
    with app_redis() as client:
        assert client.ping() is True
        assert client.set("session:1", "x") is True and client.get("session:1") == b"x"
        assert client.incr("rate:1") == 1 and client.expire("rate:1", 60) is True
        script = "redis.call('INCR', KEYS[1]); return redis.call('GET', KEYS[1])"
        assert client.eval(script, 1, "rate:1") == b"2"
        pubsub = client.pubsub()
        pubsub.subscribe("events")
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        assert client.publish("events", "hello") == 1
        assert pubsub.get_message(timeout=5)["data"] == b"hello"
        pubsub.close()


DANGEROUS = [
    ("CONFIG", "GET", "dir"),
    ("CONFIG", "SET", "dir", "/tmp"),
    ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
    ("MODULE", "LOAD", "/tmp/evil.so"),
    ("DEBUG", "SLEEP", "0"),
    ("SAVE",),
    ("BGSAVE",),
    ("BGREWRITEAOF",),
    ("FLUSHALL",),
    ("SHUTDOWN", "NOSAVE"),
    ("ACL", "SETUSER", "default", "+@all"),
    ("REPLICAOF", "127.0.0.1", "1"),
]


@pytest.mark.usefixtures("local_up")
def test_the_app_redis_user_cannot_run_dangerous_commands() -> None:
    """One server for the whole list (starting one per command would take minutes)."""
    with app_redis() as client:
        for command in DANGEROUS:
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
        assert client.ping() is True  # still there: SHUTDOWN and DEBUG did nothing
        # Nor from a script: ACLs apply to redis.call as well.
        with pytest.raises(
            redis.exceptions.ResponseError, match="user executing the script can.t run this command"
        ):
            client.eval("return redis.call('FLUSHALL')", 0)


def test_maxmemory_policy_is_in_the_config_file(local_up: dict[str, Any]) -> None:
    state = json.loads(Path(".authkit/state.json").read_text())
    pgdata = Path(state["postgres"]["data_dir"])
    redis_dir = pgdata.parent / "redis"
    conf = (redis_dir / "redis.conf").read_text().splitlines()
    assert "maxmemory-policy noeviction" in conf
    assert not any(line.startswith("requirepass") for line in conf)
    assert [line.split()[:4] for line in conf if line.startswith("user default")] == [
        ["user", "default", "reset", "on"]
    ]
    assert conf[-1].endswith("~* &* +@all -@dangerous")
    assert state["redis"]["password"] not in "\n".join(conf)  # only its SHA-256


def _psql_over_socket(
    doc: dict[str, Any], user: str, *, as_nobody: bool
) -> subprocess.CompletedProcess[str]:
    from authkit_setup.local.postgres_server import EmbeddedPostgres

    pg = server(doc, "postgres")
    data_dir = Path(pg["data_dir"])
    lines = (data_dir / "postmaster.pid").read_text().splitlines()
    socket_dir, port = lines[4].strip(), lines[3].strip()
    state = json.loads(Path(".authkit/state.json").read_text())
    bin_dir = EmbeddedPostgres(
        data_dir, port=int(port), password=state["postgres"]["superuser_password"]
    ).bin_dir
    nobody = pwd.getpwnam("nobody")
    return subprocess.run(
        [str(bin_dir / "psql"), "-h", socket_dir, "-p", port, "-U", user, "-d", "postgres"]
        + ["-w", "-Atc", "select current_user"],
        capture_output=True,
        text=True,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
        user=nobody.pw_uid if as_nobody else None,
        group=nobody.pw_gid if as_nobody else None,
        extra_groups=[] if as_nobody else None,
        timeout=30,
        check=False,
    )


def test_the_unix_socket_trusts_only_the_calling_user(local_up: dict[str, Any]) -> None:
    me = _psql_over_socket(local_up, "postgres", as_nobody=False)
    assert (me.returncode, me.stdout.strip()) == (0, "postgres"), me.stderr
    app = _psql_over_socket(local_up, "authkit_user", as_nobody=False)
    assert app.returncode == 2 and "no password supplied" in app.stderr
    if os.geteuid() == 0:
        # `nobody` owns the socket folder (the server runs as it), so it can reach the socket.
        other = _psql_over_socket(local_up, "postgres", as_nobody=True)
        assert other.returncode == 2
        assert 'Peer authentication failed for user "postgres"' in other.stderr
    else:
        hba = (Path(server(local_up, "postgres")["data_dir"]) / "pg_hba.conf").read_text()
        assert "trust" not in hba.split("# TCP")[1]


def test_a_redis_an_older_version_started_in_the_project_is_still_reached(tmp_path: Path) -> None:
    """Older versions ran Redis as root in .authkit/redis: status and stop must still find it
    (the next start then runs a hardened one)."""
    from authkit_setup.local.redis_server import EmbeddedRedis

    assert run_cli("local").exit_code == 0
    assert run_cli("local", "stop").exit_code == 0
    state = json.loads(Path(".authkit/state.json").read_text())
    legacy = EmbeddedRedis(
        tmp_path / ".authkit" / "redis",
        port=state["redis"]["port"],
        password=state["redis"]["password"],
    )
    legacy.start()
    pid = legacy.pid
    assert pid is not None
    status = run_cli("local", "status", "--json")
    assert server(status.json(), "redis")["pid"] == pid
    assert run_cli("local", "stop").exit_code == 0
    assert legacy.pid is None
    again = run_cli("local", "--json")
    assert again.exit_code == 0, again.output
    assert process_uid(server(again.json(), "redis")["pid"]) != 0
