"""The provider options `render`, `provision`, `status` and `teardown` share (--postgres,
--redis, --provider-region and each provider's credentials). Their values become a
`ProviderChoice` (providers/registry.py), which builds the providers."""

from __future__ import annotations

from typing import Annotated

import typer

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
    typer.Option("--neon-api-key", help="[env var: NEON_API_KEY]", show_default=False),
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
        help="Supabase personal access token (sbp_…). [env var: SUPABASE_ACCESS_TOKEN]",
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
        "project). [env var: SUPABASE_DB_PASSWORD]",
        show_default=False,
    ),
]
UpstashEmailOption = Annotated[
    str | None,
    typer.Option("--upstash-email", help="[env var: UPSTASH_EMAIL]", show_default=False),
]
UpstashApiKeyOption = Annotated[
    str | None,
    typer.Option("--upstash-api-key", help="[env var: UPSTASH_API_KEY]", show_default=False),
]
