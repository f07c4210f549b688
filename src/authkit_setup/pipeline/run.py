"""The pipeline, in the order the README promises; `render` and `provision` are this one run
with different targets:

1. find the service (service.py; `render` only: the service's region is where stores go)
2. plan: look every store and variable up, refuse before any change (plan.py)
3. provision the missing stores (provision.py)
4. wait until every store is ready (wait.py)
5. read the connection URLs (urls.py)
6. write them to the target: the service's environment, or a .env file (env.py, targets/)
7. deploy, so the service runs with them (deploy.py; `render` only)
8. verify each store from here (verify.py), or with --verify-inside from inside the service,
   through the URLs it was given, with one Render job (verify_inside.py; `render` only)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authkit_setup.ci import OutputValue, write_outputs
from authkit_setup.diagnostics.model import CheckResult
from authkit_setup.output import Output
from authkit_setup.pipeline.deploy import Redeploy
from authkit_setup.pipeline.env import planned_env, write_env
from authkit_setup.pipeline.migrate import MigrationPlan
from authkit_setup.pipeline.plan import Near, StorePlan, Wanted, plan_stores
from authkit_setup.pipeline.provision import provision_missing
from authkit_setup.pipeline.service import ServiceRef, find_service
from authkit_setup.pipeline.urls import read_urls
from authkit_setup.pipeline.verify import prepare as prepare_verify
from authkit_setup.pipeline.verify import verify_stores
from authkit_setup.pipeline.verify_inside import verify_plans_from_inside
from authkit_setup.pipeline.wait import wait_for_stores
from authkit_setup.providers.base import InWorkspace, Kind, StoreProvider
from authkit_setup.providers.regions import near_render_region
from authkit_setup.providers.render import RenderClient
from authkit_setup.targets.base import EnvChange, EnvTarget
from authkit_setup.targets.env_file import EnvFile
from authkit_setup.targets.github_env import append_urls
from authkit_setup.targets.render_service import ServiceEnv

Sleep = Callable[[float], None]
Clock = Callable[[], float]
Verify = Callable[[list[StorePlan], Output], list[CheckResult]]


@dataclass
class SetupOptions:
    """Everything `render` and `provision` are asked; `service` only for `render`."""

    service: str | None = None
    workspace: str | None = None
    region: str | None = None  # render: must be the service's; provision: the stores go near it
    wanted: Wanted = field(default_factory=Wanted)
    force: bool = False
    deploy: bool = True
    wait_deploy: bool = False
    verify: bool = True
    verify_inside: bool = False  # `render`: one Render job proves the internal URLs
    dry_run: bool = False
    yes: bool = False
    timeout: float = 900.0
    check_timeout: float = 5.0
    env_file: Path | None = None
    migrate_command: str | None = None  # run on every deploy (pipeline/migrate.py)


@dataclass
class SetupReport:
    plans: list[StorePlan]
    service: ServiceRef | None = None
    env: list[EnvChange] = field(default_factory=list)
    deploy: dict[str, Any] | None = None
    checks: list[CheckResult] = field(default_factory=list)
    planned: bool = False
    env_file: Path | None = None
    env_file_changes: list[EnvChange] | None = None
    migration: MigrationPlan | None = None
    preview: str | None = None  # `render --preview NAME`

    @property
    def ok(self) -> bool:
        return all(c.ok or c.skipped for c in self.checks)

    def urls(self) -> dict[str, str]:
        """What a .env file gets: DATABASE_URL (+ DIRECT_URL) and REDIS_URL, external."""
        infos = {p.spec.kind: p.info for p in self.plans if p.info is not None}
        return EnvFile(None).values(infos, Output(quiet=True))

    def to_json(self) -> dict[str, Any]:
        """`render`'s document when there is a service, else `provision`'s."""
        doc: dict[str, Any] = {"ok": self.ok}
        resources = [plan.to_json(planned=self.planned) for plan in self.plans]
        checks = [c.to_json(with_skip=True) for c in self.checks]
        changes = {c.key: c.action for c in self.env_file_changes or []}
        if self.service is None:
            doc["resources"] = resources
            doc["urls"] = self.urls()  # masked on output unless --show-secrets
            doc["env_file"] = (
                None if self.env_file is None else {"path": str(self.env_file), "changes": changes}
            )
            doc["checks"] = checks
        else:
            doc["service"] = self.service.to_json()
            doc["resources"] = resources
            doc["env"] = [c.to_json() for c in self.env]
            doc["deploy"] = self.deploy
            doc["checks"] = checks
        if self.planned:
            doc["planned"] = True
        if self.migration is not None:
            doc["migration"] = self.migration.to_json()
        if self.service is not None and self.env_file_changes is not None:
            doc["env_file"] = changes
        if self.preview is not None:
            doc["preview"] = self.preview
        return doc


def run(
    opts: SetupOptions,
    providers: Mapping[Kind, StoreProvider],
    near: Near,
    target: EnvTarget,
    out: Output,
    *,
    redeploy: Redeploy | None = None,
    also: EnvFile | None = None,
    verify: Verify | None = None,
    confirm: Callable[[str], bool] | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> SetupReport:
    """Steps 2-8; the service, if any, was found first (`near.service`), and `redeploy` makes
    the new variables take effect there. `also` is a .env file that gets the external URLs
    as well (`render --env-file`). `verify` checks the stores instead of checking them from
    here (`render --verify-inside`)."""
    plans, current = plan_stores(
        opts.wanted, providers, near, target, out, force=opts.force, confirm=confirm
    )
    report = SetupReport(plans, near.service)
    report.migration = redeploy.plan(force=opts.force) if redeploy else None
    if opts.dry_run:
        report.planned, report.env = True, planned_env(target, plans, current)
        return report

    provision_missing(plans, out, sleep=sleep)
    if opts.verify and verify is None:
        prepare_verify(plans)
    wait_for_stores(plans, out, timeout=opts.timeout, sleep=sleep, clock=clock)
    read_urls(plans)
    report.env = write_env(target, plans, current, out)
    if redeploy is not None:
        report.deploy = redeploy.apply(
            plans, report.env, report.migration, out, sleep=sleep, clock=clock
        )
    if also is not None:
        report.env_file_changes = write_env(also, plans, {}, out)
    if opts.verify and verify is not None:
        report.checks = verify(plans, out)
    elif opts.verify:
        report.checks = verify_stores(
            plans,
            out,
            timeout=opts.check_timeout,
            service=near.service.name if near.service is not None else None,
            sleep=sleep,
            clock=clock,
        )
    return report


def run_setup(
    client: RenderClient,
    opts: SetupOptions,
    out: Output,
    *,
    providers: Mapping[Kind, StoreProvider],
    confirm: Callable[[str], bool] | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> SetupReport:
    """`render`: find the service, then the pipeline into its environment."""
    assert opts.service is not None
    service = find_service(client, opts.service, opts.workspace, opts.region, out)
    for provider in providers.values():  # Render stores live in the service's workspace
        if isinstance(provider, InWorkspace):
            provider.use_workspace(service.owner_id)

    def from_inside(plans: list[StorePlan], out: Output) -> list[CheckResult]:
        return verify_plans_from_inside(
            client, service, plans, out, timeout=opts.timeout, sleep=sleep, clock=clock
        )

    return run(
        opts,
        providers,
        Near(service.region, service),
        ServiceEnv(client, service_id=service.id, service_name=service.name),
        out,
        redeploy=Redeploy(
            client,
            service,
            deploy=opts.deploy,
            wait=opts.wait_deploy,
            timeout=opts.timeout,
            migrate_command=opts.migrate_command,
        ),
        also=EnvFile(opts.env_file) if opts.env_file is not None else None,
        verify=from_inside if opts.verify_inside else None,
        confirm=None if opts.yes else confirm,
        sleep=sleep,
        clock=clock,
    )


def run_provision(
    providers: Mapping[Kind, StoreProvider],
    opts: SetupOptions,
    out: Output,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> SetupReport:
    """`provision`: the pipeline into a .env file (or stdout), near a Render region."""
    near = Near(near_render_region(opts.region))
    report = run(opts, providers, near, EnvFile(opts.env_file), out, sleep=sleep, clock=clock)
    report.env_file = opts.env_file
    if opts.env_file is not None and not report.planned:
        report.env_file_changes = report.env
    return report


def publish(out: Output, report: SetupReport, *, github_env: Path | None) -> None:
    """After `render`: external URLs to `$GITHUB_ENV` (if asked), ids and names to the step's
    outputs. A dry run writes neither: it changes nothing, and its stores may not exist yet."""
    if report.planned:
        return
    if github_env is not None:
        append_urls(github_env, ((p.spec.kind, p.spec.name, p.info) for p in report.plans), out)
    outputs: dict[str, OutputValue] = {
        "ok": report.ok,
        "service_id": report.service.id if report.service else None,
        "preview": report.preview,
    }
    for plan in report.plans:
        store = plan.store or plan.existing
        kind = plan.spec.kind.value
        outputs[f"{kind}_name"] = store.name if store else plan.spec.name
        outputs[f"{kind}_id"] = store.id if store else ""
    write_outputs(out, outputs)
