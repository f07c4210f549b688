"""Server processes: started detached, found again by pid, stopped; and their loopback port.

A server runs in its own session (Ctrl-C in the terminal that started it does not reach it),
with its output appended to a log file, and outlives this process: a later `authkit-setup
local status` or `stop` finds it through the pid its data directory records.
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
from typing import IO

from authkit_setup.errors import LocalServerError
from authkit_setup.local.accounts import RunAs, chown

__all__ = [
    "StopSignals",
    "free_port",
    "is_running",
    "log_tail",
    "open_log",
    "start_detached",
    "terminate",
    "url_host",
    "wait_tcp",
]

# Each signal in turn, with how long to wait for the process to exit before the next one.
StopSignals = Sequence[tuple[signal.Signals, float]]

# Popen objects of servers this process started, by pid, so that any instance can reap them
# (a reaped child does not linger as a zombie that still answers kill(pid, 0)).
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


def is_running(pid: int, name: str) -> bool:
    """Whether `pid` is a live (non-zombie) process whose command line contains `name`."""
    if pid <= 0:
        return False
    child = _STARTED.get(pid)
    if child is not None:
        if child.poll() is not None:
            _STARTED.pop(pid, None)
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
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            if name.encode() not in cmdline:
                return False  # the pid was reused by an unrelated process
        except (OSError, IndexError):
            return False
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    child = _STARTED.get(pid)
    if child is not None:
        try:
            child.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            return False
        _STARTED.pop(pid, None)
        return True
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    return is_running(pid, "")


def terminate(pid: int, signals: StopSignals) -> None:
    """Send each signal in turn, waiting up to its timeout for the process to exit."""
    for sig, timeout in signals:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_gone(pid, timeout):
            break
    _wait_gone(pid, 1.0)


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
