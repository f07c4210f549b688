"""`authkit-setup migrations`: find the service, plan where its migration command goes, PATCH it
if needed, deploy if it changed. The migration step itself is pipeline/migrate.py (`render
--migrate-command` runs it too)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from authkit_setup.output import Output
from authkit_setup.pipeline.migrate import MigrationPlan, apply_migration, plan_migration
from authkit_setup.pipeline.service import ServiceRef
from authkit_setup.providers.render import RenderClient


@dataclass(frozen=True)
class MigrationRequest:
    """`authkit-setup migrations`' options, as given."""

    service: str
    command: str
    workspace: str | None = None
    force: bool = False
    dry_run: bool = False
    no_deploy: bool = False
    wait_deploy: bool = False
    timeout: float = 900.0
    api_key: str | None = None


@dataclass
class MigrationReport:
    service: ServiceRef
    plan: MigrationPlan
    deploy: dict[str, Any] | None = None
    planned: bool = False

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": True,
            "service": self.service.to_json(),
            "migration": self.plan.to_json(),
            "deploy": self.deploy,
        }
        if self.planned:
            doc["planned"] = True
        return doc


def migrations(request: MigrationRequest, out: Output) -> MigrationReport:
    """Check the request, then run the migration step with a Render client."""
    from authkit_setup.inputs import check_deploy_flags
    from authkit_setup.pipeline.migrate import check_command
    from authkit_setup.providers.clients import render_client

    check_deploy_flags(no_deploy=request.no_deploy, wait_deploy=request.wait_deploy)
    checked = replace(request, command=check_command(request.command, "--command"))
    with render_client(out, api_key=request.api_key) as client:
        return run_migrations(client, checked, out)


def run_migrations(
    client: RenderClient,
    opts: MigrationRequest,
    out: Output,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> MigrationReport:
    """find the service → plan → PATCH (if needed) → deploy (if changed)."""
    from authkit_setup.pipeline.deploy import deploy_service
    from authkit_setup.pipeline.service import resolve_service

    service = resolve_service(client, opts.service, opts.workspace)
    out.step(f"service {service.name} ({service.id}), plan {service.plan or 'unknown'}")
    plan = plan_migration(service, opts.command, force=opts.force)
    report = MigrationReport(service, plan)
    if opts.dry_run:
        report.planned = True
        return report
    apply_migration(client, service, plan, out)
    if plan.changed and not opts.no_deploy:
        report.deploy = deploy_service(
            client,
            service.id,
            out,
            wait=opts.wait_deploy,
            timeout=opts.timeout,
            sleep=sleep,
            clock=clock,
        )
    elif not plan.changed:
        out.step("nothing changed: no deploy needed")
    else:
        out.warn(f"--no-deploy: the new {plan.label} takes effect on the next deploy")
    return report
