"""`authkit-setup status`: the stores of the base setup or of one preview, at a glance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from authkit_setup.commands._common import (
    ApiKeyOption,
    BaseDbNameOption,
    BaseRedisNameOption,
    JsonOption,
    WorkspaceOrOnlyOption,
    options,
    preview_flag,
    run_command,
    service_flag,
)
from authkit_setup.commands._providers import (
    PostgresWhereOption,
    RedisWhereOption,
    with_credentials,
)
from authkit_setup.output import Output
from authkit_setup.providers.registry import DEFAULT_PROVIDER

if TYPE_CHECKING:
    from authkit_setup.preview.status import StatusReport

HELP = """Show authkit-db and authkit-redis (or a preview's stores): state, plan, expiry, backups, wiring.

For each store: provider, name, id, region, plan, status, creation time, free-plan expiry (a
warning under 7 days), whether point-in-time recovery and backups exist on its plan, and with
--service whether the service's DATABASE_URL / REDIS_URL point at it. A store that does not
exist is listed with status "missing". Changes nothing.

Exit codes: 0 every store exists and is available, 1 otherwise (missing, failing, still
creating), 2 usage, 3 credentials.

\b
Examples:
  authkit-setup status
  authkit-setup status --preview pr-123 --service my-api --json
  authkit-setup status --preview pr-123 --postgres neon --redis upstash --json
"""


@with_credentials(db_password=False)
def status(
    preview: Annotated[str | None, preview_flag("Show this preview's stores, e.g. pr-123.")] = None,
    service: Annotated[
        str | None,
        service_flag(
            "Also say whether this service's DATABASE_URL / REDIS_URL point at the stores."
        ),
    ] = None,
    workspace: WorkspaceOrOnlyOption = None,
    db_name: BaseDbNameOption = "authkit-db",
    redis_name: BaseRedisNameOption = "authkit-redis",
    postgres: PostgresWhereOption = DEFAULT_PROVIDER,
    redis: RedisWhereOption = DEFAULT_PROVIDER,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
    **credentials: str | None,
) -> None:
    params = locals()

    def collect(out: Output) -> StatusReport:
        from authkit_setup.preview.status import StatusRequest
        from authkit_setup.preview.status import status as collect_status

        return collect_status(options(StatusRequest, params), out)

    run_command(json_output, collect, _print_table)


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _print_table(out: Output, report: StatusReport) -> None:
    """One column per store, one row per fact: fits a 100-column log, however long the ids."""
    fields: list[tuple[str, list[str]]] = [
        ("kind", []),
        ("provider", []),
        ("id", []),
        ("region", []),
        ("plan", []),
        ("status", []),
        ("created", []),
        ("expires", []),
        ("wired", []),
        ("point-in-time recovery", []),
        ("backups", []),
    ]
    for entry in report.stores:
        s = entry.store
        expires = "-"
        if s is not None and s.expires_at:
            expires = f"{s.expires_at[:10]} ({entry.expires_in_days} days)"
        created = (s.created_at or "-")[:16].replace("T", " ") if s else "-"
        values = [
            entry.kind.value,
            entry.provider,
            s.id if s else "-",
            s.region if s else "-",
            s.plan if s else "-",
            entry.status,
            created,
            expires,
            _yes_no(entry.wired),
            entry.pitr or "-",
            _yes_no(entry.backups) if s else "-",
        ]
        for (_, column), value in zip(fields, values, strict=True):
            column.append(value)
    if report.service is None:
        fields = [f for f in fields if f[0] != "wired"]
    title = f"Preview {report.preview}" if report.preview else "Stores"
    if report.service is not None:
        title += f" (service {report.service.name}, {report.service.region})"
    out.table(
        title,
        ["", *(entry.name for entry in report.stores)],
        [[name, *values] for name, values in fields],
    )
