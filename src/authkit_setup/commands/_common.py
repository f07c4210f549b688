"""Shared option types, small input checks, and the one place a command turns errors into exit
codes. Light imports only: every command module imports this at start-up (`--help`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from authkit_setup.errors import AuthkitError, InterruptedByUser, UsageError
from authkit_setup.output import Output

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout (progress stays on stderr)."),
]
EnvFileOption = Annotated[
    Path,
    typer.Option(
        "--env-file", help="A .env file to read settings from (never loaded into the environment)."
    ),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds each connection rung may take.", min=0.1)
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", help="Render API key. [env var: RENDER_API_KEY]", show_default=False),
]

# Defaults stay at each use site (`db_name: DbNameOption = "authkit-db"`): Typer takes a
# parameter's default from the signature, never from the Annotated metadata.
ServiceOption = Annotated[
    str,
    typer.Option("--service", help="The service: exact name or srv-… ID.", show_default=False),
]
WorkspaceOption = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        help="Workspace ID (tea-…) or name; default: the service's.",
        envvar="RENDER_WORKSPACE",
        show_default=False,
    ),
]
# For commands where --service is optional (status, teardown).
WorkspaceOrOnlyOption = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        help="Workspace ID (tea-…) or name; default: the service's, or the key's only one.",
        envvar="RENDER_WORKSPACE",
        show_default=False,
    ),
]
DbNameOption = Annotated[str, typer.Option("--db-name", help="Name of the Postgres store.")]
RedisNameOption = Annotated[str, typer.Option("--redis-name", help="Name of the Key Value store.")]
# Base names, to which a preview's suffix is added (status, teardown).
BaseDbNameOption = Annotated[
    str, typer.Option("--db-name", help="Base name of the Postgres store.")
]
BaseRedisNameOption = Annotated[
    str, typer.Option("--redis-name", help="Base name of the Key Value store.")
]
EnvForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Replace a DATABASE_URL / REDIS_URL in the .env that points elsewhere."
    ),
]
NoVerifyOption = Annotated[bool, typer.Option("--no-verify", help="Skip the connection checks.")]
VerifyInsideOption = Annotated[
    bool,
    typer.Option(
        "--verify-inside",
        help="Check the stores from inside the service with one Render one-off job (internal "
        "URLs included; costs a few seconds of the instance type's price; not on free instances).",
    ),
]
WaitDeployOption = Annotated[
    bool, typer.Option("--wait-deploy", help="Wait until the deploy is live.")
]


def require_nonempty(*flags: tuple[str, str]) -> None:
    """Stop with a usage error (exit 2) at the first `(flag, value)` whose value is blank."""
    for flag, value in flags:
        if not value.strip():
            raise UsageError(f"{flag} is empty")


def check_deploy_flags(*, no_deploy: bool, wait_deploy: bool) -> None:
    """--no-deploy and --wait-deploy cannot both be given."""
    if no_deploy and wait_deploy:
        raise UsageError("--no-deploy and --wait-deploy contradict each other")


def confirmer(out: Output) -> Callable[[str], bool]:
    """A yes/no question on stderr; "no" when there is no terminal to ask."""

    def confirm(question: str) -> bool:
        return out.can_prompt and typer.confirm(question, default=False, err=True)

    return confirm


def execute(out: Output, body: Callable[[], int]) -> None:
    """Run a command body; map the error tree to messages and exit codes in one place."""
    try:
        code = body()
    except AuthkitError as err:
        out.error(err)
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        stopped = InterruptedByUser(
            "interrupted; nothing is half-done that a re-run cannot finish",
            hint="run the same command again to resume",
        )
        out.error(stopped)
        raise typer.Exit(stopped.exit_code) from None
    raise typer.Exit(code)
