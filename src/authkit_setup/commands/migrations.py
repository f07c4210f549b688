"""`authkit-setup migrations`: run the database migration on every deploy of a Render service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from authkit_setup.commands._common import (
    ApiKeyOption,
    JsonOption,
    ServiceOption,
    WaitDeployOption,
    WorkspaceOption,
    YesOption,
    options,
    run_command,
    timeout_flag,
    value_flag,
)
from authkit_setup.output import Output

if TYPE_CHECKING:
    from authkit_setup.production.migrations import MigrationReport

HELP = """Make a Render service run its database migration on every deploy.

On a paid web service, private service or background worker the command becomes the pre-deploy
command (it runs after the build, before the new version goes live). On a free instance, which
has no pre-deploy command, it goes into the build command before the build step:
`pnpm install && pnpm build` becomes `pnpm install && pnpm db:push && pnpm build`; with no
recognizable build step it is appended with &&. Safe to re-run: a command that already runs is
left alone, and nothing changes or deploys. Deploys after a change unless --no-deploy.

\b
Examples:
  authkit-setup migrations --service my-api --command "pnpm db:push"
  authkit-setup migrations --service my-api --command "pnpm db:migrate" --dry-run
  authkit-setup migrations --service srv-abc123... --command "npx prisma migrate deploy" --json
"""


def migrations(
    service: ServiceOption,
    command: Annotated[
        str,
        value_flag(
            "--command",
            "<command>",
            "The migration command, e.g. 'pnpm db:push'.",
            show_default=False,
        ),
    ],
    workspace: WorkspaceOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a different pre-deploy command already set."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the command before and after; change nothing.")
    ] = False,
    no_deploy: Annotated[
        bool, typer.Option("--no-deploy", help="Do not deploy after the change.")
    ] = False,
    wait_deploy: WaitDeployOption = False,
    yes: YesOption = False,
    timeout: Annotated[float, timeout_flag("Seconds to wait for the deploy.")] = 900.0,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    params = locals()

    def migrate(out: Output) -> MigrationReport:
        from authkit_setup.production.migrations import MigrationRequest, migrations

        return migrations(options(MigrationRequest, params, no_op=("yes",)), out)

    run_command(json_output, migrate, _print_summary)


def _print_summary(out: Output, report: MigrationReport) -> None:
    plan = report.plan
    title = "Plan (dry run, nothing changed)" if report.planned else "Done"
    out.print(f"{title}: {report.service.name} ({report.service.id})")
    out.print(f"  {plan.label}: {plan.action} ({plan.reason})")
    if plan.changed:
        out.print(f"    before: {plan.before or '(none)'}")
        out.print(f"    after:  {plan.after}")
    else:
        out.print(f"    {plan.after}")
    if report.deploy:
        out.print(f"  deploy {report.deploy.get('id')}: {report.deploy.get('status')}")
