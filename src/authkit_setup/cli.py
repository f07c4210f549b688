"""The Typer app: wires the commands; `main()` maps every failure to a message and exit code.

Commands are imported lazily inside the wrappers below, so `--help` and `--version` start
without importing httpx, rich or the database drivers.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from authkit_setup import __version__

app = typer.Typer(
    name="authkit-setup",
    help="Provision PostgreSQL and Redis for AuthKit and wire DATABASE_URL / REDIS_URL into your service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"authkit-setup {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Provision PostgreSQL and Redis for AuthKit and wire them into your service."""


def _register() -> None:
    from authkit_setup.commands import check, render

    app.command(name="render", help=render.HELP)(render.render)
    app.command(name="check", help=check.HELP)(check.check)
    from authkit_setup.commands import provision

    app.command(name="provision", help=provision.HELP)(provision.provision)
    from authkit_setup.commands import local

    app.add_typer(local.app, name="local")
    from authkit_setup.commands import backup, blueprint, migrations

    app.command(name="migrations", help=migrations.HELP)(migrations.migrations)
    app.command(name="backup", help=backup.HELP)(backup.backup)
    app.command(name="blueprint", help=blueprint.HELP)(blueprint.blueprint)
    from authkit_setup.commands import status, teardown

    app.command(name="status", help=status.HELP)(status.status)
    app.command(name="teardown", help=teardown.HELP)(teardown.teardown)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point under Typer (launch.py answers help, --version and a plain `check` before
    it). Every failure becomes a message and a documented exit code through
    `outcome.failure_exit_code`, never a traceback (unless AUTHKIT_DEBUG=1)."""
    from authkit_setup.errors import EXIT_INTERRUPTED, EXIT_USAGE
    from authkit_setup.outcome import INTERRUPTED, failure_exit_code, forget_running_output
    from authkit_setup.output import problem
    from authkit_setup.secrets import redact
    from authkit_setup.settings import expand_secret_files

    forget_running_output()
    given = list(sys.argv[1:] if argv is None else argv)
    try:
        args = expand_secret_files(given)
        rv = app(args=args, prog_name="authkit-setup", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        problem(INTERRUPTED, json_mode="--json" in given)
        code = EXIT_INTERRUPTED
    except typer.TyperException as exc:  # click's usage errors: one line, exit 2
        context = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
            # `authkit-setup` alone: the help with the command list, as --help prints it.
            sys.stdout.write(context.get_help() + "\n")
            sys.exit(0)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        first = redact(message.strip().splitlines()[0])
        problem(f"{first} (see --help)", json_mode="--json" in given)
        code = getattr(exc, "exit_code", EXIT_USAGE)
    except (
        Exception,
        KeyboardInterrupt,
    ) as exc:  # the error tree (a bad --…-file too), Ctrl-C, a bug
        code = failure_exit_code(exc)
    sys.exit(code)
