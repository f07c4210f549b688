"""Run the real CLI in-process (fast) or as a subprocess (the installed entry point)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from authkit_setup.cli import main


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str) -> CliResult:
    """Call `authkit-setup ARGS` in this process through `main()`, the console entry point."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> CliResult:
    """Run `python -m authkit_setup ARGS` as a child process (no terminal, CI-like)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "authkit_setup", *args],
        capture_output=True,
        text=True,
        env=full_env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_no_secret(result: CliResult, *secrets: str) -> None:
    from urllib.parse import quote

    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            assert form not in result.stdout, f"secret leaked on stdout: {form!r}"
            assert form not in result.stderr, f"secret leaked on stderr: {form!r}"
