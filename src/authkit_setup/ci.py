"""GitHub Actions helpers: mask secrets, write step outputs and job environment variables.

- Secrets (store passwords, URLs with credentials) are masked with `::add-mask::` the moment
  they are known, through `Output.mask_secret` (see there for why it writes to stderr).
- Non-secret results (ids, names, status) go to the file named by `$GITHUB_OUTPUT` as
  `key=value` lines, appended, so later steps read `steps.<id>.outputs.postgres_id`.
- `render --github-env` appends `DATABASE_URL=…` / `REDIS_URL=…` to `$GITHUB_ENV` so later steps
  of the same job can connect. GitHub drops job outputs that look like secrets ("Skip output
  … since it may contain secret", neondatabase/create-branch-action#12), so URLs never go to
  `$GITHUB_OUTPUT`.

Both files use GitHub's formats: `KEY=value`, or `KEY<<DELIMITER` … `DELIMITER` when a value
spans lines (https://docs.github.com/actions/reference/workflow-commands-for-github-actions,
"Multiline strings").
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from authkit_setup.errors import UsageError
from authkit_setup.output import Output
from authkit_setup.providers.base import ConnectionInfo

GITHUB_ACTIONS = "GITHUB_ACTIONS"
GITHUB_OUTPUT = "GITHUB_OUTPUT"
GITHUB_ENV = "GITHUB_ENV"

OutputValue = str | int | bool | None


def mask_urls(out: Output, urls: Iterable[str | None]) -> None:
    """Mask every credential-bearing URL and its password (a URL without one is not secret)."""
    for url in urls:
        if not url:
            continue
        try:
            parts = urlsplit(url)
            password, username = parts.password, parts.username
        except ValueError:
            out.mask_secret(url)
            continue
        if password:
            out.mask_secret(unquote(password))
            out.mask_secret(password)  # the percent-encoded form, as it appears in the URL
        elif username and parts.scheme.lower().startswith("redis"):
            out.mask_secret(unquote(username))  # redis://PASSWORD@host
        else:
            continue
        out.mask_secret(url)


def mask_connection_info(out: Output, info: ConnectionInfo) -> None:
    """Mask a store's secrets: its internal, external and extra URLs and their passwords."""
    mask_urls(out, [info.app_url, info.external_url, *info.extra_env.values()])


def format_lines(values: Mapping[str, OutputValue]) -> str:
    """`values` in GitHub's file-command format; heredoc syntax for multi-line values."""
    lines = []
    for key, raw in values.items():
        if not key or any(c in key for c in "=\r\n<"):
            raise ValueError(f"bad GitHub output/env key {key!r}")
        if raw is None:
            value = ""
        elif isinstance(raw, bool):
            value = "true" if raw else "false"
        else:
            value = str(raw)
        if "\n" in value or "\r" in value:
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            lines.append(f"{key}<<{delimiter}\n{value}\n{delimiter}")
        else:
            lines.append(f"{key}={value}")
    return "".join(line + "\n" for line in lines)


def append_to(path: Path, values: Mapping[str, OutputValue]) -> None:
    """Append `values` to a GitHub file command (`$GITHUB_OUTPUT`, `$GITHUB_ENV`)."""
    if not values:
        return
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(format_lines(values))
    except OSError as exc:
        raise UsageError(f"cannot append to {path}: {exc.strerror}") from None


def write_outputs(out: Output, values: Mapping[str, OutputValue]) -> Path | None:
    """In GitHub Actions, append non-secret results to `$GITHUB_OUTPUT`; elsewhere do nothing."""
    target = os.environ.get(GITHUB_OUTPUT)
    if not out.github_actions or not target:
        return None
    path = Path(target)
    append_to(path, values)
    return path


def github_env_path() -> Path:
    """Where `--github-env` writes; a one-line usage error outside GitHub Actions."""
    target = os.environ.get(GITHUB_ENV)
    if not target:
        raise UsageError(
            "--github-env needs $GITHUB_ENV, which GitHub Actions sets for every step",
            hint="drop --github-env outside GitHub Actions, or set GITHUB_ENV to a file path",
        )
    return Path(target)
