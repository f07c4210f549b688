"""Secrets the tool generated and cannot ask the provider for again.

Supabase never returns a project's database password. authkit-setup writes the one it generates
into DATABASE_URL / DIRECT_URL, but a run can stop between the create and that write; the
password is therefore saved here first (mode 600, atomic), and read back by the next run.

Location: $AUTHKIT_STATE_DIR, else $XDG_STATE_HOME/authkit-setup, else ~/.local/state/authkit-setup.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from authkit_setup.envfile import write_private_file
from authkit_setup.errors import UsageError
from authkit_setup.secrets import register

STATE_DIR = "AUTHKIT_STATE_DIR"


def vault_path() -> Path:
    explicit = os.environ.get(STATE_DIR)
    if explicit:
        return Path(explicit) / "secrets.json"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "authkit-setup" / "secrets.json"


def _load(path: Path) -> dict[str, str]:
    """The saved secrets; {} when there is no file yet. A file that cannot be read or parsed is
    an error naming it: treating it as empty would overwrite passwords nobody can recover."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}  # nothing saved yet (or no state folder at all: saving will say so)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise _unusable(path, f"cannot be read ({reason})") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise _unusable(path, "is not valid JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise _unusable(path, "is not a JSON object of names to passwords")
    return data


def _unusable(path: Path, problem: str) -> UsageError:
    return UsageError(
        f"the saved-password file {path} {problem}",
        hint="it may hold a generated database password that exists nowhere else: fix or move "
        f"it aside yourself (authkit-setup never overwrites it), or set {STATE_DIR} to another "
        "folder",
    )


def _save(path: Path, data: dict[str, str]) -> None:
    write_private_file(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def remember(key: str, secret: str) -> None:
    """Save `secret` under `key` (e.g. "supabase/<org>/<project name>") before it is used.

    A failure is an error: the caller is about to create something whose password could not be
    learned again, so it must stop first.
    """
    register(secret)
    path = vault_path()
    data = _load(path)
    if data.get(key) == secret:
        return
    data[key] = secret
    try:
        _save(path, data)
    except OSError as exc:
        raise UsageError(
            f"cannot save the generated password to {path} ({exc.strerror or exc}); "
            "nothing was created",
            hint=f"make that folder writable, set {STATE_DIR} to a writable folder, or pass "
            "the password yourself (--supabase-db-password or SUPABASE_DB_PASSWORD)",
        ) from None


def recall(key: str) -> str | None:
    secret = _load(vault_path()).get(key)
    if secret:
        register(secret)
    return secret


def forget(key: str) -> None:
    """Drop `key` once its store is deleted; best effort (the store is already gone)."""
    path = vault_path()
    try:
        data = _load(path)
    except UsageError:
        return  # never rewrite a file we cannot read: it may hold other passwords
    if data.pop(key, None) is not None:
        try:
            _save(path, data)
        except OSError:
            pass
