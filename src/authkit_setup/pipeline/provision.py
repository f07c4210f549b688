"""Provision step: get-or-create each store, both at once, never making a duplicate.

A create that fails ambiguously (timeout, dropped connection, 5xx, unreadable answer) may have
been applied, so we look the name up before trying again; a create refused outright is looked up
too, in case a concurrent run's create made it. After a create we list the name once
more: if a concurrent run created the same store, the older one wins and the newer is deleted
before anything uses it, so two runs at once end with exactly one store of each kind.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from authkit_setup.errors import ApiConnectionError, ApiError, BadResponseError, ServerError
from authkit_setup.output import Output
from authkit_setup.pipeline.plan import StorePlan
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
        except ApiError as exc:
            # Refused outright, e.g. Render's one free Postgres per workspace when a concurrent
            # run's create landed first: if the name exists now, that store is the one to use.
            found = provider.find(spec.kind, spec.name)
            if not found:
                raise
            store = _oldest(found)
            store.created = False
            out.warn(f"creating {spec.name} was refused ({exc.message}); using {store.id}")
            break
    else:
        assert last is not None
        raise last
    return settle(provider, spec, store, out)


def settle(provider: StoreProvider, spec: StoreSpec, mine: Store, out: Output) -> Store:
    """If another run created the same name at the same time, keep the oldest store only."""
    found = provider.find(spec.kind, spec.name)
    if len(found) <= 1:
        # The listing doubles as the first status poll.
        return mine.refreshed(next((s for s in found if s.id == mine.id), mine))
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


def provision_missing(
    plans: list[StorePlan], out: Output, *, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Create the stores the plan found missing (at once); every plan then has its store."""
    missing = [(p.provider, p.spec) for p in plans if p.existing is None]
    created = iter(provision(missing, out, sleep=sleep))
    for plan in plans:
        plan.store = plan.existing if plan.existing is not None else next(created)


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
    outcomes = _in_daemon_threads(
        [functools.partial(create_once, p, s, out, sleep=sleep) for p, s in missing]
    )
    stores = [o for o in outcomes if isinstance(o, Store)]
    failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failure is not None:
        # A store made beside one that was refused is not lost: say so, then the refusal.
        for store in stores:
            out.warn(f"{store.name} ({store.id}) was created; the next run reuses it")
        raise failure
    return stores


def _in_daemon_threads(calls: list[Callable[[], Store]]) -> list[Store | BaseException]:
    """Run the calls at once; return each one's store or error, in order.

    Daemon threads rather than a ThreadPoolExecutor: the executor's workers are joined when the
    interpreter exits, so a Ctrl-C during a create would hold the process until the HTTP call
    timed out. Here the main thread stops waiting at once; a create the provider did receive
    is found by name on the next run.
    """
    results: list[Store | None] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)

    def work(index: int, call: Callable[[], Store]) -> None:
        try:
            results[index] = call()
        except BaseException as exc:  # handed to the main thread below
            errors[index] = exc

    threads = [
        threading.Thread(target=work, args=(i, call), name=f"create-{i}", daemon=True)
        for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # interruptible: Ctrl-C raises KeyboardInterrupt here
    outcomes: list[Store | BaseException] = []
    for store, error in zip(results, errors, strict=True):
        if error is not None:
            outcomes.append(error)
        elif store is not None:
            outcomes.append(store)
    return outcomes
