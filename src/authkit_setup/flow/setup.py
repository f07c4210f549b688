"""`authkit-setup render`: the whole pipeline, in the order the product promises.

find the service → plan (stop before any change on a conflict) → provision → wait → read URLs →
write env vars → deploy → verify.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from authkit_setup.diagnostics.model import CheckResult
from authkit_setup.errors import PlanConflictError, UsageError
from authkit_setup.flow.deploy import deploy_service, trigger_deploy
from authkit_setup.flow.env import EnvChange, predict, write_service_env
from authkit_setup.flow.migrations import MigrationPlan, apply_migration, plan_migration
from authkit_setup.flow.provision import ensure_single, name_flag
from authkit_setup.flow.service import ServiceRef, resolve_service
from authkit_setup.flow.stores import (
    ENV_KEYS,
    provision_and_wait,
    recover_passwords,
    refuse_other_region,
    refuse_overwrites,
    write_local_env,
)

# Shared with `provision` (flow/stores.py), and still importable from here.
from authkit_setup.flow.stores import StorePlan as StorePlan
from authkit_setup.flow.stores import verify_stores as verify_stores
from authkit_setup.flow.timestamps import parse_time
from authkit_setup.masking import mask_url
from authkit_setup.output import Output
from authkit_setup.providers.base import Kind, Readiness, StoreProvider, StoreSpec
from authkit_setup.providers.render import RenderClient, RenderStores


@dataclass
class SetupOptions:
    service: str
    workspace: str | None = None
    region: str | None = None
    db_name: str = "authkit-db"
    database: str = "authkit"
    db_user: str = "authkit_user"
    redis_name: str = "authkit-redis"
    postgres_plan: str = "free"
    redis_plan: str = "free"
    postgres_version: str = "16"
    maxmemory_policy: str = "noeviction"
    postgres_allow: tuple[str, ...] = ("0.0.0.0/0",)
    redis_allow: tuple[str, ...] = ()
    force: bool = False
    deploy: bool = True
    wait_deploy: bool = False
    verify: bool = True
    verify_inside: bool = False  # one Render job proves the internal URLs (flow/verify_inside.py)
    dry_run: bool = False
    yes: bool = False
    timeout: float = 900.0
    check_timeout: float = 5.0
    env_file: Path | None = None
    environment_id: str | None = None
    migrate_command: str | None = None  # run on every deploy (flow/migrations.py)


@dataclass
class SetupReport:
    service: ServiceRef
    plans: list[StorePlan]
    env: list[EnvChange] = field(default_factory=list)
    deploy: dict[str, Any] | None = None
    checks: list[CheckResult] = field(default_factory=list)
    planned: bool = False
    env_file: dict[str, str] | None = None
    migration: MigrationPlan | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok or c.skipped for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        doc_out: dict[str, Any] = {
            "ok": self.ok,
            "service": self.service.to_json(),
            "resources": [plan.to_json(planned=self.planned) for plan in self.plans],
            "env": [c.to_json() for c in self.env],
            "deploy": self.deploy,
            "checks": [c.to_json(with_skip=True) for c in self.checks],
        }
        if self.planned:
            doc_out["planned"] = True
        if self.migration is not None:
            doc_out["migration"] = self.migration.to_json()
        if self.env_file is not None:
            doc_out["env_file"] = self.env_file
        return doc_out


def _specs(opts: SetupOptions, region: str) -> list[StoreSpec]:
    return [
        StoreSpec(
            kind=Kind.POSTGRES,
            name=opts.db_name,
            region=region,
            plan=opts.postgres_plan,
            database=opts.database,
            user=opts.db_user,
            version=opts.postgres_version,
            allow_cidrs=opts.postgres_allow,
            environment_id=opts.environment_id,
        ),
        StoreSpec(
            kind=Kind.REDIS,
            name=opts.redis_name,
            region=region,
            plan=opts.redis_plan,
            maxmemory_policy=opts.maxmemory_policy,
            allow_cidrs=opts.redis_allow,
            environment_id=opts.environment_id,
        ),
    ]


def plan_setup(
    client: RenderClient,
    opts: SetupOptions,
    out: Output,
    *,
    providers: dict[Kind, StoreProvider] | None = None,
    confirm: Callable[[str], bool] | None = None,
) -> tuple[ServiceRef, list[StorePlan], dict[str, str | None]]:
    """Look everything up and stop before any mutation if something is wrong."""
    service = resolve_service(client, opts.service, opts.workspace)
    out.step(f"service {service.name} ({service.id}) in {service.region}")
    if opts.region and opts.region != service.region:
        raise UsageError(
            f"--region {opts.region} does not match the service's region {service.region}: "
            "internal URLs only work within one region",
            hint=f"drop --region, or pass --region {service.region}",
        )
    render_stores = RenderStores(client, service.owner_id)
    chosen = providers or {}
    # e.g. Supabase: the password lives only in the URLs written last time
    recover_passwords(chosen.values(), lambda key: client.env_var(service.id, key))
    plans: list[StorePlan] = []
    for spec in _specs(opts, service.region):
        provider: StoreProvider = chosen.get(spec.kind, render_stores)
        if provider is not render_stores:  # the provider's region nearest the service's
            spec = replace(spec, region=provider.region_for(service.region), plan="default")
        existing = ensure_single(provider.find(spec.kind, spec.name), spec)
        if existing is not None and provider.name == "render" and existing.region != service.region:
            raise PlanConflictError(
                f"{spec.name} ({existing.id}) is in {existing.region}, but {service.name} runs in "
                f"{service.region}: its internal URL would not reach the service",
                hint=f"use another name ({name_flag(spec.kind)}) to create one in "
                f"{service.region}, or move the service",
            )
        refuse_other_region(
            provider,
            spec,
            existing,
            near=f" near {service.name} ({service.region}): every query would cross regions",
        )
        plan = StorePlan(spec, provider, existing)
        if existing is None:
            out.step(f"{spec.name}: will be created")
        else:
            out.step(f"{spec.name}: exists ({existing.id}, {existing.status})")
            # Render answers connection info in any state; other providers once the store is
            # ready (else it is read after the wait step).
            if provider is render_stores or existing.readiness is Readiness.READY:
                plan.read_info(existing, out)
        plans.append(plan)

    current = {
        ENV_KEYS[p.spec.kind]: client.env_var(service.id, ENV_KEYS[p.spec.kind]) for p in plans
    }
    refuse_overwrites(
        plans,
        current,
        out,
        conflict=lambda key, value, name: (
            f"{service.name} already has {key} pointing at {_where(value)}, not at {name}"
        ),
        force=opts.force,
        confirm=None if opts.yes else confirm,
    )
    return service, plans, current


def _where(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}{parts.path or ''} ({mask_url(url)})"
    except ValueError:
        return mask_url(url)


def run_setup(
    client: RenderClient,
    opts: SetupOptions,
    out: Output,
    *,
    providers: dict[Kind, StoreProvider] | None = None,
    confirm: Callable[[str], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SetupReport:
    service, plans, current = plan_setup(client, opts, out, providers=providers, confirm=confirm)
    report = SetupReport(service, plans)
    if opts.migrate_command is not None:  # decided now: a conflict stops before any change
        report.migration = plan_migration(service, opts.migrate_command, force=opts.force)
    if opts.dry_run:
        report.planned = True
        for plan in plans:
            key = ENV_KEYS[plan.spec.kind]
            target_value = plan.info.app_url if plan.info else None
            report.env.append(EnvChange(key, predict(current[key], target_value)))
        return report

    provision_and_wait(plans, out, timeout=opts.timeout, sleep=sleep, clock=clock)

    desired: dict[str, str] = {}
    for plan in plans:
        assert plan.info is not None
        desired[ENV_KEYS[plan.spec.kind]] = plan.info.app_url
        desired.update(plan.info.extra_env)
    for key in desired:
        if key not in current:
            current[key] = client.env_var(service.id, key)
    report.env = write_service_env(client, service.id, desired, current, out)

    if report.migration is not None:  # after the env step, before the one deploy for both
        apply_migration(client, service, report.migration, out)
    changed = any(c.action != "unchanged" for c in report.env)
    changed = changed or (report.migration is not None and report.migration.changed)
    if changed and opts.deploy:
        report.deploy = deploy_service(
            client,
            service.id,
            out,
            wait=opts.wait_deploy,
            timeout=opts.timeout,
            sleep=sleep,
            clock=clock,
        )
    elif opts.deploy and _undeployed(client, service.id, plans):
        # An earlier run wrote these variables but its deploy never happened (interrupted, or
        # the deploy call failed): the service may still run without them.
        out.step("the variables were written by an earlier run that did not deploy: deploying now")
        report.deploy = trigger_deploy(client, service.id, out)
    elif not changed:
        out.step("nothing changed: no deploy needed")

    if opts.env_file is not None:
        report.env_file = write_local_env(opts.env_file, plans, out)
    if opts.verify and opts.verify_inside:
        from authkit_setup.flow.verify_inside import verify_plans_from_inside

        report.checks = verify_plans_from_inside(
            client, service, plans, out, timeout=opts.timeout, sleep=sleep, clock=clock
        )
    elif opts.verify:
        report.checks = verify_stores(
            plans, out, timeout=opts.check_timeout, sleep=sleep, clock=clock
        )
    return report


def _undeployed(client: RenderClient, service_id: str, plans: list[StorePlan]) -> bool:
    """True when no deploy started after the newest store the variables point at was created."""
    created = [parse_time(p.store.created_at) for p in plans if p.store is not None]
    newest = max((c for c in created if c is not None), default=None)
    if newest is None:
        return False
    latest = client.deploys(service_id, limit=1)
    if not latest:
        return True
    started = parse_time(latest[0].get("createdAt"))
    return started is not None and started < newest
