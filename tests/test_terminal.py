"""Colour and a spinner on a terminal, plain text everywhere else (issue 14).

The CLI runs under a pseudo-terminal (`pty`) as a person would see it: colour codes on stdout and
stderr, a spinner while a check waits. NO_COLOR, TERM=dumb, --json and GitHub Actions stay plain
on the same terminal; FORCE_COLOR colours a pipe the way rich does, but a spinner only ever turns
on a real terminal.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from authkit_setup.output import Output
from tests.helpers import run_program

SGR = re.compile(r"\x1b\[[0-9;]*m")  # Select Graphic Rendition: colours, bold
SPINNER_FRAMES = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")  # rich's "dots"
PLAIN_TERMINAL = {"TERM": "xterm-256color", "COLUMNS": "120"}


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    """This environment without the variables that decide colour, then `extra`."""
    deciding = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLORTERM")
    env = {k: v for k, v in os.environ.items() if k not in deciding}
    return {**env, **PLAIN_TERMINAL, **(extra or {})}


def in_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `authkit-setup ARGS` with stdin, stdout and stderr on a pseudo-terminal; its exit
    code and everything it wrote there."""
    full_env = child_env(env)
    main, child = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "authkit_setup", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env=full_env,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def piped(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = child_env(env)
    return run_program([sys.executable, "-m", "authkit_setup", *args], env=full_env)


def refused(port: int) -> tuple[str, ...]:
    return ("check", "--database-url", f"postgresql://u:pw-Term-42@127.0.0.1:{port}/db")


def test_a_terminal_gets_colour_on_results_and_errors(closed_port: int) -> None:
    code, screen = in_terminal(*refused(closed_port))
    assert code == 1
    assert "\x1b[1;31m  ✗ tcp" in screen  # the failing rung in red
    assert "\x1b[32m  ✓\x1b[0m url" in screen  # a passing one in green
    assert "1 of 1 failed." in SGR.sub("", screen)
    code, screen = in_terminal("check", "--databse-url", "x")
    assert code == 2
    assert screen.startswith("\x1b[1;31merror:\x1b[0m No such option: --databse-url")


@pytest.mark.parametrize(
    "env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}, {"GITHUB_ACTIONS": "true"}], ids=str
)
def test_no_color_a_dumb_terminal_and_github_actions_stay_plain(
    env: dict[str, str], closed_port: int
) -> None:
    code, screen = in_terminal(*refused(closed_port), env=env)
    assert code == 1
    assert "✗ tcp" in screen
    assert not SGR.search(screen), screen


def test_json_stays_plain_on_a_terminal(closed_port: int) -> None:
    code, screen = in_terminal(*refused(closed_port), "--json")
    assert code == 1
    assert '"failed_rung": "tcp"' in screen
    assert not SGR.search(screen), screen


def test_a_pipe_stays_byte_for_byte_plain(closed_port: int) -> None:
    result = piped(*refused(closed_port))
    assert result.returncode == 1
    assert "\x1b" not in result.stdout + result.stderr
    assert "  ✗ tcp       127.0.0.1:" in result.stdout


def test_force_color_colours_a_pipe_as_rich_does_but_never_spins(silent_port: int) -> None:
    result = piped(*refused(silent_port), "--timeout", "1", env={"FORCE_COLOR": "1"})
    assert result.returncode == 1
    assert SGR.search(result.stdout)
    assert not SPINNER_FRAMES & set(result.stdout + result.stderr)


def test_a_slow_check_spins_on_a_terminal_only(silent_port: int) -> None:
    # The silent server holds the tls rung for the whole --timeout: the spinner shows.
    code, screen = in_terminal(*refused(silent_port), "--timeout", "1")
    assert code == 1
    assert SPINNER_FRAMES & set(screen), screen
    assert "checking DATABASE_URL" in screen
    code, screen = in_terminal(*refused(silent_port), "--timeout", "1", env={"NO_COLOR": "1"})
    assert code == 1
    assert not SPINNER_FRAMES & set(screen) and not SGR.search(screen), screen
    result = piped(*refused(silent_port), "--timeout", "1")
    assert result.returncode == 1
    assert not SPINNER_FRAMES & set(result.stdout + result.stderr)
    assert "checking" not in result.stdout + result.stderr


# -- Output on a stream that says it is a terminal -------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLORTERM"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("terminal_env")
def test_every_message_kind_has_its_look() -> None:
    err = Terminal()
    out = Output(stdout=Terminal(), stderr=err, github_actions=False)
    out.step("creating x")
    out.success("wrote y")
    out.warn("careful")
    out.info("plain info")
    lines = err.getvalue().splitlines()
    assert lines[0] == "\x1b[36m•\x1b[0m creating x"
    assert lines[1] == "\x1b[32m✓\x1b[0m wrote y"
    assert lines[2] == "\x1b[1;33mwarning:\x1b[0m careful"
    assert lines[3] == "plain info"


@pytest.mark.usefixtures("terminal_env")
def test_the_wait_spins_on_a_terminal_and_leaves_no_frame_behind() -> None:
    err = Terminal()
    out = Output(stdout=Terminal(), stderr=err, github_actions=False)
    with out.live("Waiting for the stores") as progress:
        progress.update("db", "authkit-db: creating (3 s)")
    screen = err.getvalue()
    assert SPINNER_FRAMES & set(screen)
    last = screen.rsplit("\x1b[2K", 1)[-1]  # what stays on screen after the last redraw
    assert "Waiting for the stores" in last and "authkit-db: creating (3 s)" in last
    assert not SPINNER_FRAMES & set(last)


@pytest.mark.usefixtures("terminal_env")
def test_no_color_keeps_the_wait_plain_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    err = Terminal()
    out = Output(stdout=Terminal(), stderr=err, github_actions=False)
    with out.live("Waiting for the stores") as progress:
        progress.update("db", "authkit-db: creating (3 s)")
    with out.spinner("starting"):
        pass
    assert "authkit-db: creating (3 s)" in err.getvalue()
    assert not SGR.search(err.getvalue()) and not SPINNER_FRAMES & set(err.getvalue())


def test_not_a_terminal_prints_nothing_for_a_spinner_and_imports_no_rich() -> None:
    code = (
        "import io, sys\n"
        "from authkit_setup.output import Output\n"
        "err = io.StringIO()\n"
        "out = Output(stdout=io.StringIO(), stderr=err)\n"
        "with out.spinner('starting'):\n"
        "    out.step('x')\n"
        "out.warn('y')\n"
        "assert err.getvalue() == 'x\\nwarning: y\\n', err.getvalue()\n"
        "assert 'rich' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(None)
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.usefixtures("terminal_env")
def test_a_spinner_shows_only_when_the_wait_is_long_and_goes_away() -> None:
    import time

    err = Terminal()
    out = Output(stdout=Terminal(), stderr=err, github_actions=False)
    with out.spinner("checking DATABASE_URL", after=5.0):
        pass  # over long before the spinner was due
    assert err.getvalue() == ""
    with out.spinner("PostgreSQL: starting", after=0.05):
        time.sleep(0.4)
    screen = err.getvalue()
    assert SPINNER_FRAMES & set(screen) and "PostgreSQL: starting" in screen
    assert screen.endswith("\x1b[2K"), repr(screen[-40:])  # the line is erased when it stops
