"""Shared bits for the benchmarks: timing a command, starting the real local servers."""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from authkit_setup.local.postgres_server import EmbeddedPostgres
from authkit_setup.local.processes import free_port
from authkit_setup.local.redis_server import EmbeddedRedis

CLI = [sys.executable, "-m", "authkit_setup"]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a timed command: this one, but allowed to write .pyc files.

    An installed wheel has its bytecode compiled at install time; an editable install (this
    checkout) gets it on the first run, which the warm-up is for. PYTHONDONTWRITEBYTECODE=1 (set
    in some shells and CI images) would make every timed run compile the package's sources
    again, a cost no user pays, while the floors import pip-installed, precompiled packages.
    """
    env = {**os.environ, **(extra or {})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def entry_point() -> list[str]:
    """The installed console script if there is one (what users run), else python -m."""
    script = Path(sys.executable).with_name("authkit-setup")
    return [str(script)] if script.exists() else CLI


def time_command(
    argv: list[str], runs: int, env: dict[str, str] | None = None
) -> tuple[float, list[float], int]:
    """Median wall seconds of `runs` runs (after one warm-up), all timings, last exit code."""
    full_env = child_env(env)
    subprocess.run(argv, capture_output=True, env=full_env, check=False)
    timings = []
    code = 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, env=full_env, check=False)
        timings.append(time.perf_counter() - start)
        code = proc.returncode
    return statistics.median(timings), timings, code


@dataclass
class LocalServers:
    pg: EmbeddedPostgres
    redis: EmbeddedRedis

    def database_url(self) -> str:
        return self.pg.superuser_url("postgres")

    def redis_url(self) -> str:
        return self.redis.url()


@contextmanager
def local_servers() -> Iterator[LocalServers]:
    base = Path(tempfile.mkdtemp(prefix="authkit-bench-"))
    base.chmod(0o711)
    pg = EmbeddedPostgres(
        base / "pg", port=free_port(), password=secrets.token_urlsafe(16), fast=True
    )
    redis = EmbeddedRedis(base / "redis", port=free_port(), password=secrets.token_urlsafe(16))
    try:
        pg.start()
        redis.start()
        yield LocalServers(pg, redis)
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def report(name: str, value: float, target: float, unit: str = "s") -> bool:
    ok = value <= target
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {value:.3f} {unit} (target ≤ {target:g} {unit})")
    return ok
