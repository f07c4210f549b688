"""`authkit-setup teardown`: delete a preview environment's stores (the end of a PR)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from authkit_setup.commands._common import (
    ApiKeyOption,
    BaseDbNameOption,
    BaseRedisNameOption,
    JsonOption,
    WorkspaceOrOnlyOption,
    confirmer,
    execute,
    require_nonempty,
)
from authkit_setup.commands._providers import (
    NeonApiKeyOption,
    NeonOrgOption,
    PostgresWhereOption,
    ProviderChoice,
    RedisWhereOption,
    SupabaseOrgOption,
    SupabaseTokenOption,
    UpstashApiKeyOption,
    UpstashEmailOption,
)
from authkit_setup.errors import UsageError
from authkit_setup.output import Output

if TYPE_CHECKING:
    from authkit_setup.preview.teardown import TeardownReport

HELP = """Delete a preview's stores (authkit-db-NAME, authkit-redis-NAME) and unwire them from the service.

Deletes exactly the stores named for --preview, never a store without that suffix (the base
authkit-db / authkit-redis only with --include-base --yes). With --service, DATABASE_URL and
REDIS_URL are removed from the service (one key at a time) only while they still point at a
store being deleted. Safe to re-run: when everything is already gone it succeeds and changes
nothing. Without a terminal it needs --yes.

With --postgres neon|supabase / --redis upstash the preview's stores on those providers are
deleted: for Neon only the branch preview/NAME of the base project (never the project or its
default branch); for Supabase / Upstash the project / database named with the suffix.

Exit codes: 0 done (also when already gone), 1 failed or cancelled, 2 usage, 3 credentials.

\b
Examples:
  authkit-setup teardown --preview pr-123 --dry-run
  authkit-setup teardown --preview pr-123 --service my-api-pr-123 --yes --json
  authkit-setup teardown --preview pr-123 --postgres neon --redis upstash --yes
"""


def teardown(
    preview: Annotated[
        str | None,
        typer.Option(
            "--preview",
            help="The preview whose stores to delete, e.g. pr-123.",
            show_default=False,
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help="Also remove DATABASE_URL / REDIS_URL from this service (name or srv-… ID) if they point at the deleted stores.",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOrOnlyOption = None,
    db_name: BaseDbNameOption = "authkit-db",
    redis_name: BaseRedisNameOption = "authkit-redis",
    include_base: Annotated[
        bool,
        typer.Option(
            "--include-base",
            help="Also delete the base stores (authkit-db, authkit-redis). Needs --yes.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking (CI).")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; change nothing.")
    ] = False,
    postgres: PostgresWhereOption = "render",
    redis: RedisWhereOption = "render",
    neon_api_key: NeonApiKeyOption = None,
    neon_org_id: NeonOrgOption = None,
    supabase_access_token: SupabaseTokenOption = None,
    supabase_org: SupabaseOrgOption = None,
    upstash_email: UpstashEmailOption = None,
    upstash_api_key: UpstashApiKeyOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    out = Output(json_mode=json_output)

    def body() -> int:
        from authkit_setup.ci import write_outputs
        from authkit_setup.commands._providers import store_providers
        from authkit_setup.preview.names import preview_providers, validate_preview
        from authkit_setup.preview.teardown import TeardownOptions, run_teardown
        from authkit_setup.providers import render_client
        from authkit_setup.providers.registry import traits_named

        if preview is None and not include_base:
            raise UsageError(
                "teardown needs --preview NAME: the preview whose stores to delete",
                hint="e.g. authkit-setup teardown --preview pr-123 --yes",
            )
        if preview is not None:
            validate_preview(preview)
        require_nonempty(("--db-name", db_name), ("--redis-name", redis_name))
        if include_base and not all(
            traits_named(name).beside_service for name in (postgres, redis)
        ):
            raise UsageError(
                "--include-base deletes base stores on Render only",
                hint="delete a Neon / Supabase / Upstash base store in its own console",
            )
        if include_base and not yes:
            raise UsageError(
                f"--include-base also deletes the base stores {db_name} and {redis_name}: "
                "pass --yes as well"
            )
        if not yes and not dry_run and not out.can_prompt:
            raise UsageError(
                "teardown deletes stores and all their data: pass --yes (no terminal to ask)",
                hint="or --dry-run to list what would be deleted",
            )
        opts = TeardownOptions(
            preview=preview,
            service=service,
            workspace=workspace,
            db_name=db_name,
            redis_name=redis_name,
            include_base=include_base,
            yes=yes,
            dry_run=dry_run,
        )

        choice = ProviderChoice(
            postgres,
            redis,
            neon_api_key=neon_api_key,
            neon_org_id=neon_org_id,
            supabase_access_token=supabase_access_token,
            supabase_org=supabase_org,
            upstash_email=upstash_email,
            upstash_api_key=upstash_api_key,
        )
        with (
            render_client(out, api_key=api_key) as client,
            store_providers(
                out,
                choice,
                database="authkit",
                user="authkit_user",
                postgres_version="16",
                render_client=client,
            ) as providers,
        ):
            report = run_teardown(
                client,
                opts,
                out,
                confirm=confirmer(out),
                providers=preview_providers(providers, preview, db_name),
            )
        if not report.planned:
            write_outputs(out, report.github_outputs())
        out.result(report.to_json())
        if not out.json_mode:
            _print_summary(out, report)
        return 0

    execute(out, body)


def _print_summary(out: Output, report: TeardownReport) -> None:
    verb = "would delete" if report.planned else "deleted"
    title = "Plan (dry run, nothing changed)" if report.planned else "Done"
    out.print(f"{title}: preview {report.preview}" if report.preview else f"{title}:")
    for doomed in report.deleted:
        store = doomed.store
        out.print(f"  {store.kind.value:<9} {store.name} ({store.id}): {verb}")
    for target, _ in report.already_gone:
        out.print(f"  {target.kind.value:<9} {target.name}: already gone")
    for key, action in report.env:
        planned = " (planned)" if report.planned and action == "removed" else ""
        out.print(f"  {key}: {action}{planned}")
