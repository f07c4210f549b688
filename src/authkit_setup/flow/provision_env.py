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

from authkit_setup.diagnostics.model import CheckResult
from authkit_setup.errors import UsageError
from authkit_setup.flow.provision import ensure_single
from authkit_setup.flow.stores import (
    StorePlan,
    local_env,
    provision_and_wait,
    recover_passwords,
    refuse_other_region,
    refuse_overwrites,
    verify_stores,
    write_local_env,
)
from authkit_setup.output import Output
from authkit_setup.providers.base import Kind, Readiness, StoreProvider, StoreSpec
from authkit_setup.providers.regions import DEFAULT_RENDER_REGION, RENDER_TO_AWS
from authkit_setup.secrets import mask_url
from authkit_setup.settings import read_env_file


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
        return local_env(self.plans)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "resources": [plan.to_json(planned=self.planned) for plan in self.plans],
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
    recover_passwords(providers.values(), current.get)  # Supabase: the password is in the URLs
    plans: list[StorePlan] = []
    for kind in (Kind.POSTGRES, Kind.REDIS):
        if kind not in providers:
            continue
        provider = providers[kind]
        spec = _spec(kind, opts, provider.region_for(near))
        existing = ensure_single(provider.find(kind, spec.name), spec)
        refuse_other_region(provider, spec, existing)
        plan = StorePlan(spec, provider, existing)
        if existing is None:
            out.step(f"{spec.name}: will be created on {provider.name} in {spec.region}")
        else:
            out.step(f"{spec.name}: exists on {provider.name} ({existing.id}, {existing.status})")
            if existing.readiness is Readiness.READY:
                plan.read_info(existing, out)
        plans.append(plan)

    if opts.env_file is not None:
        env_file = opts.env_file
        refuse_overwrites(
            plans,
            {key: value for key, value in current.items() if value},  # an empty value is unset
            out,
            conflict=lambda key, value, name: (
                f"{env_file} already has {key}={mask_url(value)}, not {name}"
            ),
            force=opts.force,
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

    provision_and_wait(plans, out, timeout=opts.timeout, sleep=sleep, clock=clock)
    if opts.env_file is not None:
        report.env_changes = write_local_env(opts.env_file, plans, out)
    if opts.verify:
        report.checks = verify_stores(
            plans, out, timeout=opts.check_timeout, sleep=sleep, clock=clock
        )
    return report
