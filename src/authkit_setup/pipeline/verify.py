"""Verify step: check each store from here through its external URL (the `check` ladder), and
say plainly what cannot be checked from here."""

from __future__ import annotations

import time
from collections.abc import Callable

from authkit_setup.diagnostics.model import CheckResult
from authkit_setup.kinds import Kind
from authkit_setup.output import Output
from authkit_setup.pipeline.plan import StorePlan


def prepare(plans: list[StorePlan]) -> None:
    """Before a wait: import the check's drivers now, while the stores become ready."""
    from authkit_setup.diagnostics.drivers import preload
    from authkit_setup.providers.base import Readiness

    if any(p.store is not None and p.store.readiness is not Readiness.READY for p in plans):
        preload(p.spec.kind.check_name for p in plans)


def verify_stores(
    plans: list[StorePlan],
    out: Output,
    *,
    timeout: float,
    service: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[CheckResult]:
    """Check each store from here through its external URL; say plainly what cannot be checked
    and how to check it elsewhere (`check --service <the service>`). That is said once, in the
    result (the summary under the store, or its "reason" in JSON), not also as a warning."""
    from authkit_setup.diagnostics import run_checks
    from authkit_setup.diagnostics.model import Target

    urls: dict[Target, str] = {}
    skipped: list[CheckResult] = []
    for plan in plans:
        info = plan.info
        target = plan.spec.kind.check_name
        if info is None:
            continue
        if not info.external_url or not info.external_reachable:
            result = CheckResult(target, info.external_url or info.app_url)
            result.skipped = True
            result.reason = _not_verifiable(plan, service)
            skipped.append(result)
        else:
            urls[target] = info.external_url
    out.step("verifying " + (", ".join(urls) if urls else "nothing reachable from here"))
    results = run_checks(urls, timeout=timeout) if urls else []
    # A store just created may refuse its first connections for a while (Upstash): re-check
    # connection-level failures until its `verify_grace` has passed.
    grace = {p.spec.kind.check_name: p.info.verify_grace for p in plans if p.info is not None}
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
    return [merged[k.check_name] for k in Kind if k.check_name in merged]


def _not_verifiable(plan: StorePlan, service: str | None) -> str:
    """Why `plan`'s store cannot be checked from here, and the two ways to check it."""
    import shlex

    assert plan.info is not None
    flag = plan.spec.kind.facts.allow_cidr_flag
    why = f"not verifiable from here: {plan.info.unreachable_reason or 'no external URL'}"
    if service is None:
        return (
            f"{why}. To verify, re-run with {flag} <this machine's IP>/32, or run "
            "`authkit-setup check` where the store admits connections"
        )
    return (
        f"{why}. To verify, add --verify-inside (one Render job checks it from inside the "
        f"service), re-run with {flag} <this machine's IP>/32, or run `authkit-setup check "
        f"--service {shlex.quote(service)}` from a Render shell in the same region"
    )
