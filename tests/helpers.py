"""Run the real CLI in-process (fast) or as a subprocess (the installed entry point)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authkit_setup.launch import main


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_object(self) -> dict[str, Any]:
        """stdout as the one JSON object `--json` prints; the test fails on anything else."""
        assert self.stdout.startswith("{"), self.output
        doc = self.json()
        assert isinstance(doc, dict)
        return doc

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


# Flags with which a command prints secrets because it was asked to.
REVEALING_FLAGS = ("--show-secrets",)


def run_cli(*args: str) -> CliResult:
    """Call `authkit-setup ARGS` in this process through `main()`, the console entry point.

    Every run is a leak check (issue 13: no secret in any output of any command across the
    suite): unless ARGS ask for secrets, no secret a fake handed out and no strong secret the
    tool registered may appear in stdout or stderr, raw or percent-encoded."""
    from authkit_setup import secrets

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    result = CliResult(code, out.getvalue(), err.getvalue())
    if not any(a.split("=", 1)[0] in REVEALING_FLAGS for a in args):
        registered = [s for s in secrets.announcements() if secrets.is_strong(s)]
        assert_no_secret(without_add_mask(result), *registered)
    return result


def without_add_mask(result: CliResult) -> CliResult:
    """The output without GitHub's `::add-mask::` commands: they hand a secret to the runner so
    it masks it, and the runner never shows them in the log."""
    kept = [line for line in result.stderr.splitlines(True) if not line.startswith("::add-mask::")]
    return CliResult(result.exit_code, result.stdout, "".join(kept))


def run_program(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a program to its end with no terminal and no input; its output captured as text,
    its exit status left to the caller."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def run_cli_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> CliResult:
    """Run `python -m authkit_setup ARGS` as a child process (no terminal, CI-like)."""
    full_env = {**os.environ, **(env or {})}
    proc = run_program(
        [sys.executable, "-m", "authkit_setup", *args], env=full_env, timeout=timeout
    )
    result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    if not any(a.split("=", 1)[0] in REVEALING_FLAGS for a in args):
        # What the fakes handed out (the child's registry is its own).
        assert_no_secret(without_add_mask(result))
    return result


def every_secret(*extra: str) -> list[str]:
    """Every secret a leak check must look for: `extra`, every API key the fakes accept by
    default, and every secret any fake has handed out in this test (store passwords of every
    kind on every provider, Key Value / Upstash passwords and tokens, export tokens, generated
    values; see `tests.fakes.common.hand_out`)."""
    from tests.fakes.common import handed_out_secrets
    from tests.fakes.neon_api import FAKE_NEON_KEY
    from tests.fakes.render_api import FAKE_RENDER_KEY
    from tests.fakes.supabase_api import FAKE_SUPABASE_TOKEN
    from tests.fakes.upstash_api import FAKE_UPSTASH_API_KEY

    keys = [FAKE_RENDER_KEY, FAKE_NEON_KEY, FAKE_SUPABASE_TOKEN, FAKE_UPSTASH_API_KEY]
    return sorted({*extra, *keys, *handed_out_secrets()} - {""})


def assert_no_secret(result: CliResult, *extra: str, shown: Iterable[str] = ()) -> None:
    """The one leak check: no secret of `every_secret(*extra)` on stdout or stderr, raw or
    percent-encoded, except those in `shown` (a command asked to print them)."""
    from urllib.parse import quote

    allowed = set(shown)
    for secret in every_secret(*extra):
        if secret in allowed:
            continue
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            assert form not in result.stdout, f"secret leaked on stdout: {form!r}"
            assert form not in result.stderr, f"secret leaked on stderr: {form!r}"
