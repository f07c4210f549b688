"""`authkit-setup check`: a ladder per URL that stops at the first failing rung.

Drivers (psycopg, redis) are imported inside the rungs so `--help` stays fast.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from authkit_setup.diagnostics.model import CheckResult, Target


def run_checks(urls: Mapping[Target, str], *, timeout: float = 5.0) -> list[CheckResult]:
    """Check every URL concurrently; results in postgres, redis order."""
    from authkit_setup.diagnostics.postgres import check_postgres
    from authkit_setup.diagnostics.redis import check_redis

    checkers = {"postgres": check_postgres, "redis": check_redis}
    targets: tuple[Target, ...] = ("postgres", "redis")
    order = [t for t in targets if t in urls]
    # Daemon threads, not a pool: Ctrl-C must end the process at once, not after the rungs time out.
    results: dict[Target, CheckResult] = {}
    failures: list[BaseException] = []

    def work(target: Target) -> None:
        try:
            results[target] = checkers[target](urls[target], timeout=timeout)
        except BaseException as exc:  # re-raised in the calling thread below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in order]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.1)
    if failures:
        raise failures[0]
    return [results[t] for t in order]
