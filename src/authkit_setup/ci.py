"""GitHub Actions helpers: mask secrets, write step outputs and job environment variables.

- Secrets (store passwords, URLs with credentials) are masked with `::add-mask::` before
  anything is printed: `secrets.register` records them, `Output` announces them.
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
from collections.abc import Mapping
from pathlib import Path

from authkit_setup.errors import UsageError
from authkit_setup.output import Output
from authkit_setup.secrets import redact

GITHUB_ACTIONS = "GITHUB_ACTIONS"
GITHUB_OUTPUT = "GITHUB_OUTPUT"
GITHUB_ENV = "GITHUB_ENV"

OutputValue = str | int | bool | None


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
    """In GitHub Actions, append results to `$GITHUB_OUTPUT` (through the redactor: job outputs
    are shown in the workflow UI); elsewhere do nothing."""
    target = os.environ.get(GITHUB_OUTPUT)
    if not out.github_actions or not target:
        return None
    path = Path(target)
    out.flush_masks()  # the runner masks them in later steps' logs too
    append_to(path, {k: redact(v) if isinstance(v, str) else v for k, v in values.items()})
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
