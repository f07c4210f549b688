"""The only module that prints. Human messages go to stderr; results go to stdout.

`--json` switches the result to one JSON document on stdout. Everything printed, in either mode,
passes through `secrets.redact` so no password or API key leaves the process by accident.

On a terminal, messages and results are coloured (each stream decides for itself, the way rich
decides: FORCE_COLOR, TTY_COMPATIBLE, TERM=dumb) and waits show a spinner on stderr. Never with
--json, in GitHub Actions logs or with NO_COLOR set: there, and wherever the stream is not a
terminal, every line is the plain text, byte for byte, and rich is not even imported.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, Literal, Protocol

from authkit_setup.errors import AuthkitError
from authkit_setup.secrets import announcements, redact


class Progress(Protocol):
    def update(self, key: str, line: str) -> None: ...


# What each kind of text looks like in colour (rich style definitions), one look for every command.
STYLES = {
    "error": "bold red",
    "warning": "bold yellow",
    "hint": "bold cyan",
    "step": "cyan",
    "ok": "green",
    "failed": "bold red",
    "note": "yellow",
    "heading": "bold",
}
SPINNER = "dots"
ColourSystem = Literal["standard", "256", "truecolor", "windows"]
_SYSTEMS: tuple[ColourSystem, ...] = ("standard", "256", "truecolor", "windows")


def colour_system(
    stream: IO[str], *, json_mode: bool = False, github_actions: bool | None = None
) -> ColourSystem | None:
    """The colour system rich would use on `stream` ("standard", "256", "truecolor"), or None
    for plain text: always with --json, in GitHub Actions logs (GITHUB_ACTIONS=true) and with
    NO_COLOR set (https://no-color.org); else rich decides (is it a terminal, or FORCE_COLOR /
    TTY_COMPATIBLE=1 says so; not TERM=dumb). Rich is imported only when the answer may be yes."""
    env = os.environ
    if github_actions is None:
        github_actions = env.get("GITHUB_ACTIONS") == "true"
    if json_mode or github_actions or env.get("NO_COLOR", "") != "":
        return None
    if not (_isatty(stream) or env.get("FORCE_COLOR") or env.get("TTY_COMPATIBLE") == "1"):
        return None  # rich would not call it a terminal either
    from rich.console import Console

    system = Console(file=stream).color_system
    return next((known for known in _SYSTEMS if known == system), None)


def paint(text: str, role: str, system: ColourSystem | None) -> str:
    """`text` in the colour STYLES gives `role`, in colour `system`; unchanged when None."""
    if system is None or not text:
        return text
    from rich.console import COLOR_SYSTEMS
    from rich.style import Style

    return Style.parse(STYLES[role]).render(text, color_system=COLOR_SYSTEMS[system])


def _isatty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


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
        self._colours: dict[int, ColourSystem | None] = {}
        # The final error closes the output: a create still running in a daemon thread after a
        # Ctrl-C must not print under it (its store is found by the next run, which says so).
        self._lock = threading.RLock()
        self._closed = False

    # -- terminal detection -------------------------------------------------------------
    @property
    def interactive(self) -> bool:
        """True when a person is watching stderr (live progress, prompts)."""
        return _isatty(self._stderr) and os.environ.get("CI") not in ("true", "1")

    def _colour(self, stream: IO[str]) -> ColourSystem | None:
        """The colour system of `stream` (decided once per stream), None for plain text."""
        key = id(stream)
        if key not in self._colours:
            self._colours[key] = colour_system(
                stream, json_mode=self.json_mode, github_actions=self.github_actions
            )
        return self._colours[key]

    def _paint(self, stream: IO[str], line: str, role: str | None, span: int | None) -> str:
        """`line` with its first `span` characters (all when None) painted as `role`."""
        system = self._colour(stream) if role else None
        if system is None or role is None:
            return line
        cut = len(line) if span is None else span
        return paint(line[:cut], role, system) + line[cut:]

    @property
    def animated(self) -> bool:
        """A spinner may turn on stderr: a person watches a real terminal that shows colour."""
        return not self.quiet and self.interactive and self._colour(self._stderr) is not None

    @property
    def can_prompt(self) -> bool:
        isatty = getattr(sys.stdin, "isatty", None)
        return self.interactive and bool(isatty and isatty())

    # -- messages (stderr) --------------------------------------------------------------
    def _emit(self, text: str, role: str | None = None, span: int | None = None) -> None:
        with self._lock:
            if self._closed:
                return
            self._announce_secrets()
            self._stderr.write(self._paint(self._stderr, redact(text), role, span) + "\n")
            self._stderr.flush()

    def info(self, message: str) -> None:
        if not self.quiet:
            self._emit(message)

    def step(self, message: str) -> None:
        if not self.quiet:
            if self.interactive:
                self._emit(f"• {message}", "step", 1)
            else:
                self._emit(message)

    def success(self, message: str) -> None:
        if not self.quiet:
            if self.interactive:
                self._emit(f"✓ {message}", "ok", 1)
            else:
                self._emit(message)

    def warn(self, message: str) -> None:
        self._emit(f"warning: {message}", "warning", len("warning:"))

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

    def print(self, text: str = "", *, role: str | None = None, span: int | None = None) -> None:
        """Print a human result line on stdout (human mode only); on a terminal, its first
        `span` characters (all when None) in the colour of `role` (STYLES)."""
        self._announce_secrets()
        if not self.json_mode:
            line = self._scrub_result(text)
            self._stdout.write(self._paint(self._stdout, line, role, span) + "\n")
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
        Console(
            file=self._stdout,
            width=max(100, _terminal_width()),
            soft_wrap=False,
            color_system=self._colour(self._stdout),  # None: no styles (NO_COLOR, ...)
        ).print(table)

    def error(self, err: AuthkitError) -> None:
        """Report the run's failure; the last thing this output says (see `_closed`)."""
        with self._lock:
            self._announce_secrets()
            if self.json_mode:
                doc = {
                    "ok": False,
                    "error": {"code": err.code, "message": err.message, "hint": err.hint},
                }
                self._stdout.write(json.dumps(_redact_doc(doc), indent=2) + "\n")
                self._stdout.flush()
            self._emit(f"error: {err.message}", "error", len("error:"))
            if err.hint:
                self._emit(f"hint: {err.hint}", "hint", len("hint:"))
            self._closed = True

    @contextmanager
    def live(self, title: str) -> Iterator[Progress]:
        """A line per key, redrawn in place on a terminal (under a spinner when colour is on);
        plain log lines otherwise."""
        if self.interactive and not self.quiet:
            system = self._colour(self._stderr)
            with _LiveProgress(self._stderr, title, system) as progress:
                yield progress
        else:
            yield _LogProgress(self)

    @contextmanager
    def spinner(self, title: str, *, after: float = 0.0) -> Iterator[None]:
        """A spinner and `title` on stderr while the block runs, gone when it ends (nothing
        stays on screen, nothing is printed where there is no animation: see `animated`).
        With `after`, it shows only if the block is still running after that many seconds.
        Print nothing inside the block: the spinner owns the line."""
        if not self.animated:
            yield
            return
        from rich.console import Console
        from rich.live import Live
        from rich.spinner import Spinner

        console = Console(file=self._stderr, color_system=self._colour(self._stderr))
        live = Live(
            Spinner(SPINNER, text=title, style=STYLES["step"]),
            console=console,
            transient=True,
            refresh_per_second=12.5,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        lock = threading.Lock()
        state = {"done": False, "shown": False}

        def show() -> None:
            with lock:
                if not state["done"]:
                    live.start()
                    state["shown"] = True

        timer = threading.Timer(after, show)
        timer.daemon = True
        if after > 0:
            timer.start()
        else:
            show()
        try:
            yield
        finally:
            timer.cancel()
            with lock:
                state["done"] = True
                if state["shown"]:
                    live.stop()


def problem(message: str, hint: str | None = None, *, json_mode: bool = False) -> None:
    """`error: message` (and `hint: hint`) on stderr, for failures outside a command's Output
    (usage errors, Ctrl-C, bugs): the same look as Output.error. `message` is already masked."""
    stream = sys.stderr
    system = colour_system(stream, json_mode=json_mode)
    stream.write(f"{paint('error:', 'error', system)} {message}\n")
    if hint:
        stream.write(f"{paint('hint:', 'hint', system)} {hint}\n")


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
    """The title (after a spinner when colour is on) and a line per key, redrawn in place."""

    def __init__(self, stream: IO[str], title: str, colour: ColourSystem | None) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.spinner import Spinner

        self._lines: dict[str, str] = {}
        self._title = title
        self._console = Console(file=stream, color_system=colour)  # None: no styles at all
        self._spinner = Spinner(SPINNER, style=STYLES["step"]) if colour else None
        self._live = Live(
            self._render(),
            console=self._console,
            refresh_per_second=12.5 if colour else 4,
            transient=False,
        )

    def _render(self, final: bool = False) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        title = Text(self._title, style=STYLES["heading"])
        lines = Text("".join("  " + redact(line) + "\n" for line in self._lines.values()))
        if self._spinner is None or final:
            return Text.assemble(title, "\n", lines)
        head = Table.grid(padding=(0, 1))
        head.add_row(self._spinner, title)
        return Group(head, lines)

    def __enter__(self) -> _LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self._render(final=True))  # the spinner stops: no frame stays behind
        self._live.__exit__(None, None, None)

    def update(self, key: str, line: str) -> None:
        self._lines[key] = line
        self._live.update(self._render())
