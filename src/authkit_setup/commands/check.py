"""`authkit-setup check`: diagnose DATABASE_URL and REDIS_URL rung by rung."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from authkit_setup.commands._common import (
    ApiKeyOption,
    EnvFileOption,
    JsonOption,
    VerifyInsideOption,
    execute,
    options,
    service_flag,
    value_flag,
)
from authkit_setup.output import Output

HELP = """Diagnose DATABASE_URL / REDIS_URL: url, dns, tcp, tls, auth, database, query.

Stops at the first failing rung of each URL, names it, and says how to fix it. URLs come from
--database-url/--redis-url, else the environment, else the --env-file. Exit 0 when every URL
given passes (warnings allowed), 1 when any fails, 2 on usage errors.

With --service NAME --verify-inside the service's own DATABASE_URL / REDIS_URL are checked from
inside the service by one Render one-off job (a probe in its runtime, standard library only,
reading the URLs from its own environment), so internal URLs are proven too. A job costs a few
seconds of the instance type's price; free instance types cannot run one (skipped, exit 0).

\b
Examples:
  authkit-setup check
  printf '%s' "$DATABASE_URL" | authkit-setup check --database-url-file - --json
  authkit-setup check --service my-api --timeout 3
  authkit-setup check --service my-api --verify-inside --json
"""


def check(
    database_url: Annotated[
        str | None,
        value_flag(
            "--database-url",
            "<url>",
            "PostgreSQL URL to check; a URL here (with its password) shows in `ps` and shell history: prefer DATABASE_URL or --database-url-file <path> (- reads stdin). [env var: DATABASE_URL]",
            show_default=False,
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        value_flag(
            "--redis-url",
            "<url>",
            "Redis URL to check; a URL here (with its password) shows in `ps` and shell history: prefer REDIS_URL or --redis-url-file <path> (- reads stdin). [env var: REDIS_URL]",
            show_default=False,
        ),
    ] = None,
    env_file: EnvFileOption = Path(".env"),
    service: Annotated[
        str | None,
        service_flag("Check the variables set on this Render service (name or srv-ID)."),
    ] = None,
    workspace: Annotated[
        str | None,
        value_flag(
            "--workspace", "<workspace>", "Render workspace (owner) ID or name.", show_default=False
        ),
    ] = None,
    api_key: ApiKeyOption = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="<seconds>",
            help="Seconds each rung may take (default 5); with --verify-inside, seconds to wait "
            "for the job (default 300).",
            min=0.1,
            max=300,
            show_default=False,
        ),
    ] = None,
    verify_inside: VerifyInsideOption = False,
    json_output: JsonOption = False,
) -> None:
    """Diagnose DATABASE_URL / REDIS_URL (see HELP)."""
    params = locals()
    out = Output(json_mode=json_output)

    def body() -> int:
        from authkit_setup.check.urls import CheckRequest, run_check

        return run_check(out, options(CheckRequest, params))

    execute(out, body)
