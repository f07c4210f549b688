"""Shared option types and the one place a command turns errors into exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from authkit_setup.errors import AuthkitError, InterruptedByUser
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
