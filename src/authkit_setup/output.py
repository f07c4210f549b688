"""The only module that prints. Human messages go to stderr; results go to stdout.

`--json` switches the result to one JSON document on stdout. Everything printed, in either mode,
passes through `secrets.redact` so no password or API key leaves the process by accident.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, Protocol

from authkit_setup.errors import AuthkitError
from authkit_setup.secrets import announcements, redact


class Progress(Protocol):
    def update(self, key: str, line: str) -> None: ...


def _redact_doc(value: Any, scrub: Callable[[str], str] = redact) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: _redact_doc(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_doc(v, scrub) for v in value]
    return value


class Output:
    """Where every message and result goes. One per command run."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        quiet: bool = False,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        github_actions: bool | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self._stdout = stdout if stdout is not None else sys.stdout
        self._stderr = stderr if stderr is not None else sys.stderr
        self.github_actions = (
            os.environ.get("GITHUB_ACTIONS") == "true" if github_actions is None else github_actions
        )
        self._masked: set[str] = set()
        self._revealed: set[str] = set()

    # -- terminal detection -------------------------------------------------------------
    @property
    def interactive(self) -> bool:
        """True when a person is watching stderr (live progress, prompts)."""
        isatty = getattr(self._stderr, "isatty", None)
        return bool(isatty and isatty()) and os.environ.get("CI") not in ("true", "1")

    @property
    def can_prompt(self) -> bool:
        isatty = getattr(sys.stdin, "isatty", None)
        return self.interactive and bool(isatty and isatty())

    # -- messages (stderr) --------------------------------------------------------------
    def _emit(self, text: str) -> None:
        self._announce_secrets()
        self._stderr.write(redact(text) + "\n")
        self._stderr.flush()

    def info(self, message: str) -> None:
        if not self.quiet:
            self._emit(message)

    def step(self, message: str) -> None:
        if not self.quiet:
            self._emit(f"• {message}" if self.interactive else message)

    def success(self, message: str) -> None:
        if not self.quiet:
            self._emit(f"✓ {message}" if self.interactive else message)

    def warn(self, message: str) -> None:
        self._emit(f"warning: {message}")

    def _announce_secrets(self) -> None:
        """In GitHub Actions, mask every secret registered so far (`secrets.register`) in the job
        log, before anything is printed: called at the top of every write.

        The `::add-mask::` line goes to stderr in both modes. The runner scans stderr for
        workflow commands exactly as it scans stdout: actions/runner
        src/Runner.Worker/Handlers/ScriptHandler.cs hands StepHost.OutputDataReceived and
        StepHost.ErrorDataReceived each to an OutputManager, whose OnDataReceived runs
        ActionCommandManager.TryProcessCommand on every line (seen working from stderr in
        overengineeringstudio/effect-utils#969). On stderr the mask never breaks `--json` (stdout
        stays one JSON document, no `::` lines to skip), and it still reaches the runner when a
        script captures stdout (`$(authkit-setup …)`, `| jq`, `> out.json`), which would
        otherwise swallow the mask and keep the raw secret in the captured text. Within stderr it
        precedes every message; stdout only ever carries redacted results.
        """
        if not self.github_actions:
            return
        fresh = [s for s in announcements() if s not in self._masked]
        for secret in fresh:
            self._masked.add(secret)
            for line in secret.splitlines():
                if line.strip():
                    # The runner un-escapes %25 (and %0D, %0A) in command data: escape % so the
                    # mask is the exact value. It carries the raw value; the runner never echoes
                    # it.
                    self._stderr.write(f"::add-mask::{line.replace('%', '%25')}\n")
        if fresh:
            self._stderr.flush()

    def flush_masks(self) -> None:
        """Announce registered secrets now (before a file another step reads is written)."""
        self._announce_secrets()

    # -- results (stdout) ---------------------------------------------------------------
    def reveal(self, *values: str) -> None:
        """`--show-secrets`: let these exact values through on stdout results (never on stderr);
        everything else, API keys included, is still redacted."""
        self._revealed.update(v for v in values if v)

    def _scrub_result(self, text: str) -> str:
        if not self._revealed:
            return redact(text)
        # Swap each revealed value for a placeholder, redact the rest, swap back.
        held = {
            f"\x00{i}\x00": v for i, v in enumerate(sorted(self._revealed, key=len, reverse=True))
        }
        for placeholder, value in held.items():
            text = text.replace(value, placeholder)
        text = redact(text)
        for placeholder, value in held.items():
            text = text.replace(placeholder, value)
        return text

    def result(self, document: Mapping[str, Any]) -> None:
        """Print the command's JSON document (JSON mode only)."""
        self._announce_secrets()
        if self.json_mode:
            doc = _redact_doc(document, self._scrub_result)
            self._stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
            self._stdout.flush()

    def print(self, text: str = "") -> None:
        """Print a human result line on stdout (human mode only)."""
        self._announce_secrets()
        if not self.json_mode:
            self._stdout.write(self._scrub_result(text) + "\n")
            self._stdout.flush()

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        self._announce_secrets()
        if self.json_mode:
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(redact(cell) for cell in row))
        Console(file=self._stdout, width=max(100, _terminal_width()), soft_wrap=False).print(table)

    def error(self, err: AuthkitError) -> None:
        self._announce_secrets()
        if self.json_mode:
            doc = {
                "ok": False,
                "error": {"code": err.code, "message": err.message, "hint": err.hint},
            }
            self._stdout.write(json.dumps(_redact_doc(doc), indent=2) + "\n")
            self._stdout.flush()
        self._emit(f"error: {err.message}")
        if err.hint:
            self._emit(f"hint: {err.hint}")

    @contextmanager
    def live(self, title: str) -> Iterator[Progress]:
        """A line per key, redrawn in place on a terminal; plain log lines otherwise."""
        if self.interactive and not self.quiet:
            with _LiveProgress(self._stderr, title) as progress:
                yield progress
        else:
            yield _LogProgress(self)


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


class _LogProgress:
    def __init__(self, out: Output) -> None:
        self._out = out
        self._last: dict[str, str] = {}

    def update(self, key: str, line: str) -> None:
        # Only log changes: a CI log gets one line per status change, not one per poll.
        status = line.split(" (", 1)[0]
        if self._last.get(key) != status:
            self._last[key] = status
            self._out.info(line)


class _LiveProgress:
    def __init__(self, stream: IO[str], title: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self._lines: dict[str, str] = {}
        self._title = title
        self._console = Console(file=stream)
        self._live = Live(
            self._render(), console=self._console, refresh_per_second=4, transient=False
        )

    def _render(self) -> Any:
        from rich.text import Text

        text = Text(self._title + "\n", style="bold")
        for line in self._lines.values():
            text.append("  " + redact(line) + "\n")
        return text

    def __enter__(self) -> _LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self._render())
        self._live.__exit__(None, None, None)

    def update(self, key: str, line: str) -> None:
        self._lines[key] = line
        self._live.update(self._render())
