"""`authkit-setup backup`: export the service's Postgres and say what protects it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from authkit_setup.commands._common import (
    ApiKeyOption,
    DbNameOption,
    JsonOption,
    ServiceOption,
    WorkspaceOption,
    YesOption,
    options,
    run_command,
)
from authkit_setup.output import Output

if TYPE_CHECKING:
    from authkit_setup.production.backup import BackupReport

HELP = """Start a logical export of the service's Postgres (authkit-db) and list the exports.

Also reports point-in-time recovery, and warns when the database is on the free plan: Render
keeps no backups of free databases and deletes them when they expire. Export links carry an
access token: they are shown as https://host/path?**** unless --show-secrets.

\b
Examples:
  authkit-setup backup --service my-api
  authkit-setup backup --service my-api --list --json
  authkit-setup backup --service my-api --list --show-secrets
"""


def backup(
    service: ServiceOption,
    db_name: DbNameOption = "authkit-db",
    list_only: Annotated[
        bool, typer.Option("--list", help="Only list the exports; start none.")
    ] = False,
    show_secrets: Annotated[
        bool,
        typer.Option("--show-secrets", help="Print the export download links with their token."),
    ] = False,
    yes: YesOption = False,
    workspace: WorkspaceOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    params = locals()

    def back_up(out: Output) -> BackupReport:
        from authkit_setup.production.backup import BackupRequest
        from authkit_setup.production.backup import backup as run_backup

        return run_backup(options(BackupRequest, params, no_op=("yes",)), out)

    run_command(json_output, back_up, _print_backup)


def _print_backup(out: Output, report: BackupReport) -> None:
    doc = report.to_json()
    db = report.database
    out.print(f"{db.name} ({db.id}): {db.plan}, {db.region}, {db.status}", role="heading")
    out.print(f"  backups kept by Render: {'yes' if doc['backups'] else 'no (free plan)'}")
    pitr = doc["pitr"]
    if doc["pitr_starts_at"]:
        pitr += f" (from {doc['pitr_starts_at']})"
    out.print(f"  point-in-time recovery: {pitr}")
    if doc["expires_at"]:
        out.print(f"  expires: {doc['expires_at']} (in {doc['expires_in_days']} days)")
    if report.export_started:
        out.print("  export: requested")
    out.print()
    if not doc["exports"]:
        out.print("No exports yet.")
    else:
        out.print("Exports (newest first):")
        for export in doc["exports"]:
            mark = "  (new)" if export["new"] else ""
            out.print(
                f"  {export['id']}  {export['created_at'] or '?'}  "
                f"{export['url'] or '(link not ready)'}{mark}"
            )
