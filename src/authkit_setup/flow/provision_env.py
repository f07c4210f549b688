"""`authkit-setup provision`: the pipeline without Render, for a local .env file (or stdout).

plan (find by exact name, stop before any change on a conflict) → provision → wait → read URLs
→ write the .env file (atomic, mode 600, every other line kept) → verify.

The stores go in the region nearest a Render region (`--region`, default ohio) or exactly
`--provider-region`, in each provider's spelling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authkit_setup.ci import mask_connection_info
from authkit_setup.diagnostics.model import CheckResult
from authkit_setup.errors import PlanConflictError, UsageError
from authkit_setup.flow.provision import ensure_single, provision
from authkit_setup.flow.setup import ENV_KEYS, StorePlan, verify_stores, write_local_env
from authkit_setup.flow.wait import wait_until_ready
from authkit_setup.masking import mask_url
from authkit_setup.output import Output
from authkit_setup.providers.base import (
    Kind,
    Readiness,
    RecoversPasswords,
    StoreProvider,
    StoreSpec,
)
from authkit_setup.providers.regions import DEFAULT_RENDER_REGION, RENDER_TO_AWS
from authkit_setup.settings import DIRECT_URL, read_env_file


@dataclass
class ProvisionOptions:
    region: str | None = None  # a Render region name: the stores go to the nearest one
    db_name: str = "authkit-db"
    redis_name: str = "authkit-redis"
    database: str = "authkit"
    db_user: str = "authkit_user"
    postgres_version: str = "16"
    env_file: Path | None = None
    force: bool = False
    dry_run: bool = False
    verify: bool = True
    timeout: float = 900.0
    check_timeout: float = 5.0


@dataclass
class ProvisionReport:
    plans: list[StorePlan]
    planned: bool = False
    env_file: Path | None = None
    env_changes: dict[str, str] | None = None
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok or c.skipped for c in self.checks)

    def urls(self) -> dict[str, str]:
        """What goes into the .env file: DATABASE_URL (+ DIRECT_URL) and REDIS_URL."""
        values: dict[str, str] = {}
        for plan in self.plans:
            if plan.info is not None and plan.info.external_url:
                values[ENV_KEYS[plan.spec.kind]] = plan.info.external_url
                values.update(plan.info.extra_env)
        return values

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
        out: dict[str, Any] = {
            "ok": self.ok,
            "resources": resources,
            "urls": self.urls(),  # masked on output unless --show-secrets
            "env_file": (
                None
                if self.env_file is None
                else {"path": str(self.env_file), "changes": self.env_changes or {}}
            ),
            "checks": [c.to_json(with_skip=True) for c in self.checks],
        }
        if self.planned:
            out["planned"] = True
        return out


def _render_region(region: str | None) -> str:
    region = (region or DEFAULT_RENDER_REGION).strip().lower()
    if region not in RENDER_TO_AWS:
        raise UsageError(
            f"--region {region!r} is not a Render region",
            hint=f"use one of {', '.join(RENDER_TO_AWS)}, or --provider-region for an exact one",
        )
    return region


def _spec(kind: Kind, opts: ProvisionOptions, region: str) -> StoreSpec:
    return StoreSpec(
        kind=kind,
        name=opts.db_name if kind is Kind.POSTGRES else opts.redis_name,
        region=region,
        plan="default",
        database=opts.database,
        user=opts.db_user,
        version=opts.postgres_version,
    )


def plan_provision(
    providers: dict[Kind, StoreProvider], opts: ProvisionOptions, out: Output
) -> tuple[list[StorePlan], dict[str, str]]:
    """Look everything up; stop before any change on a conflict. Returns the plans and the
    .env file's current values."""
    if not providers:
        raise UsageError(
            "nothing to provision: pass --postgres neon|supabase and/or --redis upstash"
        )
    near = _render_region(opts.region)
    current = read_env_file(opts.env_file) if opts.env_file is not None else {}
    for chosen in providers.values():
        if isinstance(chosen, RecoversPasswords):  # Supabase: the password lives in the URLs
            chosen.recover_password(
                v for v in (current.get("DATABASE_URL"), current.get(DIRECT_URL)) if v
            )
    plans: list[StorePlan] = []
    for kind in (Kind.POSTGRES, Kind.REDIS):
        if kind not in providers:
            continue
        provider = providers[kind]
        spec = _spec(kind, opts, provider.region_for(near))
        existing = ensure_single(provider.find(kind, spec.name), spec)
        if existing is not None and existing.region != spec.region:
            raise PlanConflictError(
                f"{provider.name} {spec.name} ({existing.id}) is in {existing.region}, not in "
                f"{spec.region}",
                hint=f"pass --provider-region {existing.region} to use it anyway, or another "
                f"--{'db' if kind is Kind.POSTGRES else 'redis'}-name to create one in "
                f"{spec.region}",
            )
        plan = StorePlan(spec, provider, existing)
        if existing is None:
            out.step(f"{spec.name}: will be created on {provider.name} in {spec.region}")
        else:
            out.step(f"{spec.name}: exists on {provider.name} ({existing.id}, {existing.status})")
            if existing.readiness is Readiness.READY:
                plan.info = provider.connection_info(existing)
                mask_connection_info(out, plan.info)
        plans.append(plan)

    if opts.env_file is not None:
        for plan in plans:
            key = ENV_KEYS[plan.spec.kind]
            value = current.get(key)
            if not value or (plan.info is not None and value == plan.info.app_url):
                continue
            message = f"{opts.env_file} already has {key}={mask_url(value)}, not {plan.spec.name}"
            if opts.force:
                out.warn(message + "; --force: it will be replaced")
                continue
            raise PlanConflictError(
                message, hint="re-run with --force to replace it (nothing has been changed)"
            )
    return plans, current


def run_provision(
    providers: dict[Kind, StoreProvider],
    opts: ProvisionOptions,
    out: Output,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ProvisionReport:
    plans, _ = plan_provision(providers, opts, out)
    report = ProvisionReport(plans, env_file=opts.env_file)
    if opts.dry_run:
        report.planned = True
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

    if opts.env_file is not None:
        report.env_changes = write_local_env(opts.env_file, plans, out)
    if opts.verify:
        report.checks = verify_stores(
            plans, out, timeout=opts.check_timeout, sleep=sleep, clock=clock
        )
    return report
