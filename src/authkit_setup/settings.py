"""Where every setting comes from, in one documented order: flag > process env > .env file > default.

The .env file is read with python-dotenv's `dotenv_values`, never injected into `os.environ`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from authkit_setup.errors import CredentialsError, UsageError

# Environment variables the tool reads (also listed in the README).
DATABASE_URL = "DATABASE_URL"
REDIS_URL = "REDIS_URL"
DIRECT_URL = "DIRECT_URL"
RENDER_API_KEY = "RENDER_API_KEY"
RENDER_API_URL = "RENDER_API_URL"
RENDER_WORKSPACE = "RENDER_WORKSPACE"
NEON_API_KEY = "NEON_API_KEY"
NEON_API_URL = "NEON_API_URL"
NEON_ORG_ID = "NEON_ORG_ID"
SUPABASE_ACCESS_TOKEN = "SUPABASE_ACCESS_TOKEN"
SUPABASE_API_URL = "SUPABASE_API_URL"
SUPABASE_ORG = "SUPABASE_ORG"
SUPABASE_DB_PASSWORD = "SUPABASE_DB_PASSWORD"
UPSTASH_EMAIL = "UPSTASH_EMAIL"
UPSTASH_API_KEY = "UPSTASH_API_KEY"
UPSTASH_API_URL = "UPSTASH_API_URL"
AUTHKIT_DEBUG = "AUTHKIT_DEBUG"
ON_RENDER = "RENDER"  # Render sets RENDER=true inside its services

DEFAULT_RENDER_API_URL = "https://api.render.com/v1"
DEFAULT_NEON_API_URL = "https://console.neon.tech/api/v2"
DEFAULT_SUPABASE_API_URL = "https://api.supabase.com"
DEFAULT_UPSTASH_API_URL = "https://api.upstash.com/v2"

Source = Literal["flag", "env", "env-file", "default"]


@dataclass(frozen=True, slots=True)
class Setting:
    value: str | None
    source: Source
    name: str


def read_env_file(path: Path | None, *, required: bool = False) -> dict[str, str]:
    """Values of a .env file; {} when it does not exist (unless `required`)."""
    if path is None:
        return {}
    if not path.exists():
        if required:
            raise UsageError(f"--env-file {path}: no such file")
        return {}
    if path.is_dir():
        raise UsageError(f"--env-file {path}: is a directory, expected a .env file")
    try:
        path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--env-file {path}: cannot be read ({exc.strerror})") from None
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path)
    except UnicodeDecodeError:
        raise UsageError(f"--env-file {path}: not a UTF-8 text file") from None
    return {k: v for k, v in values.items() if v is not None}


def resolve(
    flag: str | None,
    name: str,
    env_file: dict[str, str],
    default: str | None = None,
) -> Setting:
    """flag > process environment > .env file > default."""
    if flag is not None and flag != "":
        return Setting(flag, "flag", name)
    env_value = os.environ.get(name)
    if env_value:
        return Setting(env_value, "env", name)
    file_value = env_file.get(name)
    if file_value:
        return Setting(file_value, "env-file", name)
    return Setting(default, "default", name)


def require_key(setting: Setting, *, flag: str, what: str, where: str) -> str:
    """The value of a credential, or a one-line error naming both the flag and the variable."""
    if not setting.value:
        raise CredentialsError(
            f"no {what}: pass {flag} or set {setting.name} (in the environment or in .env)",
            hint=f"create one at {where}",
        )
    from authkit_setup.secrets import register

    register(setting.value)
    return setting.value


def api_url(name: str, default: str) -> str:
    value = os.environ.get(name) or default
    if not value.startswith(("http://", "https://")):
        raise UsageError(f"{name}={value!r} is not an http(s) URL")
    return value.rstrip("/")
