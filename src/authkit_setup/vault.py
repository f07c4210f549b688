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
from authkit_setup.masking import register_secret

STATE_DIR = "AUTHKIT_STATE_DIR"


def vault_path() -> Path:
    explicit = os.environ.get(STATE_DIR)
    if explicit:
        return Path(explicit) / "secrets.json"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "authkit-setup" / "secrets.json"


def _load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def remember(key: str, secret: str) -> None:
    """Save `secret` under `key` (e.g. "supabase/<org>/<project name>"); best effort."""
    path = vault_path()
    data = _load(path)
    if data.get(key) == secret:
        return
    data[key] = secret
    try:
        write_private_file(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    except OSError:
        pass  # an unwritable state dir must not stop the run; the URLs still carry the secret


def recall(key: str) -> str | None:
    secret = _load(vault_path()).get(key)
    if secret:
        register_secret(secret)
    return secret


def forget(key: str) -> None:
    path = vault_path()
    data = _load(path)
    if data.pop(key, None) is not None:
        try:
            write_private_file(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
        except OSError:
            pass
