"""Shared option types, the one way a command builds its options object and runs its body.
Light imports only: every command module imports this at start-up (`--help`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import typer

from authkit_setup.outcome import run_body
from authkit_setup.output import Output

T = TypeVar("T")


def value_flag(
    flag: str, metavar: str, help: str, *, show_default: bool = True, **extra: Any
) -> Any:
    """An option that takes a value: its flag, a placeholder a person reads (`<region>`) and
    what it is for; anything else Typer takes (`envvar`, `min`...) passes through."""
    return typer.Option(flag, metavar=metavar, help=help, show_default=show_default, **extra)


JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout (progress stays on stderr)."),
]
EnvFileOption = Annotated[
    Path,
    value_flag(
        "--env-file",
        "<path>",
        "A .env file to read settings from (never loaded into the environment).",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    value_flag(
        "--api-key",
        "<key>",
        "Render API key; a value here shows in `ps` and shell history: prefer RENDER_API_KEY or --api-key-file <path> (- reads stdin). [env var: RENDER_API_KEY]",
        show_default=False,
    ),
]

# Defaults stay at each use site (`db_name: DbNameOption = "authkit-db"`): Typer takes a
# parameter's default from the signature, never from the Annotated metadata.


def service_flag(help: str) -> Any:
    """--service <service>, declared once; `help` says which service and what for."""
    return typer.Option("--service", metavar="<service>", help=help, show_default=False)


def preview_flag(help: str) -> Any:
    """--preview <name>, declared once; `help` says what the command does with the preview."""
    return typer.Option("--preview", metavar="<name>", help=help, show_default=False)


def timeout_flag(help: str) -> Any:
    """--timeout <seconds> (at least 1) for how long a command waits; `help` says for what."""
    return typer.Option("--timeout", metavar="<seconds>", help=help, min=1)


ServiceOption = Annotated[str, service_flag("The service: exact name or srv-… ID.")]
WorkspaceOption = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        metavar="<workspace>",
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
        metavar="<workspace>",
        help="Workspace ID (tea-…) or name; default: the service's, or the key's only one.",
        envvar="RENDER_WORKSPACE",
        show_default=False,
    ),
]
DbNameOption = Annotated[str, value_flag("--db-name", "<name>", "Name of the Postgres store.")]
RedisNameOption = Annotated[
    str, value_flag("--redis-name", "<name>", "Name of the Key Value store.")
]
# Base names, to which a preview's suffix is added (status, teardown).
BaseDbNameOption = Annotated[
    str, value_flag("--db-name", "<name>", "Base name of the Postgres store.")
]
BaseRedisNameOption = Annotated[
    str, value_flag("--redis-name", "<name>", "Base name of the Key Value store.")
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


def yes_flag(
    help: str = "Accepted so CI scripts can pass it to every command; this one never asks.",
) -> Any:
    """--yes / -y, declared once for every command that changes something (CI scripts pass it
    everywhere); `help` says what it means where the command can ask."""
    return typer.Option("--yes", "-y", help=help)


# For the commands that never ask (provision, migrations, backup, blueprint, local, local stop).
YesOption = Annotated[bool, yes_flag()]


def options(
    cls: Callable[..., T],
    params: Mapping[str, object],
    *,
    output: tuple[str, ...] = ("json_output",),
    no_op: tuple[str, ...] = (),
) -> T:
    """The command's one options object: dataclass `cls` built from the command's parameters
    (`locals()` as the command starts, its `**credentials` included), by name. Every parameter
    but the `output` ones and the `no_op` ones (accepted, meaning nothing here: `--yes` where
    nothing asks) must be a field, so an option can never be dropped on the way."""
    credentials = params.get("credentials")
    if isinstance(credentials, Mapping):
        params = {**{k: v for k, v in params.items() if k != "credentials"}, **credentials}
    names = getattr(cls, "__dataclass_fields__")  # noqa: B009 - any dataclass
    unknown = set(params) - set(names) - set(output) - set(no_op)
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


class Report(Protocol):
    """What a command's domain call returns: `to_json()` is the command's one JSON document,
    whose "ok" is the exit code (0, else 1)."""

    def to_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Report)


def run_command(
    json_output: bool, act: Callable[[Output], R], summary: Callable[[Output, R], None]
) -> None:
    """A command's run after its options are parsed: `act` with the command's Output, then its
    report as the JSON document (--json) or as `summary` for people; exit 0 if the document says
    it is ok, else 1."""
    out = Output(json_mode=json_output)

    def body() -> int:
        report = act(out)
        doc = report.to_json()
        out.result(doc)
        if not out.json_mode:
            summary(out, report)
        return 0 if doc["ok"] else 1

    execute(out, body)
