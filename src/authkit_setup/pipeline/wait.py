"""Wait step: poll each store until it is ready, with a deadline and live progress.

A status only moves forward, and the run goes on only when every store is ready, so only the
store expected to be ready last needs a close watch. That store is polled on the close schedule,
which follows its provider's typical ready time: a store is rarely ready before a quarter of
that time (Render Postgres: about a minute, so 15 s), so until then the interval doubles (3 s,
6 s, 12 s, then 15 s); from there it is a twentieth of the time waited (at least 1 s, at most
15 s), so the store is seen within about 5 % of when it became ready without flooding the API
in a 10-minute wait. The others (by their typical ready time, e.g. Render Key Value before
Render Postgres) are polled sparingly, every "time waited so far" (3 s, 6 s, 12 s, ...); when
the closely watched store is ready, the next in line gets the close schedule at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from authkit_setup.errors import ResourceFailedError, WaitTimeoutError
from authkit_setup.output import Output
from authkit_setup.pipeline.plan import StorePlan
from authkit_setup.providers.base import Readiness, Store, StoreProvider

MIN_INTERVAL = 1.0
MAX_INTERVAL = 15.0
CLOSE_FRACTION = 1 / 20  # of the time waited: how late a ready store may be seen, at most
QUIET_FRACTION = 1 / 4  # of the typical ready time: before it, a store is rarely ready
MAX_SPARSE_INTERVAL = 30.0
DEFAULT_TYPICAL_READY = 30.0
# A store that is not ready when first read takes seconds at least (Render Postgres: ~40 s),
# so the first poll waits a little longer; Terraform's poller also starts at 3 s.
FIRST_POLL = 3.0

T = TypeVar("T")


def next_interval(
    elapsed: float, *, watched: bool = True, typical: float = DEFAULT_TYPICAL_READY
) -> float:
    """Seconds until the next poll of a store: close for the watched one (after a quiet start
    that follows its `typical` ready time), sparse for the others."""
    if not watched:
        return max(MIN_INTERVAL, min(MAX_SPARSE_INTERVAL, elapsed))
    quiet = typical * QUIET_FRACTION
    if elapsed < quiet:
        return max(MIN_INTERVAL, min(elapsed, quiet - elapsed))
    return max(MIN_INTERVAL, min(MAX_INTERVAL, elapsed * CLOSE_FRACTION))


def poll(
    value: T,
    read: Callable[[], T],
    done: Callable[[T], bool],
    *,
    deadline: float,
    pause: Callable[[float], float],
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[T, bool]:
    """From `value`, `read()` again until `done` → (value, False), or until `deadline` (on
    `clock`) has passed → (the last value, True). `pause(seconds left)` is the sleep between
    reads. One bounded loop for one thing polled (a deploy, a job, a job's logs)."""
    while not done(value):
        left = deadline - clock()
        if left <= 0:
            return value, True
        sleep(pause(left))
        value = read()
    return value, False


def _typical_ready(provider: StoreProvider, store: Store) -> float:
    return float(provider.typical_ready.get(store.kind, DEFAULT_TYPICAL_READY))


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
    typical = {i: _typical_ready(provider, store) for i, (provider, store) in enumerate(stores)}
    last_read = dict.fromkeys(current, start)

    def watched() -> set[int]:
        """The pending stores expected to be ready last (ties: all of them)."""
        latest = max(typical[i] for i in pending)
        return {i for i in pending if typical[i] == latest}

    close = watched()
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
                last_read[i] = clock()
                elapsed = last_read[i] - start
                progress.update(store.name, f"{store.name}: {store.status} ({elapsed:.0f} s)")
                if store.readiness is Readiness.FAILED:
                    raise ResourceFailedError(
                        f"{store.name} ({store.id}) is {store.status}",
                        hint="look at the store in the provider's dashboard; resume or recreate it, then re-run",
                    )
                if store.readiness is Readiness.READY:
                    pending.discard(i)
                else:
                    due[i] = last_read[i] + next_interval(
                        elapsed, watched=i in close, typical=typical[i]
                    )
            if not pending:
                break
            if not close & pending:  # the watched store is ready: watch the next one closely
                close = watched()
                for i in close:
                    since = last_read[i] - start
                    due[i] = min(due[i], last_read[i] + next_interval(since, typical=typical[i]))
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
