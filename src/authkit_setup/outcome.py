"""How a command run ends: its body's exit code, or its failure reported once and mapped to an
exit code. Never a traceback (unless AUTHKIT_DEBUG=1), always a documented exit code.

Shared by `cli.main` (Typer) and the entry point's fast path for `check` (`launch`), so it
imports no Typer: Typer's own exceptions (usage errors, `Exit`, `Abort`) stay in `cli.main`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from authkit_setup.errors import EXIT_FAILED, EXIT_INTERRUPTED, AuthkitError, InterruptedByUser
from authkit_setup.output import Output, problem
from authkit_setup.secrets import redact

INTERRUPTED = "interrupted; run the same command again to resume"

_running: list[Output] = []  # the Output of the command running now (failures report through it)


def run_body(out: Output, body: Callable[[], int]) -> int:
    """Run a command body with `out` as the command's output; its return value is the exit
    code. A Ctrl-C becomes InterruptedByUser here, reported through `out` like any error."""
    _running[:] = [out]
    try:
        return body()
    except KeyboardInterrupt:
        raise InterruptedByUser(
            "interrupted; nothing is half-done that a re-run cannot finish",
            hint="run the same command again to resume",
        ) from None


def running_output() -> Output | None:
    """The Output of the command started last by this process, if any."""
    return _running[-1] if _running else None


def forget_running_output() -> None:
    _running.clear()


def failure_exit_code(exc: BaseException) -> int:
    """Report a failure that is not Typer's and return its exit code: an AuthkitError through
    the running command's output (its --json document included), a Ctrl-C outside a command
    body in one line, anything else as a bug in one masked line (re-raised with
    AUTHKIT_DEBUG=1). Call it from an `except` block."""
    out = running_output()
    if isinstance(exc, AuthkitError):
        (out or Output()).error(exc)
        return exc.exit_code
    json_mode = out is not None and out.json_mode
    if isinstance(exc, KeyboardInterrupt):
        problem(INTERRUPTED, json_mode=json_mode)
        return EXIT_INTERRUPTED
    if not isinstance(exc, Exception) or os.environ.get("AUTHKIT_DEBUG") == "1":
        raise exc
    problem(
        f"internal error: {type(exc).__name__}: {redact(str(exc))}",
        "this is a bug in authkit-setup; re-run with AUTHKIT_DEBUG=1 for a traceback",
        json_mode=json_mode,
    )
    return EXIT_FAILED
