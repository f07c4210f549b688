"""The console entry point: `--help` and `--version` answered before Typer is imported.

Typer builds each command's parameters with pydantic, which costs more than the rest of the
start-up (about 2.3 x `import typer` for `authkit-setup render --help`). The help of every command
never changes between releases, so it is rendered once, by Typer itself, into `help.json` beside
this file (`python -m authkit_setup.launch --write`), and printed from there when the command
line asks for nothing but help. A test renders every help page with Typer again and compares, so
the stored pages cannot drift from what Typer would print.

Typer (Click) wraps help to the terminal's width, at most 80 columns: stored pages are used only
when the terminal is at least 80 columns wide (or not a terminal), and never while a shell's
completion is being computed. Anything else goes to Typer (`authkit_setup.cli.main`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

HELP_FILE = Path(__file__).with_name("help.json")
HELP_FLAGS = frozenset({"--help", "-h"})
WIDTH = 80  # Click's default max_width: pages are rendered at this width


def stored_answer(argv: list[str]) -> str | None:
    """The text to print for `argv` without Typer, or None when Typer must answer."""
    if argv == ["--version"]:
        from authkit_setup import __version__

        return f"authkit-setup {__version__}\n"
    if not argv or argv[-1] not in HELP_FLAGS or any(a.startswith("-") for a in argv[:-1]):
        return None
    if any(name.endswith("_COMPLETE") for name in os.environ):  # shell completion at work
        return None
    if shutil.get_terminal_size().columns < WIDTH:
        return None
    try:
        pages = json.loads(HELP_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    page = pages.get(" ".join(argv[:-1]))
    return page if isinstance(page, str) else None


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    text = stored_answer(args)
    if text is not None:
        sys.stdout.write(text)
        sys.stdout.flush()
        sys.exit(0)
    from authkit_setup.cli import main as typer_main

    typer_main(args)


def render_pages(width: int = WIDTH) -> dict[str, str]:
    """Every command's help, rendered by Typer at `width` columns (help.json: WIDTH)."""
    import contextlib
    import io

    import typer

    from authkit_setup.cli import app
    from authkit_setup.cli import main as typer_main

    def paths(command: object, prefix: list[str]) -> list[list[str]]:
        found = [prefix]
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if not getattr(sub, "hidden", False):
                found += paths(sub, [*prefix, name])
        return found

    pages: dict[str, str] = {}
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        for path in paths(typer.main.get_command(app), []):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                typer_main([*path, "--help"])
            pages[" ".join(path)] = out.getvalue()
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return pages


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        text = json.dumps(render_pages(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        HELP_FILE.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {HELP_FILE.name}\n")
    else:
        main()
