"""Where every setting comes from, in one documented order: flag > process env > .env file > default.

The .env file is read with python-dotenv's `dotenv_values`, never injected into `os.environ`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from authkit_setup.errors import MissingCredential, MissingCredentialsError, UsageError

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


@dataclass(frozen=True)
class Credential:
    """A credential a provider needs, as resolved, and how to name it when it is missing."""

    setting: Setting
    flag: str
    what: str
    where: str  # where to get one
    hint: str | None = None  # default: "create one at <where>"
    secret: bool = True  # registered with the redactor (an account email is not)


def require_credentials(*credentials: Credential) -> list[str]:
    """Their values, or ONE error naming every missing one, each with its flag and variable."""
    missing = [
        MissingCredential(c.what, c.flag, c.setting.name, c.where, c.hint)
        for c in credentials
        if not c.setting.value
    ]
    if missing:
        raise MissingCredentialsError(missing)
    from authkit_setup.secrets import register

    values = [c.setting.value or "" for c in credentials]
    for credential, value in zip(credentials, values, strict=True):
        if credential.secret:
            register(value)
    return values


def require_key(setting: Setting, *, flag: str, what: str, where: str) -> str:
    """The value of a credential, or a one-line error naming both the flag and the variable."""
    (value,) = require_credentials(Credential(setting, flag, what, where))
    return value


def api_url(name: str, default: str) -> str:
    value = os.environ.get(name) or default
    if not value.startswith(("http://", "https://")):
        raise UsageError(f"{name}={value!r} is not an http(s) URL")
    return value.rstrip("/")


# Flags whose value is a secret. Each also has a `-file` form (`--api-key-file PATH`, `-` for
# stdin) so the secret never reaches the process list or the shell history.
SECRET_FLAGS = (
    "--api-key",
    "--neon-api-key",
    "--supabase-access-token",
    "--supabase-db-password",
    "--upstash-api-key",
    "--database-url",
    "--redis-url",
)
FILE_SUFFIX = "-file"


def _read_secret(flag: str, source: str, stdin: IO[str]) -> str:
    if source == "-":
        try:
            text = stdin.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{flag} -: stdin cannot be read ({exc})") from None
        where = "stdin"
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise UsageError(f"{flag} {source}: cannot be read ({reason})") from None
        where = source
    value = text.removesuffix("\n").removesuffix("\r")
    if not value.strip():
        raise UsageError(f"{flag}: {where} is empty")
    if "\n" in value or "\r" in value:
        raise UsageError(f"{flag}: {where} must hold the value on one line")
    from authkit_setup.secrets import register

    register(value)
    return value


def expand_secret_files(argv: list[str], stdin: IO[str] | None = None) -> list[str]:
    """`--api-key-file PATH` (or `-` for stdin) becomes `--api-key=<the file's one line>`,
    for every flag in SECRET_FLAGS, before the command line is parsed; the rest is unchanged.
    The expanded value lives only in this process: `ps` shows the path."""
    pieces: list[str | tuple[str, str]] = []  # plain arguments, or (flag, source) to read
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            pieces.extend(argv[i:])
            break
        name, eq, inline = arg.partition("=")
        if name.endswith(FILE_SUFFIX) and name.removesuffix(FILE_SUFFIX) in SECRET_FLAGS:
            if eq:
                source = inline
            elif i + 1 < len(argv):
                i += 1
                source = argv[i]
            else:
                raise UsageError(f"{name} needs a file path (or - to read stdin)")
            pieces.append((name, source))
        else:
            pieces.append(arg)
        i += 1
    from_stdin = [p[0] for p in pieces if isinstance(p, tuple) and p[1] == "-"]
    if len(from_stdin) > 1:
        raise UsageError(f"{from_stdin[1]} -: stdin can be read for one flag only")
    expanded = []
    for piece in pieces:
        if isinstance(piece, tuple):
            name, source = piece
            value = _read_secret(name, source, stdin or sys.stdin)
            expanded.append(f"{name.removesuffix(FILE_SUFFIX)}={value}")
        else:
            expanded.append(piece)
    return expanded
