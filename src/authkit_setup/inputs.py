"""Small checks of command-line input that several features share; each fails with a one-line
usage error (exit 2) before anything happens."""

from __future__ import annotations

from collections.abc import Collection

from authkit_setup.errors import UsageError


def require_nonempty(*flags: tuple[str, str]) -> None:
    """Stop with a usage error (exit 2) at the first `(flag, value)` whose value is blank."""
    for flag, value in flags:
        if not value.strip():
            raise UsageError(f"{flag} is empty")


def check_deploy_flags(*, no_deploy: bool, wait_deploy: bool) -> None:
    """--no-deploy and --wait-deploy cannot both be given."""
    if no_deploy and wait_deploy:
        raise UsageError("--no-deploy and --wait-deploy contradict each other")


def one_of(value: str, allowed: Collection[str], problem: str, *, hint: str | None = None) -> str:
    """`value` when it is one of `allowed`; else a usage error saying `problem`, with `hint`
    (default: the choices)."""
    if value not in allowed:
        raise UsageError(problem, hint=hint or f"use one of {', '.join(allowed)}")
    return value
