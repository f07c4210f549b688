"""`authkit-setup backup`: export the service's Postgres and say what protects it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from authkit_setup.commands._common import (
    ApiKeyOption,
    DbNameOption,
    JsonOption,
    ServiceOption,
    WorkspaceOption,
    execute,
    require_nonempty,
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
    workspace: WorkspaceOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    out: Output = Output(json_mode=json_output)

    def body() -> int:
        from authkit_setup.production.backup import BackupOptions, run_backup
        from authkit_setup.providers import render_client

        require_nonempty(("--db-name", db_name))
        opts = BackupOptions(
            service=service, workspace=workspace, db_name=db_name, start_export=not list_only
        )
        with render_client(out, api_key=api_key) as client:
            report = run_backup(client, opts, out)
        if show_secrets:
            out.reveal(*(e.url for e in report.exports if e.url))
        doc = report.to_json(show_secrets=show_secrets)
        out.result(doc)
        if not out.json_mode:
            _print_backup(out, report, doc)
        return 0

    execute(out, body)


def _print_backup(out: Output, report: BackupReport, doc: dict[str, Any]) -> None:
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
