"""`authkit-setup local` (+ status, stop, destroy): PostgreSQL and Redis on this machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from authkit_setup.commands._common import (
    EnvForceOption,
    JsonOption,
    YesOption,
    execute,
    run_command,
    value_flag,
    yes_flag,
)
from authkit_setup.errors import AuthkitError, UsageError
from authkit_setup.output import Output

if TYPE_CHECKING:
    from authkit_setup.local.state import LocalPaths, LocalStatusReport, UpReport

HELP = """Run PostgreSQL and Redis on this machine for development, and write their URLs to .env.

Starts both servers from pip-installed binaries (the 'local' extra), listening on 127.0.0.1
only, with their data in a folder of the project (.authkit beside the .env file, added to
.gitignore), so the data survives restarts. Creates database authkit and user authkit_user
with a generated password, writes DATABASE_URL and REDIS_URL into the .env file (mode 600,
every other line kept), and verifies both with the `check` ladder. Safe to re-run: running
servers, ports and passwords are reused; stopped servers start again with the same ones.

Exit codes: 0 up and verified; 1 a server could not start, a port is taken, a check failed, or
the .env file points at other servers (see --force); 2 bad input, e.g. --data-dir is a file.
`local status` gates like `status`: 0 while both servers run, 1 when one is stopped or none is
set up here.

\b
Examples:
  authkit-setup local
  authkit-setup local --json
  authkit-setup local --port-postgres 5433 --port-redis 6380
  authkit-setup local status
  authkit-setup local stop
  authkit-setup local destroy --yes
"""

app = typer.Typer(
    name="local",
    help=HELP,
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EnvFileOption = Annotated[
    Path,
    value_flag(
        "--env-file", "<path>", "The .env file to write DATABASE_URL and REDIS_URL into (mode 600)."
    ),
]
DataDirOption = Annotated[
    Path | None,
    value_flag(
        "--data-dir",
        "<dir>",
        "Folder for the servers' data and state.json. [default: .authkit beside the .env file]",
        show_default=False,
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="<seconds>",
        help="Seconds each server may take to start or stop.",
        min=0.1,
    ),
]
SubEnvFileOption = Annotated[
    Path | None,
    value_flag(
        "--env-file",
        "<path>",
        "The .env file `local` wrote to. [default: .env]",
        show_default=False,
    ),
]
SubTimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        metavar="<seconds>",
        help="Seconds each server may take to stop. [default: 30]",
        min=0.1,
        show_default=False,
    ),
]


def _port_option(flag: str, server: str) -> Any:
    """--port-postgres / --port-redis: one declaration, the server named in the help."""
    return typer.Option(
        flag,
        metavar="<port>",
        min=1024,
        max=65535,
        help=f"Port on 127.0.0.1 for {server}; default: the remembered one, else a free one.",
        show_default=False,
    )


@dataclass(frozen=True)
class _Shared:
    """Options given to `local` before a subcommand (`local --json status`, `local -y destroy`)."""

    env_file: Path
    data_dir: Path | None
    timeout: float
    json_output: bool
    yes: bool = False


@app.callback()
def local(
    ctx: typer.Context,
    env_file: EnvFileOption = Path(".env"),
    data_dir: DataDirOption = None,
    port_postgres: Annotated[int | None, _port_option("--port-postgres", "PostgreSQL")] = None,
    port_redis: Annotated[int | None, _port_option("--port-redis", "Redis")] = None,
    force: EnvForceOption = False,
    timeout: TimeoutOption = 30.0,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        if port_postgres is not None or port_redis is not None or force:

            def misplaced() -> int:
                raise UsageError(
                    "--port-postgres, --port-redis and --force apply to `authkit-setup local` "
                    f"itself, not to `local {ctx.invoked_subcommand}`"
                )

            execute(Output(json_mode=json_output), misplaced)
        ctx.obj = _Shared(env_file, data_dir, timeout, json_output, yes)
        return

    def up(out: Output) -> UpReport:
        from authkit_setup.local.state import resolve_paths
        from authkit_setup.local.up import UpOptions, bring_up

        paths = resolve_paths(env_file, data_dir)
        opts = UpOptions(
            port_postgres=port_postgres, port_redis=port_redis, force=force, timeout=timeout
        )
        return bring_up(paths, opts, out)

    run_command(json_output, up, _print_up)


def _shared(
    ctx: typer.Context,
    env_file: Path | None,
    data_dir: Path | None,
    timeout: float | None,
    json_output: bool,
) -> tuple[bool, Path, Path | None, float]:
    """A subcommand's --json, --env-file, --data-dir and --timeout, else those given to `local`."""
    parent = ctx.obj if isinstance(ctx.obj, _Shared) else _Shared(Path(".env"), None, 30.0, False)
    return (
        json_output or parent.json_output,
        env_file if env_file is not None else parent.env_file,
        data_dir if data_dir is not None else parent.data_dir,
        timeout if timeout is not None else parent.timeout,
    )


@app.command(
    help="Show each local server: port, pid, running, data folder. Exit codes: 0 both servers "
    "run, 1 otherwise (one stopped, or none set up here), 2 bad input."
)
def status(
    ctx: typer.Context,
    env_file: SubEnvFileOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    json_mode, env, data, _ = _shared(ctx, env_file, data_dir, None, json_output)

    def collect(out: Output) -> LocalStatusReport:
        from authkit_setup.local.lifecycle import server_status
        from authkit_setup.local.state import resolve_paths

        return server_status(resolve_paths(env, data))

    run_command(json_mode, collect, _print_status)


@app.command(help="Stop both local servers; their data stays (`authkit-setup local` starts them).")
def stop(
    ctx: typer.Context,
    env_file: SubEnvFileOption = None,
    data_dir: DataDirOption = None,
    timeout: SubTimeoutOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    json_mode, env, data, seconds = _shared(ctx, env_file, data_dir, timeout, json_output)

    def stop_all(out: Output) -> LocalStatusReport:
        from authkit_setup.local.lifecycle import stop_servers
        from authkit_setup.local.state import resolve_paths

        return stop_servers(resolve_paths(env, data), out, seconds)

    run_command(json_mode, stop_all, _print_stopped)


@app.command(
    help="Stop both local servers and delete their data; take their URLs out of .env "
    "(only if they still point at them). Asks first, or pass --yes."
)
def destroy(
    ctx: typer.Context,
    yes: Annotated[bool, yes_flag("Do not ask (required without a terminal).")] = False,
    env_file: SubEnvFileOption = None,
    data_dir: DataDirOption = None,
    timeout: SubTimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    json_mode, env, data, seconds = _shared(ctx, env_file, data_dir, timeout, json_output)

    def destroy_all(out: Output) -> LocalStatusReport:
        from authkit_setup.local.lifecycle import destroy
        from authkit_setup.local.state import resolve_paths

        paths = resolve_paths(env, data)
        if not (yes or (isinstance(ctx.obj, _Shared) and ctx.obj.yes)):
            _confirm_destroy(out, paths)
        return destroy(paths, out, seconds)

    run_command(json_mode, destroy_all, _print_removed)


def _print_stopped(out: Output, report: LocalStatusReport) -> None:
    if not report.servers:
        out.print(f"No local servers in {report.paths.data_dir}.")
    else:
        out.print("Local servers stopped; their data stays. Start: authkit-setup local")


def _print_removed(out: Output, report: LocalStatusReport) -> None:
    removed = ", ".join(str(p) for p in report.removed) or "nothing"
    out.print(f"Removed: {removed}")


def _confirm_destroy(out: Output, paths: LocalPaths) -> None:
    question = f"Stop the local servers and delete their data in {paths.data_dir}?"
    if not out.can_prompt:
        raise UsageError(
            f"`local destroy` deletes the local databases in {paths.data_dir}: "
            "pass --yes to confirm (there is no terminal to ask)"
        )
    if not typer.confirm(question, default=False, err=True):
        raise AuthkitError("not confirmed; nothing was deleted")


def _flags(paths: LocalPaths) -> str:
    """The options a follow-up command needs to find the same servers."""
    from authkit_setup.local.state import DEFAULT_DATA_DIR_NAME

    flags = ""
    if paths.env_file != Path.cwd() / ".env":
        flags += f" --env-file {paths.env_file}"
    if paths.data_dir != paths.env_file.parent / DEFAULT_DATA_DIR_NAME:
        flags += f" --data-dir {paths.data_dir}"
    return flags


def _print_up(out: Output, report: UpReport) -> None:
    from authkit_setup.check.urls import print_check

    out.print(f"Local PostgreSQL and Redis (data: {report.paths.data_dir})", role="heading")
    for server in report.servers:
        out.print(
            f"  {server.server:<9} {server.host}:{server.port}  pid {server.pid}  {server.action}"
        )
    env = ", ".join(f"{change.key} {change.action}" for change in report.env)
    out.print(f"  {report.paths.env_file}: {env}")
    for server in report.servers:
        out.print(f"    {server.url}")
    out.print()
    for result in report.checks:
        print_check(out, result)
    flags = _flags(report.paths)
    if report.ok:
        out.print("All checks passed.", role="ok")
    else:
        failed = sum(1 for c in report.checks if not c.ok)
        out.print(f"{failed} of {len(report.checks)} checks failed.", role="failed")
    out.print(
        f"Status: authkit-setup local status{flags}   Stop: authkit-setup local stop{flags}   "
        f"Delete: authkit-setup local destroy --yes{flags}"
    )


def _print_status(out: Output, report: LocalStatusReport) -> None:
    if not report.servers:
        out.print(
            f"No local servers in {report.paths.data_dir}; start them with: authkit-setup local"
        )
        return
    out.table(
        f"Local servers (state: {report.paths.data_dir})",
        ["server", "port", "pid", "running", "data dir"],
        [
            [
                s.server,
                f"{s.host}:{s.port}",
                str(s.pid or "-"),
                "yes" if s.running else "no",
                str(s.data_dir),
            ]
            for s in report.servers
        ],
    )
    if report.stopped:
        names = " and ".join(s.title for s in report.stopped)
        out.print(f"{names} not running; start: authkit-setup local{_flags(report.paths)}")
