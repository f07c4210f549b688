"""Options shared by `render` and `provision` to choose Neon / Supabase / Upstash, and the one
function that turns them into providers (credentials checked before anything is created)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from authkit_setup.output import Output

if TYPE_CHECKING:
    from authkit_setup.providers.base import Kind, StoreProvider

PostgresWhereOption = Annotated[
    str,
    typer.Option("--postgres", help="Where the Postgres store lives: render, neon or supabase."),
]
RedisWhereOption = Annotated[
    str, typer.Option("--redis", help="Where the Redis store lives: render or upstash.")
]
ProviderRegionOption = Annotated[
    str | None,
    typer.Option(
        "--provider-region",
        help="Region for Neon/Supabase/Upstash stores, e.g. us-east-2 (Neon: aws-us-east-2); "
        "default: the one nearest the Render region.",
        show_default=False,
    ),
]
NeonApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--neon-api-key",
        help="Neon API key; a value here shows in `ps` and shell history: prefer NEON_API_KEY "
        "or --neon-api-key-file PATH (- reads stdin). [env var: NEON_API_KEY]",
        show_default=False,
    ),
]
NeonOrgOption = Annotated[
    str | None,
    typer.Option(
        "--neon-org-id",
        help="Neon organization (org-…). [env var: NEON_ORG_ID]",
        show_default=False,
    ),
]
SupabaseTokenOption = Annotated[
    str | None,
    typer.Option(
        "--supabase-access-token",
        help="Supabase personal access token (sbp_…); a value here shows in `ps` and shell "
        "history: prefer SUPABASE_ACCESS_TOKEN or --supabase-access-token-file PATH (- reads "
        "stdin). [env var: SUPABASE_ACCESS_TOKEN]",
        show_default=False,
    ),
]
SupabaseOrgOption = Annotated[
    str | None,
    typer.Option(
        "--supabase-org",
        help="Supabase organization slug; default: your only one. [env var: SUPABASE_ORG]",
        show_default=False,
    ),
]
SupabasePasswordOption = Annotated[
    str | None,
    typer.Option(
        "--supabase-db-password",
        help="Database password of an existing Supabase project (or the one to give a new "
        "project); a value here shows in `ps` and shell history: prefer SUPABASE_DB_PASSWORD "
        "or --supabase-db-password-file PATH (- reads stdin). [env var: SUPABASE_DB_PASSWORD]",
        show_default=False,
    ),
]
UpstashEmailOption = Annotated[
    str | None,
    typer.Option("--upstash-email", help="[env var: UPSTASH_EMAIL]", show_default=False),
]
UpstashApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--upstash-api-key",
        help="Upstash API key; a value here shows in `ps` and shell history: prefer "
        "UPSTASH_API_KEY or --upstash-api-key-file PATH (- reads stdin). "
        "[env var: UPSTASH_API_KEY]",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class ProviderChoice:
    """What the command line says about Neon / Supabase / Upstash."""

    postgres: str | None
    redis: str | None
    region: str | None = None
    neon_api_key: str | None = None
    neon_org_id: str | None = None
    supabase_access_token: str | None = None
    supabase_org: str | None = None
    supabase_db_password: str | None = None
    upstash_email: str | None = None
    upstash_api_key: str | None = None

    def flags(self) -> Mapping[str, str | None]:
        """Flag values by the environment variable each one overrides."""
        return {
            "NEON_API_KEY": self.neon_api_key,
            "NEON_ORG_ID": self.neon_org_id,
            "SUPABASE_ACCESS_TOKEN": self.supabase_access_token,
            "SUPABASE_ORG": self.supabase_org,
            "SUPABASE_DB_PASSWORD": self.supabase_db_password,
            "UPSTASH_EMAIL": self.upstash_email,
            "UPSTASH_API_KEY": self.upstash_api_key,
        }


@contextmanager
def store_providers(
    out: Output,
    choice: ProviderChoice,
    *,
    database: str,
    user: str,
    postgres_version: str,
) -> Iterator[dict[Kind, StoreProvider]]:
    """The chosen non-Render providers by kind ("render" is left to the Render flow), built
    before anything happens so a missing credential stops the run first (exit 3); their HTTP
    clients are closed on exit."""
    from authkit_setup.providers import registry
    from authkit_setup.providers.base import Kind
    from authkit_setup.settings import read_env_file

    wanted = [(Kind.POSTGRES, choice.postgres), (Kind.REDIS, choice.redis)]
    entries = [(kind, registry.get(name, kind)) for kind, name in wanted if name is not None]
    for message in registry.load_errors:
        out.warn(message)
    if choice.region is not None and all(e.factory is None for _, e in entries):
        from authkit_setup.errors import UsageError

        raise UsageError(
            "--provider-region is for Neon, Supabase and Upstash stores",
            hint="Render stores always follow the service's region",
        )
    settings = registry.ProviderSettings(
        out=out,
        flags=choice.flags(),
        env_file=read_env_file(Path(".env")),
        region=choice.region,
        database=database,
        user=user,
        postgres_version=postgres_version,
    )
    providers: dict[Kind, StoreProvider] = {}
    try:
        for kind, entry in entries:
            if entry.factory is not None:
                providers[kind] = entry.build(settings)
        yield providers
    finally:
        for provider in providers.values():
            close = getattr(provider, "close", None)
            if callable(close):
                close()
