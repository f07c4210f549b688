"""`authkit-setup blueprint`: the same setup as a Render Blueprint (render.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from authkit_setup.commands._common import (
    ApiKeyOption,
    DbNameOption,
    JsonOption,
    RedisNameOption,
    WorkspaceOption,
    execute,
    require_nonempty,
)
from authkit_setup.output import Output

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
        str | None,
        typer.Option(
            "--service",
            help="Read the values from this Render service (name or srv-… ID).",
            show_default=False,
        ),
    ] = None,
    db_name: DbNameOption = "authkit-db",
    redis_name: RedisNameOption = "authkit-redis",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the YAML to this file.", show_default=False),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the --output file if it exists.")
    ] = False,
    workspace: WorkspaceOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    out = Output(json_mode=json_output)

    def body() -> int:
        from authkit_setup.errors import UsageError
        from authkit_setup.flow.blueprint import (
            blueprint_from_render,
            default_blueprint,
            write_blueprint,
        )
        from authkit_setup.secrets import redact

        require_nonempty(("--db-name", db_name), ("--redis-name", redis_name))
        if output is not None and output.exists() and not force:
            # Checked before any API call, and again when writing.
            raise UsageError(
                f"--output {output} already exists",
                hint="pass --force to overwrite it, or choose another file",
            )
        if service is None:
            result = default_blueprint(db_name=db_name, redis_name=redis_name)
        else:
            from authkit_setup.providers import render_client

            with render_client(out, api_key=api_key) as client:
                result = blueprint_from_render(
                    client, service, workspace, out, db_name=db_name, redis_name=redis_name
                )
        text = result.yaml
        doc = {**result.to_json(), "path": str(output) if output is not None else None}
        if output is not None:
            write_blueprint(output, text, force=force)
            out.success(f"wrote {output}")
        elif redact(text) != text:
            out.warn(
                "a value (e.g. a build command) looks like a secret and is masked below; "
                "use --output FILE to write it as it is"
            )
        out.result(doc)
        if output is None:
            out.print(text.rstrip("\n"))
        return 0

    execute(out, body)
