"""Backup step: what protects the service's database, and a logical export on demand.

Facts (render-api.md §3.6, §3.7): point-in-time recovery (`GET /postgres/{id}/recovery`) is for
paid plans only; free databases have no backups at all and expire (`expiresAt`, 30 or 90 days:
read the field, never assume). A logical export (`POST /postgres/{id}/export`, 202) is listed by
`GET /postgres/{id}/export` as `[{id, createdAt, url}]`; the download URL carries a token in its
query string, so it is masked unless the user asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authkit_setup.errors import UsageError
from authkit_setup.output import Output
from authkit_setup.pipeline.service import ServiceRef
from authkit_setup.providers.base import Kind, Store, StoreSpec
from authkit_setup.providers.render import PITR_UNKNOWN as PITR_UNKNOWN
from authkit_setup.providers.render import RenderClient, RenderStores
from authkit_setup.providers.render import backup_facts as backup_facts
from authkit_setup.secrets import mask_link, register

# An export link keeps scheme, host and path; the query (and fragment) carries the token.
mask_export_url = mask_link


def backup_warnings(store: Store, facts: dict[str, Any]) -> list[str]:
    """What a person should hear about this database's safety, in plain words."""
    warnings = []
    if not facts["backups"]:
        expiry = ""
        days = facts["expires_in_days"]
        if facts["expires_at"] and days is not None and days < 0:
            expiry = f"; it expired on {facts['expires_at']}"
        elif facts["expires_at"]:
            expiry = f" and deletes it on {facts['expires_at']} (in {days} days)"
        warnings.append(
            f"{store.name} is a free database: Render keeps no backups of it, offers no "
            f"point-in-time recovery{expiry}. Upgrade it (e.g. to basic_256mb) before it holds "
            "real users; until then export it regularly with `authkit-setup backup`"
        )
    elif facts["pitr"] != "AVAILABLE":
        warnings.append(
            f"{store.name}: point-in-time recovery is {facts['pitr']} (the first backup may "
            "not be ready yet)"
        )
    return warnings


def find_database(client: RenderClient, service: ServiceRef, db_name: str) -> Store:
    """The service's Postgres by exact name in its workspace (like `render` finds it)."""
    from authkit_setup.pipeline.plan import ensure_single

    spec = StoreSpec(kind=Kind.POSTGRES, name=db_name, region=service.region, plan="")
    store = ensure_single(RenderStores(client, service.owner_id).find(Kind.POSTGRES, db_name), spec)
    if store is None:
        raise UsageError(
            f"no Postgres named {db_name!r} in {service.name}'s workspace",
            hint=f"create it with `authkit-setup render --service {service.name}`, or pass "
            "--db-name with the database's name",
        )
    return store


@dataclass
class Export:
    id: str
    created_at: str | None
    url: str | None
    new: bool = False

    def to_json(self, *, show_secrets: bool) -> dict[str, Any]:
        url = self.url if show_secrets or self.url is None else mask_export_url(self.url)
        return {"id": self.id, "created_at": self.created_at, "url": url, "new": self.new}


def _exports(client: RenderClient, store: Store) -> list[Export]:
    exports = [
        Export(
            id=str(e.get("id") or ""),
            created_at=e.get("createdAt") if isinstance(e.get("createdAt"), str) else None,
            url=e.get("url") if isinstance(e.get("url"), str) else None,
        )
        for e in client.exports(store.id)
    ]
    register(*(e.url for e in exports), link=True)
    return exports


@dataclass(frozen=True)
class BackupRequest:
    """`authkit-setup backup`'s options, as given."""

    service: str
    db_name: str = "authkit-db"
    list_only: bool = False  # --list: start no export
    show_secrets: bool = False
    workspace: str | None = None
    api_key: str | None = None


@dataclass
class BackupReport:
    service: ServiceRef
    database: Store
    facts: dict[str, Any]
    exports: list[Export] = field(default_factory=list)
    export_started: bool = False
    warnings: list[str] = field(default_factory=list)
    show_secrets: bool = False  # --show-secrets: the export links with their token

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "service": self.service.to_json(),
            "database": {
                "id": self.database.id,
                "name": self.database.name,
                "plan": self.database.plan,
                "region": self.database.region,
                "status": self.database.status,
            },
            **self.facts,
            "export_started": self.export_started,
            "exports": [e.to_json(show_secrets=self.show_secrets) for e in self.exports],
            "warnings": self.warnings,
        }


def backup(request: BackupRequest, out: Output) -> BackupReport:
    """Check the request, then run the backup with a Render client."""
    from authkit_setup.inputs import require_nonempty
    from authkit_setup.providers.clients import render_client

    require_nonempty(("--db-name", request.db_name))
    with render_client(out, api_key=request.api_key) as client:
        report = run_backup(client, request, out)
    if request.show_secrets:
        out.reveal(*(e.url for e in report.exports if e.url))
        report.show_secrets = True
    return report


def run_backup(client: RenderClient, opts: BackupRequest, out: Output) -> BackupReport:
    """find the service → its database → facts and warnings → export (unless --list) → list."""
    from authkit_setup.pipeline.service import resolve_service

    service = resolve_service(client, opts.service, opts.workspace)
    store = find_database(client, service, opts.db_name)
    out.step(f"{store.name} ({store.id}): {store.plan}, {store.region}, {store.status}")
    facts = backup_facts(client, store)
    report = BackupReport(service, store, facts, warnings=backup_warnings(store, facts))
    for warning in report.warnings:
        out.warn(warning)

    seen: set[str] = set()
    start_export = not opts.list_only
    if start_export:
        seen = {e.id for e in _exports(client, store)}
        # Not retried on an ambiguous failure (RenderClient.start_export): a second export is
        # harmless but the user should decide to run one.
        client.start_export(store.id)
        report.export_started = True
        out.step(f"{store.name}: export requested")
    report.exports = _exports(client, store)
    if start_export:
        for export in report.exports:
            export.new = export.id not in seen
        if not any(e.new for e in report.exports):
            out.info(
                "Render is preparing the export; list it in a few minutes with "
                f"`authkit-setup backup --service {service.name} --list`"
            )
    return report
