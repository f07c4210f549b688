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
    options,
    preview_flag,
    run_command,
    service_flag,
    yes_flag,
)
from authkit_setup.commands._providers import (
    PostgresWhereOption,
    RedisWhereOption,
    with_credentials,
)
from authkit_setup.output import Output
from authkit_setup.providers.registry import DEFAULT_PROVIDER

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


@with_credentials(db_password=False)
def teardown(
    preview: Annotated[
        str | None, preview_flag("The preview whose stores to delete, e.g. pr-123.")
    ] = None,
    service: Annotated[
        str | None,
        service_flag(
            "Also remove DATABASE_URL / REDIS_URL from this service (name or srv-… ID) if they point at the deleted stores."
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
    yes: Annotated[bool, yes_flag("Delete without asking (CI).")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; change nothing.")
    ] = False,
    postgres: PostgresWhereOption = DEFAULT_PROVIDER,
    redis: RedisWhereOption = DEFAULT_PROVIDER,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
    **credentials: str | None,
) -> None:
    params = locals()

    def delete(out: Output) -> TeardownReport:
        from authkit_setup.preview.teardown import TeardownRequest
        from authkit_setup.preview.teardown import teardown as delete_preview

        return delete_preview(options(TeardownRequest, params), out, confirm=confirmer(out))

    run_command(json_output, delete, _print_summary)


def _print_summary(out: Output, report: TeardownReport) -> None:
    verb = "would delete" if report.planned else "deleted"
    title = "Plan (dry run, nothing changed)" if report.planned else "Done"
    out.print(
        f"{title}: preview {report.preview}" if report.preview else f"{title}:", role="heading"
    )
    for doomed in report.deleted:
        store = doomed.store
        out.print(f"  {store.kind.value:<9} {store.name} ({store.id}): {verb}")
    for target, _ in report.already_gone:
        out.print(f"  {target.kind.value:<9} {target.name}: already gone")
    for key, action in report.env:
        planned = " (planned)" if report.planned and action == "removed" else ""
        out.print(f"  {key}: {action}{planned}")
