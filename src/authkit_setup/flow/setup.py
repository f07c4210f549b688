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

from authkit_setup.ci import mask_connection_info
from authkit_setup.diagnostics.model import CheckResult
from authkit_setup.errors import PlanConflictError, UsageError
from authkit_setup.flow.deploy import trigger_deploy, wait_for_deploy
from authkit_setup.flow.env import EnvChange, predict, write_service_env
from authkit_setup.flow.migrations import MigrationPlan, apply_migration, plan_migration
from authkit_setup.flow.provision import ensure_single, provision
from authkit_setup.flow.service import ServiceRef, resolve_service
from authkit_setup.flow.wait import wait_until_ready
from authkit_setup.masking import mask_url
from authkit_setup.output import Output
from authkit_setup.providers.base import (
    ConnectionInfo,
    Kind,
    Readiness,
    RecoversPasswords,
    Store,
    StoreProvider,
    StoreSpec,
)
from authkit_setup.providers.render import RenderClient, RenderStores

ENV_KEYS = {Kind.POSTGRES: "DATABASE_URL", Kind.REDIS: "REDIS_URL"}


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
    dry_run: bool = False
    yes: bool = False
    timeout: float = 900.0
    check_timeout: float = 5.0
    env_file: Path | None = None
    environment_id: str | None = None
    migrate_command: str | None = None  # run on every deploy (flow/migrations.py)


@dataclass
class StorePlan:
    spec: StoreSpec
    provider: StoreProvider
    existing: Store | None
    info: ConnectionInfo | None = None
    store: Store | None = None


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
        resources = []
        for plan in self.plans:
            store = plan.store or plan.existing
            if store is not None:
                doc = store.to_json()
            else:
                doc = {
                    "kind": plan.spec.kind.value,
                    "provider": plan.provider.name,
                    "name": plan.spec.name,
                    "id": None,
                    "region": plan.spec.region,
                    "plan": plan.spec.plan,
                    "status": "planned",
                    "created": True,
                }
            if self.planned:
                doc["action"] = "reuse" if plan.existing else "create"
            resources.append(doc)
        doc_out: dict[str, Any] = {
            "ok": self.ok,
            "service": self.service.to_json(),
            "resources": resources,
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
    recovering = [p for p in chosen.values() if isinstance(p, RecoversPasswords)]
    if recovering:  # e.g. Supabase: the password lives only in the URLs written last time
        written = [client.env_var(service.id, k) for k in ("DATABASE_URL", "DIRECT_URL")]
        for recoverer in recovering:
            recoverer.recover_password(v for v in written if v)
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
                hint=f"use another name (--{'db' if spec.kind is Kind.POSTGRES else 'redis'}-name) to "
                f"create one in {service.region}, or move the service",
            )
        if existing is not None and existing.region != spec.region:
            raise PlanConflictError(
                f"{provider.name} {spec.name} ({existing.id}) is in {existing.region}, not in "
                f"{spec.region} near {service.name} ({service.region}): every query would cross "
                "regions",
                hint=f"pass --provider-region {existing.region} to use it anyway, or another "
                f"--{'db' if spec.kind is Kind.POSTGRES else 'redis'}-name to create one in "
                f"{spec.region}",
            )
        plan = StorePlan(spec, provider, existing)
        if existing is not None:
            out.step(f"{spec.name}: exists ({existing.id}, {existing.status})")
        # Render answers connection info in any state; other providers once the store is ready
        # (else it is read after the wait step).
        if existing is not None and (
            provider is render_stores or existing.readiness is Readiness.READY
        ):
            plan.info = provider.connection_info(existing)
            mask_connection_info(out, plan.info)
        elif existing is None:
            out.step(f"{spec.name}: will be created")
        plans.append(plan)

    current = {
        ENV_KEYS[p.spec.kind]: client.env_var(service.id, ENV_KEYS[p.spec.kind]) for p in plans
    }
    for plan in plans:
        key = ENV_KEYS[plan.spec.kind]
        value = current[key]
        if value is None or (plan.info is not None and value == plan.info.app_url):
            continue
        message = (
            f"{service.name} already has {key} pointing at {_where(value)}, not at {plan.spec.name}"
        )
        if opts.force:
            out.warn(message + "; --force: it will be replaced")
            continue
        if confirm is not None and not opts.yes and confirm(message + ". Replace it?"):
            continue
        raise PlanConflictError(
            message,
            hint="re-run with --force to replace it (nothing has been changed)",
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

    missing = [(p.provider, p.spec) for p in plans if p.existing is None]
    created = iter(provision(missing, out, sleep=sleep))
    for plan in plans:
        plan.store = plan.existing if plan.existing is not None else next(created)

    ready = wait_until_ready(
        [(p.provider, p.store) for p in plans if p.store is not None],
        out,
        timeout=opts.timeout,
        sleep=sleep,
        clock=clock,
    )
    for plan, store in zip(plans, ready, strict=True):
        plan.store = store
        if plan.info is None:
            plan.info = plan.provider.connection_info(store)
            mask_connection_info(out, plan.info)

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
        report.deploy = trigger_deploy(client, service.id, out)
        if opts.wait_deploy:
            report.deploy = wait_for_deploy(
                client,
                service.id,
                report.deploy,
                out,
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
    if opts.verify:
        report.checks = verify_stores(
            plans, out, timeout=opts.check_timeout, sleep=sleep, clock=clock
        )
    return report


def write_local_env(path: Path, plans: list[StorePlan], out: Output) -> dict[str, str]:
    """External URLs into a local .env for development (atomic, mode 600, rest kept)."""
    from authkit_setup.envfile import update_env_file

    values: dict[str, str] = {}
    for plan in plans:
        if plan.info and plan.info.external_url:
            values[ENV_KEYS[plan.spec.kind]] = plan.info.external_url
            values.update(plan.info.extra_env)  # e.g. DIRECT_URL beside DATABASE_URL
            if not plan.info.external_reachable:
                out.warn(
                    f"{path}: {ENV_KEYS[plan.spec.kind]} is written but {plan.info.unreachable_reason}"
                )
    actions = update_env_file(path, values)
    for key, action in actions.items():
        out.step(f"{path}: {key} {action}")
    return {k: str(v) for k, v in actions.items()}


def verify_stores(
    plans: list[StorePlan],
    out: Output,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[CheckResult]:
    """Check each store from here through its external URL; say plainly what cannot be checked."""
    from authkit_setup.diagnostics import run_checks
    from authkit_setup.diagnostics.model import Target

    urls: dict[Target, str] = {}
    skipped: list[CheckResult] = []
    for plan in plans:
        info = plan.info
        target: Target = "postgres" if plan.spec.kind is Kind.POSTGRES else "redis"
        if info is None:
            continue
        if not info.external_url or not info.external_reachable:
            result = CheckResult(target, info.external_url or info.app_url)
            result.skipped = True
            flag = "--redis-allow-cidr" if plan.spec.kind is Kind.REDIS else "--postgres-allow-cidr"
            result.reason = (
                f"not verifiable from here: {info.unreachable_reason or 'no external URL'}. To verify, "
                f"re-run with {flag} <this machine's IP>/32, or run `authkit-setup check --service "
                "NAME` from a Render shell in the same region"
            )
            skipped.append(result)
            out.warn(f"{plan.spec.name}: {result.reason}")
        else:
            urls[target] = info.external_url
    out.step("verifying " + (", ".join(urls) if urls else "nothing reachable from here"))
    results = run_checks(urls, timeout=timeout) if urls else []
    # A store just created may refuse its first connections for a while (Upstash): re-check
    # connection-level failures until its `verify_grace` has passed.
    grace = {
        ("postgres" if p.spec.kind is Kind.POSTGRES else "redis"): p.info.verify_grace
        for p in plans
        if p.info is not None
    }
    start = clock()
    while True:
        retry: dict[Target, str] = {
            r.target: urls[r.target]
            for r in results
            if r.failed_rung in ("dns", "tcp", "tls") and clock() - start < grace.get(r.target, 0)
        }
        if not retry:
            break
        out.info(f"{', '.join(retry)}: not answering yet; checking again")
        sleep(2.0)
        again = {r.target: r for r in run_checks(retry, timeout=timeout)}
        results = [again.get(r.target, r) for r in results]
    merged = {r.target: r for r in [*results, *skipped]}
    return [merged[t] for t in ("postgres", "redis") if t in merged]


def _undeployed(client: RenderClient, service_id: str, plans: list[StorePlan]) -> bool:
    """True when no deploy started after the newest store the variables point at was created."""
    from datetime import UTC, datetime

    def parse(value: str | None) -> datetime | None:
        if not value:
            return None
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    created = [parse(p.store.created_at) for p in plans if p.store is not None]
    newest = max((c for c in created if c is not None), default=None)
    if newest is None:
        return False
    latest = client.deploys(service_id, limit=1)
    if not latest:
        return True
    started = parse(latest[0].get("createdAt"))
    return started is not None and started < newest
