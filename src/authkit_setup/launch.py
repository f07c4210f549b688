"""The console entry point: `--help`, `--version` and `check` answered before Typer is imported.

Typer builds each command's parameters with pydantic, which costs more than the rest of the
start-up (about 2.3 x `import typer` for `authkit-setup render --help`). The help of every command
never changes between releases, so it is rendered once, by Typer itself, into `help.json` beside
this file (`python -m authkit_setup.launch --write`), and printed from there when the command
line asks for nothing but help. A test renders every help page with Typer again and compares, so
the stored pages cannot drift from what Typer would print.

Typer (Click) wraps help to the terminal's width, at most 80 columns: stored pages are used only
when the terminal is at least 80 columns wide (or not a terminal), and never while a shell's
completion is being computed. Anything else goes to Typer (`authkit_setup.cli.main`).

`check` is the command people run again and again (and CI before every deploy), so it is
parsed here too, with the table of its options that Typer itself declared, stored in
`options.json` by the same `--write` (a test compares it with Typer's). Only a plain command
line is parsed here: known long options, each value either glued (`--timeout=3`) or the next
argument not starting with `-`, numbers written as plain decimals within their range, no
option's environment variable set. Anything else, `--help`, a typo or a bad value included,
goes to Typer, which parses it or says what is wrong exactly as before. The run then ends as
under Typer: the same `--…-file` expansion, body and failure mapping (`outcome`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

HELP_FILE = Path(__file__).with_name("help.json")
OPTIONS_FILE = Path(__file__).with_name("options.json")
FAST_COMMANDS = ("check",)  # answered without Typer when the command line is plain
HELP_FLAGS = frozenset({"--help", "-h"})
WIDTH = 80  # Click's default max_width: pages are rendered at this width


def stored_answer(argv: list[str]) -> str | None:
    """The text to print for `argv` without Typer, or None when Typer must answer."""
    if argv == ["--version"]:
        from authkit_setup import __version__

        return f"authkit-setup {__version__}\n"
    if not argv or argv[-1] not in HELP_FLAGS or any(a.startswith("-") for a in argv[:-1]):
        return None
    if _completing():
        return None
    if shutil.get_terminal_size().columns < WIDTH:
        return None
    try:
        pages = json.loads(HELP_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    page = pages.get(" ".join(argv[:-1]))
    return page if isinstance(page, str) else None


def _completing() -> bool:
    return any(name.endswith("_COMPLETE") for name in os.environ)  # shell completion at work


def plain_params(
    table: list[dict[str, Any]], args: list[str], *, file_flags: frozenset[str] = frozenset()
) -> dict[str, Any] | None:
    """The parameters Typer would pass for `args` (the command's own arguments), read with the
    stored option table; None when the line is not plain (see the module's docstring) and Typer
    must parse it. `file_flags` are the `--…-file` forms the secret flags expand from
    (`settings.expand_secret_files`): taken here as options whose value is a path, `-` included."""
    options = {opt: option for option in table for opt in option["opts"]}
    given: dict[str, Any] = {}
    i = 0
    while i < len(args):
        name, glued, inline = args[i].partition("=")
        option = options.get(name)
        if option is None and name in file_flags:
            option = {"name": name, "kind": "file"}
        if option is None:  # a positional, `--`, `-h`, `--help`, a typo: Typer's to answer
            return None
        if option["kind"] == "flag":
            if glued:
                return None
            value: Any = True
        else:
            if glued:
                raw = inline
            elif i + 1 < len(args) and (args[i + 1] == "-" or not args[i + 1].startswith("-")):
                i += 1  # Click would take even `--json` as the value; a person rarely means it
                raw = args[i]
            else:
                return None
            value = _convert(option, raw)
            if value is None:
                return None
        given[option["name"]] = value
        i += 1
    params: dict[str, Any] = {}
    for option in table:
        if option["name"] in given:
            params[option["name"]] = given[option["name"]]
        elif any(var in os.environ for var in option["envvar"]):
            return None  # Click would read the variable: let it
        else:
            params[option["name"]] = _convert(option, option["default"], default=True)
    return params


_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def _convert(option: dict[str, Any], raw: Any, *, default: bool = False) -> Any:
    """`raw` as Typer would pass it; None when only Typer can tell (or it would refuse it)."""
    kind = option["kind"]
    if raw is None and default:
        return None
    if kind in ("str", "file"):
        return raw
    if kind == "path":
        return Path(raw)
    if kind == "flag":
        return bool(raw)
    if kind == "float":
        if not default and not _DECIMAL.fullmatch(raw):
            return None
        number = float(raw)
        low, high = option["min"], option["max"]
        if (low is not None and number < low) or (high is not None and number > high):
            return None
        return number
    return None


def fast_exit_code(args: list[str]) -> int | None:
    """Run a plain `check` command line without Typer and return its exit code; None when
    Typer must answer (not `check`, not plain, shell completion, no stored table)."""
    if not args or args[0] not in FAST_COMMANDS or _completing():
        return None
    try:
        table = json.loads(OPTIONS_FILE.read_text(encoding="utf-8"))[args[0]]
    except (OSError, ValueError, KeyError):
        return None
    from authkit_setup.settings import FILE_SUFFIX, SECRET_FLAGS

    own = {opt for option in table for opt in option["opts"]}
    file_flags = frozenset(flag + FILE_SUFFIX for flag in SECRET_FLAGS if flag in own)
    if plain_params(table, args[1:], file_flags=file_flags) is None:
        return None
    return _run_check(table, args)


def _run_check(table: list[dict[str, Any]], args: list[str]) -> int:
    """cli.main's run of `check`, parsed with the stored table (its shape is plain: checked)."""
    from authkit_setup.check.urls import CheckRequest, run_check
    from authkit_setup.outcome import failure_exit_code, forget_running_output, run_body
    from authkit_setup.output import Output
    from authkit_setup.settings import expand_secret_files

    forget_running_output()
    try:
        expanded = expand_secret_files(args)
        params = plain_params(table, expanded[1:])
        assert params is not None  # each --…-file value is glued (--x=VALUE): still plain
        out = Output(json_mode=params.pop("json_output"))
        return run_body(out, lambda: run_check(out, CheckRequest(**params)))
    except (Exception, KeyboardInterrupt) as exc:
        return failure_exit_code(exc)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    text = stored_answer(args)
    if text is not None:
        sys.stdout.write(text)
        sys.stdout.flush()
        sys.exit(0)
    code = fast_exit_code(args)
    if code is not None:
        sys.exit(code)
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


_KINDS = {str: "str", Path: "path", float: "float", bool: "flag"}


def option_tables() -> dict[str, list[dict[str, Any]]]:
    """The options of each of FAST_COMMANDS as Typer declared them (options.json)."""
    import types
    import typing

    import typer

    from authkit_setup.cli import app

    functions = {info.name: info.callback for info in app.registered_commands}
    group = typer.main.get_command(app)
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in FAST_COMMANDS:
        hints = typing.get_type_hints(functions[name])
        table = []
        for param in getattr(group, "commands", {})[name].params:
            hint = hints[param.name]
            if isinstance(hint, types.UnionType):  # `str | None`: None is the default
                hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
            simple = (
                param.param_type_name == "option"
                and param.nargs == 1
                and not param.multiple
                and not param.secondary_opts
                and param.callback is None
                and param.prompt is None
                and not param.required
                and not param.is_eager
                and param.expose_value
                and hint in _KINDS
                and (hint is bool) == bool(param.is_flag)
                and all(opt.startswith("--") for opt in param.opts)
            )
            if not simple:
                raise ValueError(f"{name} {param.opts}: not a kind launch.plain_params reads")
            envvar = param.envvar
            table.append(
                {
                    "name": param.name,
                    "opts": list(param.opts),
                    "kind": _KINDS[hint],
                    "default": str(param.default) if hint is Path else param.default,
                    "min": getattr(param, "min", None),
                    "max": getattr(param, "max", None),
                    "envvar": [envvar] if isinstance(envvar, str) else list(envvar or []),
                }
            )
        tables[name] = table
    return tables


def _write(path: Path, document: object) -> None:
    text = json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {path.name}\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        _write(HELP_FILE, render_pages())
        _write(OPTIONS_FILE, option_tables())
    else:
        main()
