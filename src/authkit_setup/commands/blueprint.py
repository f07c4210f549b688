"""`authkit-setup blueprint`: the same setup as a Render Blueprint (render.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from authkit_setup.commands._common import (
    ApiKeyOption,
    DbNameOption,
    JsonOption,
    RedisNameOption,
    WorkspaceOption,
    YesOption,
    options,
    run_command,
    service_flag,
)
from authkit_setup.output import Output

if TYPE_CHECKING:
    from authkit_setup.production.blueprint import Blueprint

HELP = """Print a render.yaml that declares authkit-db, authkit-redis and the service wired to them.

With --service, the values come from Render: the service (runtime, region, plan, build, start
and pre-deploy commands) and, where they exist, the stores (plan, region, version, policy).
Without it, the defaults `authkit-setup render` uses, with a placeholder web service
`authkit-api` to edit. DATABASE_URL and REDIS_URL are wired with fromDatabase / fromService, so
the file holds no secret.

\b
Examples:
  authkit-setup blueprint
  authkit-setup blueprint --service my-api --output render.yaml
  authkit-setup blueprint --service my-api --json
"""


def blueprint(
    service: Annotated[
        str | None, service_flag("Read the values from this Render service (name or srv-… ID).")
    ] = None,
    db_name: DbNameOption = "authkit-db",
    redis_name: RedisNameOption = "authkit-redis",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="<path>",
            help="Write the YAML to this file.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the --output file if it exists.")
    ] = False,
    yes: YesOption = False,
    workspace: WorkspaceOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    params = locals()

    def make(out: Output) -> Blueprint:
        from authkit_setup.production.blueprint import BlueprintRequest, make_blueprint

        return make_blueprint(options(BlueprintRequest, params, no_op=("yes",)), out)

    run_command(json_output, make, _print_yaml)


def _print_yaml(out: Output, blueprint: Blueprint) -> None:
    if blueprint.path is None:
        out.print(blueprint.yaml.rstrip("\n"))
