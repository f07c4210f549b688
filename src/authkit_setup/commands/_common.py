"""Shared option types, the one way a command builds its options object and runs its body.
Light imports only: every command module imports this at start-up (`--help`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from authkit_setup.inputs import check_deploy_flags as check_deploy_flags
from authkit_setup.inputs import require_nonempty as require_nonempty
from authkit_setup.outcome import run_body
from authkit_setup.output import Output

T = TypeVar("T")

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
    typer.Option(
        "--api-key",
        help="Render API key; a value here shows in `ps` and shell history: prefer "
        "RENDER_API_KEY or --api-key-file PATH (- reads stdin). [env var: RENDER_API_KEY]",
        show_default=False,
    ),
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
WaitDeployOption = Annotated[
    bool, typer.Option("--wait-deploy", help="Wait until the deploy is live.")
]


def options(
    cls: Callable[..., T],
    params: Mapping[str, object],
    *,
    output: tuple[str, ...] = ("json_output",),
) -> T:
    """The command's one options object: dataclass `cls` built from the command's parameters
    (`locals()` as the command starts, its `**credentials` included), by name. Every parameter
    but the `output` ones must be a field, so an option can never be dropped on the way."""
    credentials = params.get("credentials")
    if isinstance(credentials, Mapping):
        params = {**{k: v for k, v in params.items() if k != "credentials"}, **credentials}
    names = getattr(cls, "__dataclass_fields__")  # noqa: B009 - any dataclass
    unknown = set(params) - set(names) - set(output)
    if unknown:
        raise TypeError(f"{cls} has no field for {', '.join(sorted(unknown))}")
    return cls(**{name: value for name, value in params.items() if name in names})


def confirmer(out: Output) -> Callable[[str], bool]:
    """A yes/no question on stderr; "no" when there is no terminal to ask."""

    def confirm(question: str) -> bool:
        return out.can_prompt and typer.confirm(question, default=False, err=True)

    return confirm


def execute(out: Output, body: Callable[[], int]) -> None:
    """Run a command body with `out` as the command's output; its return value is the exit
    code. Errors are reported and mapped to exit codes by cli.main, through `out`; a Ctrl-C
    becomes InterruptedByUser (outcome.run_body), before Click would turn it into a bare abort."""
    raise typer.Exit(run_body(out, body))
