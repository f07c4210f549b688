"""`authkit-setup local`: PostgreSQL and Redis for development, from pip wheels, per project.

The same pipeline as the cloud providers, on this machine:

    paths → plan (ports, passwords; stop before any change) → start servers → database + user
          → .env → .gitignore → verify

Everything lives in one data folder, by default `.authkit/` beside the .env file:

    .authkit/state.json   ports and passwords (mode 600), so a re-run reuses them
    .authkit/postgres/    the PostgreSQL cluster (PGDATA)
    .authkit/redis/       Redis' append-only file, config and log

Running as root: PostgreSQL refuses to, so it runs as `nobody` (accounts.py), which must be able
to traverse every parent of PGDATA. A project under /root (mode 700) fails that, so with the
default data folder the cluster moves to a per-project folder under /var/tmp (named after a hash
of the data folder's path, recorded in state.json); the rest stays in `.authkit/`. A `--data-dir`
given explicitly is never moved: it fails with a message saying where to put it instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from authkit_setup.diagnostics.model import CheckResult
from authkit_setup.envfile import write_private_file
from authkit_setup.errors import LocalServerError, UsageError
from authkit_setup.kinds import Kind
from authkit_setup.local.accounts import postgres_run_as
from authkit_setup.local.postgres_server import EmbeddedPostgres
from authkit_setup.local.processes import free_port
from authkit_setup.local.redis_server import APP_USER_RULES, EmbeddedRedis
from authkit_setup.secrets import mask_url, register
from authkit_setup.targets.base import EnvChange as EnvChange

# The two servers are the two kinds of store (kinds.py declares their titles, flags, env vars).
Server = Kind
SERVERS: tuple[Server, ...] = tuple(Kind)
# created: initdb ran now; started: existing data, was stopped; restarted: moved to another
# port or password; reused: already running as wanted; stopped / not_running: `local stop`.
ServerAction = Literal["created", "started", "restarted", "reused", "stopped", "not_running"]

HOST = "127.0.0.1"
DATABASE = "authkit"
DB_USER = "authkit_user"
SUPERUSER = "postgres"
REDIS_USER = "default"
DEFAULT_DATA_DIR_NAME = ".authkit"
STATE_NAME = "state.json"
LOCK_NAME = ".lock"
POSTGRES_DIR_NAME = "postgres"
REDIS_DIR_NAME = "redis"
STATE_VERSION = 1
FALLBACK_PREFIX = "authkit-local-"
# /var/tmp survives reboots (FHS 3.0, 5.15); /tmp may be a tmpfs.
PERSISTENT_TMP = Path("/var/tmp")

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class LocalPaths:
    """Where the .env file and the data folder are (absolute)."""

    env_file: Path
    data_dir: Path
    data_dir_given: bool

    @property
    def project_dir(self) -> Path:
        return self.env_file.parent

    @property
    def state_file(self) -> Path:
        return self.data_dir / STATE_NAME

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / REDIS_DIR_NAME

    @property
    def postgres_dir(self) -> Path:
        """PGDATA unless root had to move it (see `fallback_dir`)."""
        return self.data_dir / POSTGRES_DIR_NAME

    @property
    def fallback_dir(self) -> Path:
        """The per-project folder under the system temp dir for PGDATA when root needs one."""
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        base = PERSISTENT_TMP if PERSISTENT_TMP.is_dir() else Path(tempfile.gettempdir())
        return base / f"{FALLBACK_PREFIX}{digest}"


def resolve_paths(env_file: Path, data_dir: Path | None) -> LocalPaths:
    """Absolute paths from the options; a usage error for a folder where a file belongs etc."""
    env = Path(os.path.abspath(env_file))
    if env.is_dir():
        raise UsageError(f"--env-file {env_file} is a folder, expected a .env file")
    if not env.parent.is_dir():
        raise UsageError(f"--env-file {env_file}: the folder {env.parent} does not exist")
    data = Path(os.path.abspath(data_dir)) if data_dir is not None else env.parent / ".authkit"
    if data.exists() and not data.is_dir():
        raise UsageError(f"--data-dir {data_dir or data} is a file, expected a folder")
    if data == env.parent:
        raise UsageError(
            f"--data-dir {data_dir} is the project folder itself; use a folder of its own "
            f"such as {DEFAULT_DATA_DIR_NAME}"
        )
    return LocalPaths(env_file=env, data_dir=data, data_dir_given=data_dir is not None)


# --------------------------------------------------------------------------- state


@dataclass
class PostgresState:
    port: int
    data_dir: Path
    superuser_password: str
    password: str  # authkit_user's
    database: str = DATABASE
    user: str = DB_USER


@dataclass
class RedisState:
    port: int
    password: str  # the `default` user's (requirepass)


@dataclass
class LocalState:
    """What `state.json` remembers between runs: ports and passwords (hence mode 600)."""

    postgres: PostgresState
    redis: RedisState

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "postgres": {
                "port": self.postgres.port,
                "data_dir": str(self.postgres.data_dir),
                "superuser": SUPERUSER,
                "superuser_password": self.postgres.superuser_password,
                "database": self.postgres.database,
                "user": self.postgres.user,
                "password": self.postgres.password,
            },
            "redis": {"port": self.redis.port, "password": self.redis.password},
        }

    @classmethod
    def from_json(cls, doc: Any) -> LocalState:
        pg, rd = doc["postgres"], doc["redis"]
        state = cls(
            postgres=PostgresState(
                port=_port(pg["port"]),
                data_dir=Path(str(pg["data_dir"])),
                superuser_password=str(pg["superuser_password"]),
                password=str(pg["password"]),
                database=str(pg.get("database", DATABASE)),
                user=str(pg.get("user", DB_USER)),
            ),
            redis=RedisState(port=_port(rd["port"]), password=str(rd["password"])),
        )
        if not state.postgres.data_dir.is_absolute():
            raise ValueError("postgres.data_dir is not an absolute path")
        return state


def _port(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ValueError(f"{value!r} is not a port")
    return value


def load_state(paths: LocalPaths) -> LocalState | None:
    """The remembered state, None when there is none; an error when it cannot be read."""
    try:
        text = paths.state_file.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LocalServerError(f"{paths.state_file} cannot be read ({exc.strerror})") from None
    try:
        state = LocalState.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LocalServerError(
            f"{paths.state_file} is damaged ({type(exc).__name__}: {exc})",
            hint="restore it, or start over with `authkit-setup local destroy --yes`",
        ) from None
    for secret in (state.postgres.superuser_password, state.postgres.password):
        register(secret)
    register(state.redis.password)
    return state


def save_state(paths: LocalPaths, state: LocalState) -> None:
    data = json.dumps(state.to_json(), indent=2) + "\n"
    write_private_file(paths.state_file, data.encode())


def _new_password() -> str:
    # URL-safe, so it needs no quoting in a URL or a .env file.
    password = secrets.token_urlsafe(24)
    register(password)
    return password


# --------------------------------------------------------------------------- reports


@dataclass
class ServerStatus:
    server: Server
    port: int
    pid: int | None
    data_dir: Path
    log: Path
    action: ServerAction | None = None
    url: str | None = None
    host: str = HOST

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def title(self) -> str:
        return self.server.display_name

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "server": self.server,
            "host": self.host,
            "port": self.port,
            "pid": self.pid,
            "running": self.running,
            "data_dir": str(self.data_dir),
            "log": str(self.log),
        }
        if self.action is not None:
            doc["action"] = self.action
        if self.url is not None:
            doc["url"] = mask_url(self.url)
        return doc


@dataclass
class UpReport:
    paths: LocalPaths
    servers: list[ServerStatus]
    database: dict[str, str]
    env: list[EnvChange]
    gitignore: dict[str, str | None]
    notes: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "env_file": str(self.paths.env_file),
            "data_dir": str(self.paths.data_dir),
            "servers": [s.to_json() for s in self.servers],
            "database": self.database,
            "env": [e.to_json() for e in self.env],
            "gitignore": self.gitignore,
            "notes": list(self.notes),
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass
class LocalStatusReport:
    paths: LocalPaths
    servers: list[ServerStatus]
    removed: list[Path] = field(default_factory=list)
    env: list[EnvChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # A `local status` report gates like the cloud `status`: ok only while both servers run
    # (a stopped one, or none set up here, is not ok). Stop and destroy are ok when done.
    gates: bool = False
    destroyed: bool = False  # a `local destroy` report: its document says what went

    @property
    def stopped(self) -> list[ServerStatus]:
        return [s for s in self.servers if not s.running]

    @property
    def ok(self) -> bool:
        return not self.gates or (bool(self.servers) and not self.stopped)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": self.ok,
            "env_file": str(self.paths.env_file),
            "data_dir": str(self.paths.data_dir),
            "servers": [s.to_json() for s in self.servers],
        }
        if self.destroyed:
            doc["removed"] = [str(p) for p in self.removed]
            doc["env"] = [e.to_json() for e in self.env]
            doc["notes"] = list(self.notes)
        return doc


# --------------------------------------------------------------------------- .env and .gitignore


def points_at_local(url: str, server: Server, ports: set[int]) -> bool:
    """Whether `url` is a URL of the local `server` (loopback host, one of its ports)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    schemes = ("postgres", "postgresql") if server == "postgres" else ("redis",)
    return parts.scheme in schemes and parts.hostname in _LOOPBACK and port in ports


def _local_password(url: str, server: Server) -> str | None:
    """The password of a local URL if it is for the user this tool manages."""
    parts = urlsplit(url)
    user = unquote(parts.username or "")
    wanted = (DB_USER,) if server == "postgres" else (REDIS_USER, "")
    if user not in wanted or not parts.password:
        return None
    password = unquote(parts.password)
    if "\n" in password or "\r" in password:
        return None
    register(password)
    return password


def _where(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or '?'}:{parts.port or 'default port'}"
    except ValueError:
        return repr(mask_url(url))


# --------------------------------------------------------------------------- servers


def _postgres(state: LocalState) -> EmbeddedPostgres:
    return EmbeddedPostgres(
        state.postgres.data_dir,
        port=state.postgres.port,
        superuser=SUPERUSER,
        password=state.postgres.superuser_password,
        host=HOST,
    )


def _redis(paths: LocalPaths, state: LocalState) -> EmbeddedRedis:
    """Redis as the app's user (no @dangerous commands), never evicting, not run as root.

    Root runs it as `nobody`, which must reach its folder: beside PGDATA when that had to move
    to the fallback folder for the same reason. A server an older version started as root in
    `.authkit/redis` is still found there, so that status and stop reach it.
    """

    def server(data_dir: Path) -> EmbeddedRedis:
        return EmbeddedRedis(
            data_dir,
            port=state.redis.port,
            password=state.redis.password,
            host=HOST,
            default_user_rules=APP_USER_RULES,
            maxmemory_policy="noeviction",  # AuthKit keeps sessions in Redis: never evict them
            unprivileged=True,
        )

    in_project = server(paths.redis_dir)
    if state.postgres.data_dir.parent == paths.fallback_dir and in_project.pid is None:
        return server(paths.fallback_dir / REDIS_DIR_NAME)
    return in_project


def _status_of_postgres(
    pg: EmbeddedPostgres, action: ServerAction | None, url: str | None
) -> ServerStatus:
    return ServerStatus(
        Kind.POSTGRES, pg.port, pg.pid, pg.data_dir, pg.log_path, action=action, url=url
    )


def _status_of_redis(
    rd: EmbeddedRedis, action: ServerAction | None, url: str | None
) -> ServerStatus:
    return ServerStatus(
        Kind.REDIS, rd.port, rd.pid, rd.data_dir, rd.log_path, action=action, url=url
    )


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _locked(paths: LocalPaths, timeout: float) -> Iterator[None]:
    """One `authkit-setup local` at a time per data folder (two initdb's would collide)."""
    import fcntl

    _make_data_dir(paths)
    fd = os.open(paths.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LocalServerError(
                        f"another authkit-setup local is working in {paths.data_dir}; "
                        "wait for it to finish and try again"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def _make_data_dir(paths: LocalPaths) -> None:
    """Create the data folder: private, but traversable when root's `nobody` needs PGDATA in it."""
    if paths.data_dir.exists():
        return  # maybe a folder shared with other things (--data-dir): leave its mode alone
    try:
        paths.data_dir.mkdir(parents=True)
        paths.data_dir.chmod(0o711 if postgres_run_as() is not None else 0o700)
    except OSError as exc:
        raise UsageError(
            f"--data-dir {paths.data_dir}: cannot create it ({exc.strerror}); pass another folder"
        ) from None


def _mode(path: Path) -> str:
    try:
        return f"mode {stat.S_IMODE(path.stat().st_mode):o}"
    except OSError:
        return "missing"


def _port_free(port: int) -> bool:
    # SO_REUSEADDR like the servers themselves: a port in TIME_WAIT is free, a listener is not.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port(avoid: set[int | None] | None = None) -> int:
    while True:
        port = free_port(HOST)
        if port not in (avoid or set()):
            return port


def _rel(path: Path) -> str:
    """`path` relative to the working directory when it is inside it (shorter messages)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
