"""The provider options `render`, `provision`, `status` and `teardown` share (--postgres,
--redis, --provider-region and each provider's credentials). Their values become a
`ProviderChoice` (providers/registry.py), which builds the providers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from authkit_setup.commands._common import value_flag

Command = TypeVar("Command", bound=Callable[..., None])

PostgresWhereOption = Annotated[
    str,
    value_flag(
        "--postgres", "<provider>", "Where the Postgres store lives: render, neon or supabase."
    ),
]
RedisWhereOption = Annotated[
    str,
    value_flag("--redis", "<provider>", "Where the Redis store lives: render or upstash."),
]
ProviderRegionOption = Annotated[
    str | None,
    value_flag(
        "--provider-region",
        "<region>",
        "Region for Neon/Supabase/Upstash stores, e.g. us-east-2 (Neon: aws-us-east-2); default: the one nearest the Render region.",
        show_default=False,
    ),
]
NeonApiKeyOption = Annotated[
    str | None,
    value_flag(
        "--neon-api-key",
        "<key>",
        "Neon API key; a value here shows in `ps` and shell history: prefer NEON_API_KEY or --neon-api-key-file <path> (- reads stdin). [env var: NEON_API_KEY]",
        show_default=False,
    ),
]
NeonOrgOption = Annotated[
    str | None,
    value_flag(
        "--neon-org-id",
        "<org-id>",
        "Neon organization (org-…). [env var: NEON_ORG_ID]",
        show_default=False,
    ),
]
SupabaseTokenOption = Annotated[
    str | None,
    value_flag(
        "--supabase-access-token",
        "<token>",
        "Supabase personal access token (sbp_…); a value here shows in `ps` and shell history: prefer SUPABASE_ACCESS_TOKEN or --supabase-access-token-file <path> (- reads stdin). [env var: SUPABASE_ACCESS_TOKEN]",
        show_default=False,
    ),
]
SupabaseOrgOption = Annotated[
    str | None,
    value_flag(
        "--supabase-org",
        "<slug>",
        "Supabase organization slug; default: your only one. [env var: SUPABASE_ORG]",
        show_default=False,
    ),
]
SupabasePasswordOption = Annotated[
    str | None,
    value_flag(
        "--supabase-db-password",
        "<password>",
        "Database password of an existing Supabase project (or the one to give a new project); a value here shows in `ps` and shell history: prefer SUPABASE_DB_PASSWORD or --supabase-db-password-file <path> (- reads stdin). [env var: SUPABASE_DB_PASSWORD]",
        show_default=False,
    ),
]
UpstashEmailOption = Annotated[
    str | None,
    value_flag(
        "--upstash-email",
        "<email>",
        "Email of the Upstash account; the Upstash API logs in with it and --upstash-api-key. [env var: UPSTASH_EMAIL]",
        show_default=False,
    ),
]
UpstashApiKeyOption = Annotated[
    str | None,
    value_flag(
        "--upstash-api-key",
        "<key>",
        "Upstash API key; a value here shows in `ps` and shell history: prefer UPSTASH_API_KEY or --upstash-api-key-file <path> (- reads stdin). [env var: UPSTASH_API_KEY]",
        show_default=False,
    ),
]

CREDENTIALS: dict[str, Any] = {
    "neon_api_key": NeonApiKeyOption,
    "neon_org_id": NeonOrgOption,
    "supabase_access_token": SupabaseTokenOption,
    "supabase_org": SupabaseOrgOption,
    "supabase_db_password": SupabasePasswordOption,
    "upstash_email": UpstashEmailOption,
    "upstash_api_key": UpstashApiKeyOption,
}


def with_credentials(*, db_password: bool = True) -> Callable[[Command], Command]:
    """Give a command the providers' credential options, declared once here: Typer sees them
    in the command's signature just before --api-key (or --json), and the command receives
    them in its `**credentials`. `db_password`: also --supabase-db-password (for commands that
    create or connect to a Supabase database)."""
    names = [n for n in CREDENTIALS if db_password or n != "supabase_db_password"]

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        at = next(i for i, p in enumerate(params) if p.name in ("api_key", "json_output"))
        added = [
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=CREDENTIALS[name]
            )
            for name in names
        ]
        ordered = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in params[:at] + added + params[at:]
        ]

        @functools.wraps(command)
        def with_options(**kwargs: Any) -> None:
            command(**kwargs)

        with_options.__signature__ = signature.replace(parameters=ordered)  # type: ignore[attr-defined]
        return with_options  # type: ignore[return-value]

    return decorate
