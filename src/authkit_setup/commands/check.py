"""`authkit-setup check`: diagnose DATABASE_URL and REDIS_URL rung by rung."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from authkit_setup.commands._common import ApiKeyOption, EnvFileOption, JsonOption, execute
from authkit_setup.output import Output

HELP = """Diagnose DATABASE_URL / REDIS_URL: url, dns, tcp, tls, auth, database, query.

Stops at the first failing rung of each URL, names it, and says how to fix it. URLs come from
--database-url/--redis-url, else the environment, else the --env-file. Exit 0 when every URL
given passes (warnings allowed), 1 when any fails, 2 on usage errors.

\b
Examples:
  authkit-setup check
  printf '%s' "$DATABASE_URL" | authkit-setup check --database-url-file - --json
  authkit-setup check --service my-api --timeout 3
"""


def check(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL to check; a URL here (with its password) shows in `ps` and "
            "shell history: prefer DATABASE_URL or --database-url-file PATH (- reads stdin). "
            "[env var: DATABASE_URL]",
            show_default=False,
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            help="Redis URL to check; a URL here (with its password) shows in `ps` and shell "
            "history: prefer REDIS_URL or --redis-url-file PATH (- reads stdin). "
            "[env var: REDIS_URL]",
            show_default=False,
        ),
    ] = None,
    env_file: EnvFileOption = Path(".env"),
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help="Check the variables set on this Render service (name or srv-ID).",
            show_default=False,
        ),
    ] = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", help="Render workspace (owner) ID or name.", show_default=False
        ),
    ] = None,
    api_key: ApiKeyOption = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds each rung may take.", min=0.1, max=300)
    ] = 5.0,
    json_output: JsonOption = False,
) -> None:
    """Diagnose DATABASE_URL / REDIS_URL (see HELP)."""
    out = Output(json_mode=json_output)

    def body() -> int:
        from authkit_setup.check.urls import run_check

        return run_check(
            out,
            database_url=database_url,
            redis_url=redis_url,
            env_file=env_file,
            service=service,
            workspace=workspace,
            api_key=api_key,
            timeout=timeout,
        )

    execute(out, body)
