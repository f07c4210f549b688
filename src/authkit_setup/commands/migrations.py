"""`authkit-setup migrations`: run the database migration on every deploy of a Render service."""

from __future__ import annotations

from typing import Annotated

import typer

from authkit_setup.commands._common import (
    ApiKeyOption,
    JsonOption,
    ServiceOption,
    WaitDeployOption,
    WorkspaceOption,
    check_deploy_flags,
    execute,
)
from authkit_setup.output import Output

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
        typer.Option(
            "--command", help="The migration command, e.g. 'pnpm db:push'.", show_default=False
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
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the deploy.", min=1)
    ] = 900.0,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    out = Output(json_mode=json_output)

    def body() -> int:
        from authkit_setup.pipeline.migrate import check_command
        from authkit_setup.production.migrations import MigrationOptions, run_migrations
        from authkit_setup.providers import render_client

        check_deploy_flags(no_deploy=no_deploy, wait_deploy=wait_deploy)
        opts = MigrationOptions(
            service=service,
            command=check_command(command, "--command"),
            workspace=workspace,
            force=force,
            dry_run=dry_run,
            deploy=not no_deploy,
            wait_deploy=wait_deploy,
            timeout=timeout,
        )
        with render_client(out, api_key=api_key) as client:
            report = run_migrations(client, opts, out)
        out.result(report.to_json())
        if not out.json_mode:
            plan = report.plan
            title = "Plan (dry run, nothing changed)" if report.planned else "Done"
            out.print(f"{title}: {report.service.name} ({report.service.id})", role="heading")
            out.print(f"  {plan.label}: {plan.action} ({plan.reason})")
            if plan.changed:
                out.print(f"    before: {plan.before or '(none)'}")
                out.print(f"    after:  {plan.after}")
            else:
                out.print(f"    {plan.after}")
            if report.deploy:
                out.print(f"  deploy {report.deploy.get('id')}: {report.deploy.get('status')}")
        return 0

    execute(out, body)
