"""`authkit-setup provision`: Neon / Supabase Postgres and Upstash Redis for a local .env."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from authkit_setup.commands._common import (
    EnvForceOption,
    JsonOption,
    NoVerifyOption,
    YesOption,
    options,
    run_command,
    timeout_flag,
    value_flag,
)
from authkit_setup.commands._providers import (
    ProviderRegionOption,
    with_credentials,
)
from authkit_setup.output import Output

if TYPE_CHECKING:
    from authkit_setup.pipeline.run import SetupReport

HELP = """Create (or reuse) Postgres on Neon or Supabase and Redis on Upstash, without Render.

Gets or creates authkit-db and authkit-redis by exact name in the region nearest --region (a
Render region, default ohio) or exactly --provider-region, waits until they are ready, writes
DATABASE_URL (pooled, with pgbouncer=true for Prisma), DIRECT_URL (for migrations) and
REDIS_URL (rediss://) into --env-file (atomic, mode 600, every other line kept), and verifies
them with the `check` ladder. Without --env-file the URLs are printed, with their passwords
masked unless --show-secrets. Safe to re-run: nothing is created or changed twice.

Credentials (flag > environment > ./.env): NEON_API_KEY (+ NEON_ORG_ID),
SUPABASE_ACCESS_TOKEN (+ SUPABASE_ORG, SUPABASE_DB_PASSWORD), UPSTASH_EMAIL + UPSTASH_API_KEY.
Exit codes: 0 ready and verified; 1 a provider or check failed, or a conflict; 2 bad input;
3 a missing or rejected credential.

\b
Examples:
  authkit-setup provision --postgres neon --redis upstash --env-file .env
  authkit-setup provision --postgres supabase --redis upstash --env-file .env --region frankfurt
  authkit-setup provision --postgres neon --provider-region us-west-2 --json --show-secrets
"""


@with_credentials()
def provision(
    postgres: Annotated[
        str | None,
        value_flag(
            "--postgres", "<provider>", "Postgres provider: neon or supabase.", show_default=False
        ),
    ] = None,
    redis: Annotated[
        str | None,
        value_flag("--redis", "<provider>", "Redis provider: upstash.", show_default=False),
    ] = None,
    env_file: Annotated[
        Path | None,
        value_flag(
            "--env-file",
            "<path>",
            "Write DATABASE_URL, DIRECT_URL and REDIS_URL into this .env (mode 600, other lines kept).",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        value_flag(
            "--region",
            "<region>",
            "Put the stores near this Render region: oregon, ohio, virginia, frankfurt, singapore. [default: ohio]",
            show_default=False,
        ),
    ] = None,
    provider_region: ProviderRegionOption = None,
    db_name: Annotated[
        str, value_flag("--db-name", "<name>", "Name of the Postgres project.")
    ] = "authkit-db",
    redis_name: Annotated[
        str, value_flag("--redis-name", "<name>", "Name of the Redis database.")
    ] = "authkit-redis",
    database: Annotated[
        str, value_flag("--database", "<name>", "Database name (Neon).")
    ] = "authkit",
    db_user: Annotated[
        str, value_flag("--db-user", "<user>", "Database role (Neon).")
    ] = "authkit_user",
    postgres_version: Annotated[
        str,
        value_flag("--postgres-version", "<version>", "PostgreSQL major version (Neon: 14-18)."),
    ] = "16",
    force: EnvForceOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; create and write nothing.")
    ] = False,
    no_verify: NoVerifyOption = False,
    yes: YesOption = False,
    show_secrets: Annotated[
        bool, typer.Option("--show-secrets", help="Print the URLs with their passwords.")
    ] = False,
    timeout: Annotated[float, timeout_flag("Seconds to wait for the stores.")] = 900.0,
    json_output: JsonOption = False,
    **credentials: str | None,
) -> None:
    params = locals()

    def provision_stores(out: Output) -> SetupReport:
        from authkit_setup.pipeline.requests import ProvisionRequest
        from authkit_setup.pipeline.requests import provision as provision_pipeline

        return provision_pipeline(options(ProvisionRequest, params), out)

    run_command(json_output, provision_stores, _print_summary)


def _print_summary(out: Output, report: SetupReport) -> None:
    from authkit_setup.check.urls import print_check

    out.print("Plan (dry run, nothing changed)" if report.planned else "Done", role="heading")
    for plan in report.plans:
        store = plan.store or plan.existing
        where = f"{plan.provider.name}, {plan.spec.region}"
        if store is None:
            out.print(f"  {plan.spec.kind.value:<9} {plan.spec.name}: will be created ({where})")
        else:
            verb = "exists, reused" if report.planned or not store.created else "created"
            out.print(
                f"  {plan.spec.kind.value:<9} {store.name} ({store.id}): {verb}, {store.status} ({where})"
            )
    if report.env_file is not None and report.env_file_changes is not None:
        for change in report.env_file_changes:
            out.print(f"  {report.env_file}: {change.key} {change.action}")
    elif not report.planned:
        for key, value in report.urls().items():
            out.print(f"{key}={value}")
    out.print()
    for result in report.checks:
        print_check(out, result)
