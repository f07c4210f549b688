"""`authkit-setup local status | stop | destroy`: what runs, stopping it, and removing it all
(the servers, the data folder, and the .env lines that point at them)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from authkit_setup.envfile import update_env_file
from authkit_setup.errors import LocalServerError
from authkit_setup.local.postgres_server import EmbeddedPostgres
from authkit_setup.local.state import (
    LOCK_NAME,
    SERVERS,
    STATE_NAME,
    EnvChange,
    LocalPaths,
    LocalState,
    LocalStatusReport,
    ServerAction,
    ServerStatus,
    _locked,
    _postgres,
    _redis,
    _rel,
    _status_of_postgres,
    _status_of_redis,
    load_state,
    points_at_local,
)
from authkit_setup.output import Output
from authkit_setup.settings import read_env_file

# --------------------------------------------------------------------------- status, stop, destroy


def server_status(paths: LocalPaths) -> LocalStatusReport:
    """Each server's port, pid and data folder; no servers when nothing was set up here. The
    report is ok only while both servers run (`local status` exits 1 otherwise)."""
    state = load_state(paths)
    if state is None:
        return LocalStatusReport(paths, [], gates=True)
    return LocalStatusReport(
        paths,
        [
            _status_of_postgres(_postgres(state), None, None),
            _status_of_redis(_redis(paths, state), None, None),
        ],
        gates=True,
    )


def stop_servers(paths: LocalPaths, out: Output, timeout: float = 30.0) -> LocalStatusReport:
    """Stop both servers (their data stays). Stopping stopped servers is fine."""
    state = load_state(paths)
    if state is None:
        return LocalStatusReport(paths, [])
    with _locked(paths, timeout):
        return LocalStatusReport(paths, _stop(paths, state, out, timeout))


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


def destroy(paths: LocalPaths, out: Output, timeout: float = 30.0) -> LocalStatusReport:
    """Stop both servers, delete their data, and take their URLs out of .env.

    Deletes only what this tool made (state.json, postgres/, redis/, the fallback folder), then
    the data folder if that left it empty: a `--data-dir` shared with other files keeps them.
    Without state.json nothing proves postgres/ and redis/ are ours, so they stay.
    """
    if not paths.data_dir.exists():
        note = f"nothing to destroy: {paths.data_dir} does not exist"
        out.info(note)
        return LocalStatusReport(paths, [], notes=[note], destroyed=True)
    with _locked(paths, timeout):
        state = load_state(paths)
        stopped = _stop(paths, state, out, timeout) if state else []
        report = LocalStatusReport(paths, stopped, destroyed=True)
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
        key = server.env_var
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
