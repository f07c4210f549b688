"""The store steps `render` (flow/setup.py) and `provision` (flow/provision_env.py) share.

plan (find by exact name, stop before any change on a conflict) → provision what is missing →
wait until every store is ready → read the URLs; then, if asked, a local .env file and checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authkit_setup.ci import mask_connection_info
from authkit_setup.diagnostics.model import CheckResult
from authkit_setup.errors import PlanConflictError
from authkit_setup.flow.provision import name_flag, provision
from authkit_setup.flow.wait import wait_until_ready
from authkit_setup.output import Output
from authkit_setup.providers.base import (
    ConnectionInfo,
    Kind,
    RecoversPasswords,
    Store,
    StoreProvider,
    StoreSpec,
)
from authkit_setup.settings import DATABASE_URL, DIRECT_URL, REDIS_URL

ENV_KEYS = {Kind.POSTGRES: DATABASE_URL, Kind.REDIS: REDIS_URL}


@dataclass
class StorePlan:
    spec: StoreSpec
    provider: StoreProvider
    existing: Store | None
    info: ConnectionInfo | None = None
    store: Store | None = None

    def read_info(self, store: Store, out: Output) -> None:
        """The store's URLs, masked in GitHub Actions as soon as they are read."""
        self.info = self.provider.connection_info(store)
        mask_connection_info(out, self.info)

    def to_json(self, *, planned: bool) -> dict[str, Any]:
        """The store's entry in `resources`; a dry run (`planned`) adds what it would do."""
        store = self.store or self.existing
        if store is not None:
            doc = store.to_json()
        else:
            doc = {
                "kind": self.spec.kind.value,
                "provider": self.provider.name,
                "name": self.spec.name,
                "id": None,
                "region": self.spec.region,
                "plan": self.spec.plan,
                "status": "planned",
                "created": True,
            }
        if planned:
            doc["action"] = "reuse" if self.existing else "create"
        return doc


# -- plan: every lookup, and every conflict found before anything changes ----------------------


def recover_passwords(
    providers: Iterable[StoreProvider], read: Callable[[str], str | None]
) -> None:
    """A provider that cannot read a password back (Supabase) gets the DATABASE_URL and
    DIRECT_URL written last time; they are `read` only when such a provider is in use."""
    recovering = [p for p in providers if isinstance(p, RecoversPasswords)]
    if recovering:
        written = [read(key) for key in (DATABASE_URL, DIRECT_URL)]
        for provider in recovering:
            provider.recover_password(v for v in written if v)


def refuse_other_region(
    provider: StoreProvider, spec: StoreSpec, existing: Store | None, *, near: str = ""
) -> None:
    """Stop when the store named `spec.name` exists, but not in the region planned for it."""
    if existing is not None and existing.region != spec.region:
        raise PlanConflictError(
            f"{provider.name} {spec.name} ({existing.id}) is in {existing.region}, not in "
            f"{spec.region}{near}",
            hint=f"pass --provider-region {existing.region} to use it anyway, or another "
            f"{name_flag(spec.kind)} to create one in {spec.region}",
        )


def refuse_overwrites(
    plans: list[StorePlan],
    current: Mapping[str, str | None],
    out: Output,
    *,
    conflict: Callable[[str, str, str], str],
    force: bool,
    confirm: Callable[[str], bool] | None = None,
) -> None:
    """Stop when a variable in `current` already points elsewhere than its plan's store
    (`conflict(key, value, store name)` says so), unless --force or `confirm` says replace it."""
    for plan in plans:
        key = ENV_KEYS[plan.spec.kind]
        value = current.get(key)
        if value is None or (plan.info is not None and value == plan.info.app_url):
            continue
        message = conflict(key, value, plan.spec.name)
        if force:
            out.warn(message + "; --force: it will be replaced")
        elif confirm is None or not confirm(message + ". Replace it?"):
            raise PlanConflictError(
                message, hint="re-run with --force to replace it (nothing has been changed)"
            )


# -- provision → wait → URLs ----------------------------------------------------------------------


def provision_and_wait(
    plans: list[StorePlan],
    out: Output,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Create the missing stores (at once), wait until every store is ready, and read the URLs
    that planning could not read yet."""
    missing = [(p.provider, p.spec) for p in plans if p.existing is None]
    created = iter(provision(missing, out, sleep=sleep))
    for plan in plans:
        plan.store = plan.existing if plan.existing is not None else next(created)

    ready = wait_until_ready(
        [(p.provider, p.store) for p in plans if p.store is not None],
        out,
        timeout=timeout,
        sleep=sleep,
        clock=clock,
    )
    for plan, store in zip(plans, ready, strict=True):
        plan.store = store
        if plan.info is None:
            plan.read_info(store, out)


# -- local .env file and verification -------------------------------------------------------------


def local_env(plans: list[StorePlan]) -> dict[str, str]:
    """What a local .env file gets: each store's external URL (and extras such as DIRECT_URL)."""
    values: dict[str, str] = {}
    for plan in plans:
        if plan.info is not None and plan.info.external_url:
            values[ENV_KEYS[plan.spec.kind]] = plan.info.external_url
            values.update(plan.info.extra_env)
    return values


def write_local_env(path: Path, plans: list[StorePlan], out: Output) -> dict[str, str]:
    """External URLs into a local .env for development (atomic, mode 600, rest kept)."""
    from authkit_setup.envfile import update_env_file

    values = local_env(plans)
    for plan in plans:
        if plan.info and plan.info.external_url and not plan.info.external_reachable:
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
                "add --verify-inside to `authkit-setup render` or `check --service NAME` (one "
                f"Render job checks it from inside the service), or re-run with {flag} <this "
                "machine's IP>/32"
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
