"""Wait step: poll each store until it is ready, with a deadline and live progress.

The poll interval grows with the time waited (1 s at first, then a sixth of the time
waited, at most 15 s), so a store that is
ready in seconds is seen in seconds, and a 10-minute wait does not flood the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from authkit_setup.errors import ResourceFailedError, WaitTimeoutError
from authkit_setup.output import Output
from authkit_setup.pipeline.plan import StorePlan
from authkit_setup.providers.base import Readiness, Store, StoreProvider

MIN_INTERVAL = 1.0
MAX_INTERVAL = 15.0
# A store that is not ready when first read takes seconds at least (Render Postgres: ~40 s),
# so the first poll waits a little longer; Terraform's poller also starts at 3 s.
FIRST_POLL = 3.0


def next_interval(elapsed: float) -> float:
    return max(MIN_INTERVAL, min(MAX_INTERVAL, elapsed / 6.0))


def wait_for_stores(
    plans: list[StorePlan],
    out: Output,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until the store of every plan is ready, keeping what was read last."""
    ready = wait_until_ready(
        [(p.provider, p.store) for p in plans if p.store is not None],
        out,
        timeout=timeout,
        sleep=sleep,
        clock=clock,
    )
    for plan, store in zip(plans, ready, strict=True):
        plan.store = store


def wait_until_ready(
    stores: list[tuple[StoreProvider, Store]],
    out: Output,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Store]:
    """Return the stores once every one is ready; fail fast on a failing status."""
    start = clock()
    deadline = start + timeout
    current = {i: store for i, (_, store) in enumerate(stores)}
    # Every status was just read (plan lookup or post-create listing): poll after a pause.
    due = dict.fromkeys(current, start + FIRST_POLL)
    pending = {i for i, s in current.items() if s.readiness is not Readiness.READY}
    if not pending:
        return [current[i] for i in sorted(current)]
    with out.live("Waiting for the stores to become available") as progress:
        for store in current.values():
            progress.update(store.name, f"{store.name}: {store.status} (0 s)")
        while pending:
            now = clock()
            for i in sorted(pending):
                if due[i] > now:
                    continue
                provider, _ = stores[i]
                store = provider.refresh(current[i])
                current[i] = store
                elapsed = clock() - start
                progress.update(store.name, f"{store.name}: {store.status} ({elapsed:.0f} s)")
                if store.readiness is Readiness.FAILED:
                    raise ResourceFailedError(
                        f"{store.name} ({store.id}) is {store.status}",
                        hint="look at the store in the provider's dashboard; resume or recreate it, then re-run",
                    )
                if store.readiness is Readiness.READY:
                    pending.discard(i)
                else:
                    due[i] = clock() + next_interval(elapsed)
            if not pending:
                break
            now = clock()
            if now >= deadline:
                states = ", ".join(
                    f"{current[i].name} is {current[i].status}" for i in sorted(pending)
                )
                raise WaitTimeoutError(
                    f"still not available after {timeout:.0f} s: {states}",
                    hint="run the same command again to keep waiting (nothing will be created twice), "
                    "or raise --timeout",
                )
            # Sleep in steps of at most a second so the elapsed time on screen keeps moving.
            sleep(max(0.0, min(min(due[i] for i in pending), deadline, now + 1.0) - now))
            elapsed = clock() - start
            for i in pending:
                store = current[i]
                progress.update(store.name, f"{store.name}: {store.status} ({elapsed:.0f} s)")
    return [current[i] for i in sorted(current)]
