"""Provision step: get-or-create each store, both at once, never making a duplicate.

A create that fails ambiguously (timeout, dropped connection, 5xx, unreadable answer) may have
been applied, so we look the name up before trying again. After a create we list the name once
more: if a concurrent run created the same store, the older one wins and the newer is deleted
before anything uses it, so two runs at once end with exactly one store of each kind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from authkit_setup.errors import (
    ApiConnectionError,
    BadResponseError,
    PlanConflictError,
    ServerError,
)
from authkit_setup.output import Output
from authkit_setup.providers.base import Store, StoreProvider, StoreSpec

AMBIGUOUS = (ApiConnectionError, ServerError, BadResponseError)
CREATE_ATTEMPTS = 3


def create_once(
    provider: StoreProvider,
    spec: StoreSpec,
    out: Output,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Store:
    """Create `spec` exactly once, even across failures and concurrent runs."""
    last: Exception | None = None
    for attempt in range(CREATE_ATTEMPTS):
        try:
            store = provider.create(spec)
            break
        except AMBIGUOUS as exc:
            last = exc
            out.warn(
                f"creating {spec.name} failed ({exc.message}); checking whether it was created anyway"
            )
            found = provider.find(spec.kind, spec.name)
            if found:
                store = _oldest(found)
                store.created = True
                out.info(f"{spec.name} exists ({store.id}): the create went through")
                break
            sleep(min(10.0, 2.0 * (attempt + 1)))
    else:
        assert last is not None
        raise last
    return settle(provider, spec, store, out)


def settle(provider: StoreProvider, spec: StoreSpec, mine: Store, out: Output) -> Store:
    """If another run created the same name at the same time, keep the oldest store only."""
    found = provider.find(spec.kind, spec.name)
    if len(found) <= 1:
        # The listing doubles as the first status poll.
        fresh = next((s for s in found if s.id == mine.id), mine)
        fresh.created = mine.created
        return fresh
    winner = _oldest(found)
    if winner.id != mine.id:
        out.warn(
            f"another run created {spec.name} at the same time; using {winner.id} and deleting {mine.id}"
        )
        provider.delete(mine)
        winner.created = False
        return winner
    return mine


def _oldest(stores: list[Store]) -> Store:
    return min(stores, key=lambda s: (s.created_at or "", s.id))


def provision(
    missing: list[tuple[StoreProvider, StoreSpec]],
    out: Output,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Store]:
    """Create every missing store concurrently; results in the order given."""
    if not missing:
        return []
    for _, spec in missing:
        out.step(f"creating {spec.kind.value} {spec.name} ({spec.plan}, {spec.region})")
    with ThreadPoolExecutor(max_workers=len(missing)) as pool:
        futures = [pool.submit(create_once, p, s, out, sleep=sleep) for p, s in missing]
        stores = [f.result() for f in futures]
    return stores


def ensure_single(found: list[Store], spec: StoreSpec) -> Store | None:
    if len(found) > 1:
        ids = ", ".join(f"{s.id} ({s.region}, {s.status})" for s in found)
        raise PlanConflictError(
            f"{len(found)} {spec.kind.value} stores are named {spec.name!r}: {ids}",
            hint="delete or rename the extra ones in the dashboard, or choose another name "
            f"with --{'db' if spec.kind.value == 'postgres' else 'redis'}-name",
        )
    return found[0] if found else None
