"""`authkit-setup backup`: export the service's Postgres and say what protects it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from authkit_setup.commands._common import ApiKeyOption, JsonOption, execute
from authkit_setup.output import Output

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


class _RevealingOutput(Output):
    """`--show-secrets`: the export links leave unmasked; everything else is still redacted."""

    def __init__(self, *, json_mode: bool) -> None:
        super().__init__(json_mode=json_mode)
        self.revealed: set[str] = set()

    def _redact(self, text: str) -> str:
        from authkit_setup.masking import redact

        # Swap each revealed value for a placeholder, redact the rest, swap back.
        held = {f"\x00{i}\x00": v for i, v in enumerate(sorted(self.revealed, key=len)[::-1])}
        for placeholder, value in held.items():
            text = text.replace(value, placeholder)
        text = redact(text)
        for placeholder, value in held.items():
            text = text.replace(placeholder, value)
        return text

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, Mapping):
            return {k: self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        return value

    def result(self, document: Mapping[str, Any]) -> None:
        if self.json_mode:
            self._stdout.write(json.dumps(self._walk(document), indent=2, default=str) + "\n")
            self._stdout.flush()

    def print(self, text: str = "") -> None:
        if not self.json_mode:
            self._stdout.write(self._redact(text) + "\n")
            self._stdout.flush()


def backup(
    service: Annotated[
        str,
        typer.Option("--service", help="The service: exact name or srv-… ID.", show_default=False),
    ],
    db_name: Annotated[
        str, typer.Option("--db-name", help="Name of the Postgres store.")
    ] = "authkit-db",
    list_only: Annotated[
        bool, typer.Option("--list", help="Only list the exports; start none.")
    ] = False,
    show_secrets: Annotated[
        bool,
        typer.Option("--show-secrets", help="Print the export download links with their token."),
    ] = False,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace",
            help="Workspace ID (tea-…) or name; default: the service's.",
            envvar="RENDER_WORKSPACE",
            show_default=False,
        ),
    ] = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    out: Output = (
        _RevealingOutput(json_mode=json_output) if show_secrets else Output(json_mode=json_output)
    )

    def body() -> int:
        from authkit_setup.errors import UsageError
        from authkit_setup.flow.backup import BackupOptions, run_backup
        from authkit_setup.providers import render_client

        if not db_name.strip():
            raise UsageError("--db-name is empty")
        opts = BackupOptions(
            service=service, workspace=workspace, db_name=db_name, start_export=not list_only
        )
        with render_client(out, api_key=api_key) as client:
            report = run_backup(client, opts, out)
        if isinstance(out, _RevealingOutput):
            out.revealed.update(e.url for e in report.exports if e.url)
        doc = report.to_json(show_secrets=show_secrets)
        out.result(doc)
        if not out.json_mode:
            db = report.database
            out.print(f"{db.name} ({db.id}): {db.plan}, {db.region}, {db.status}")
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
        return 0

    execute(out, body)
