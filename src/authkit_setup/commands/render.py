"""`authkit-setup render`: section 1 of the setup guide as one command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from authkit_setup.commands._common import (
    ApiKeyOption,
    DbNameOption,
    JsonOption,
    NoVerifyOption,
    RedisNameOption,
    VerifyInsideOption,
    WaitDeployOption,
    WorkspaceOption,
    confirmer,
    options,
    preview_flag,
    run_command,
    service_flag,
    timeout_flag,
    value_flag,
    yes_flag,
)
from authkit_setup.commands._providers import (
    PostgresWhereOption,
    ProviderRegionOption,
    RedisWhereOption,
    with_credentials,
)
from authkit_setup.output import Output
from authkit_setup.providers.registry import DEFAULT_PROVIDER

if TYPE_CHECKING:
    from authkit_setup.pipeline.run import SetupReport

HELP = """Provision authkit-db (PostgreSQL) and authkit-redis (Key Value) on Render and wire them into a service.

Finds the service and its region, gets or creates both stores in that region, waits until they
are available, writes their internal URLs into DATABASE_URL and REDIS_URL (one key at a time,
every other variable untouched), deploys, and verifies the connections. Safe to re-run: a
second run creates nothing, changes nothing and does not deploy.

With --preview NAME the stores are <db-name>-NAME and <redis-name>-NAME, one pair per pull
request (delete them with `authkit-setup teardown --preview NAME`). In GitHub Actions secrets
are masked with ::add-mask::, ids and names go to $GITHUB_OUTPUT, and --github-env appends the
external DATABASE_URL / REDIS_URL to $GITHUB_ENV for the job's later steps.

With --verify-inside the connections are verified from inside the service: one Render one-off
job runs a small probe in the service's runtime (node or python3, standard library only) that
reads DATABASE_URL / REDIS_URL from its own environment and proves dns, tcp, login and a query
for both stores, internal URLs included. A job costs a few seconds of the instance type's price;
free instance types cannot run one (the checks are then skipped with the reason).

With --postgres neon|supabase and/or --redis upstash those stores are got-or-created on that
provider instead (same names, in its region nearest the service's), and their public URLs are
written the same way, plus DIRECT_URL (for migrations) beside a pooled DATABASE_URL. A Neon
preview is the branch preview/NAME in the base project <db-name>, as Neon recommends.

\b
Examples:
  authkit-setup render --service my-api
  authkit-setup render --service my-api --dry-run
  authkit-setup render --service my-api --verify-inside --yes
  authkit-setup render --service my-api --postgres neon --redis upstash --yes
  authkit-setup render --service srv-abc123... --postgres-plan starter --yes --json
  authkit-setup render --service my-api --redis-allow-cidr 203.0.113.7/32 --env-file .env
  authkit-setup render --service my-api --preview pr-123 --postgres-plan basic_256mb --yes --json
"""


@with_credentials()
def render(
    service: Annotated[str, service_flag("The web service: exact name or srv-… ID.")],
    workspace: WorkspaceOption = None,
    region: Annotated[
        str | None,
        value_flag(
            "--region", "<region>", "Must equal the service's region if given.", show_default=False
        ),
    ] = None,
    db_name: DbNameOption = "authkit-db",
    database: Annotated[
        str,
        value_flag("--database", "<name>", "Database name (Render may add a suffix)."),
    ] = "authkit",
    db_user: Annotated[str, value_flag("--db-user", "<user>", "Database user.")] = "authkit_user",
    redis_name: RedisNameOption = "authkit-redis",
    postgres_plan: Annotated[
        str,
        value_flag("--postgres-plan", "<plan>", "free, starter (= basic_256mb), basic_1gb, …"),
    ] = "free",
    redis_plan: Annotated[
        str,
        value_flag("--redis-plan", "<plan>", "free, starter, standard, pro, pro_plus."),
    ] = "free",
    postgres_version: Annotated[
        str,
        value_flag("--postgres-version", "<version>", "PostgreSQL major version (11-18)."),
    ] = "16",
    maxmemory_policy: Annotated[
        str,
        value_flag(
            "--maxmemory-policy",
            "<policy>",
            "Key Value eviction policy; AuthKit keeps sessions in Redis, so noeviction.",
        ),
    ] = "noeviction",
    postgres_allow_cidr: Annotated[
        list[str],
        value_flag(
            "--postgres-allow-cidr",
            "<cidr>",
            "IP ranges allowed to reach Postgres from outside Render (repeatable; 'none' = internal only).",
        ),
    ] = ["0.0.0.0/0"],  # noqa: B006
    redis_allow_cidr: Annotated[
        list[str] | None,
        value_flag(
            "--redis-allow-cidr",
            "<cidr>",
            "IP ranges allowed to reach Key Value from outside Render (repeatable; default: internal only).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a DATABASE_URL / REDIS_URL that points elsewhere."),
    ] = False,
    no_deploy: Annotated[
        bool, typer.Option("--no-deploy", help="Do not deploy after changing variables.")
    ] = False,
    wait_deploy: WaitDeployOption = False,
    no_verify: NoVerifyOption = False,
    verify_inside: VerifyInsideOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
    yes: Annotated[bool, yes_flag("Never prompt (CI).")] = False,
    timeout: Annotated[
        float,
        timeout_flag(
            "Seconds to wait for the stores (and the deploy, and the --verify-inside job)."
        ),
    ] = 900.0,
    env_file: Annotated[
        Path | None,
        value_flag(
            "--env-file",
            "<path>",
            "Also write the external URLs into this local .env (mode 600, other lines kept).",
            show_default=False,
        ),
    ] = None,
    migrate_command: Annotated[
        str | None,
        value_flag(
            "--migrate-command",
            "<command>",
            "Run this migration on every deploy (pre-deploy command if paid, else in the build).",
            show_default=False,
        ),
    ] = None,
    preview: Annotated[
        str | None,
        preview_flag(
            "Per-PR stores named <db-name>-NAME / <redis-name>-NAME, e.g. pr-123 (lowercase letters, digits, hyphens; 1-40)."
        ),
    ] = None,
    github_env: Annotated[
        bool,
        typer.Option(
            "--github-env",
            help="Append the external DATABASE_URL / REDIS_URL to $GITHUB_ENV for later CI steps.",
        ),
    ] = False,
    postgres: PostgresWhereOption = DEFAULT_PROVIDER,
    redis: RedisWhereOption = DEFAULT_PROVIDER,
    provider_region: ProviderRegionOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
    **credentials: str | None,
) -> None:
    params = locals()

    def set_up(out: Output) -> SetupReport:
        from authkit_setup.pipeline.requests import RenderRequest
        from authkit_setup.pipeline.requests import render as render_pipeline

        return render_pipeline(options(RenderRequest, params), out, confirm=confirmer(out))

    run_command(json_output, set_up, _print_summary)


def _print_summary(out: Output, report: SetupReport) -> None:
    from authkit_setup.check.urls import print_check

    assert report.service is not None
    title = "Plan (dry run, nothing changed)" if report.planned else "Done"
    out.print(
        f"{title}: {report.service.name} ({report.service.id}, {report.service.region})",
        role="heading",
    )
    for plan in report.plans:
        store = plan.store or plan.existing
        if store is None:
            out.print(
                f"  {plan.spec.kind.value:<9} {plan.spec.name}: will be created ({plan.spec.plan}, {plan.spec.region})"
            )
        else:
            verb = "created" if store.created else "reused"
            if report.planned:
                verb = "exists, reused"
            out.print(
                f"  {plan.spec.kind.value:<9} {store.name} ({store.id}): {verb}, {store.status}"
            )
    for change in report.env:
        out.print(f"  {change.key}: {change.action}{' (planned)' if report.planned else ''}")
    if report.migration is not None:
        m = report.migration
        out.print(f"  {m.label}: {m.action}{' (planned)' if report.planned else ''} ({m.after})")
    if report.deploy:
        out.print(f"  deploy {report.deploy.get('id')}: {report.deploy.get('status')}")
    out.print()
    for result in report.checks:
        print_check(out, result)
