"""`authkit-setup check`: a ladder per URL that stops at the first failing rung.

Drivers (psycopg, redis) are imported inside the rungs so `--help` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from authkit_setup.diagnostics.model import CheckResult, Target


def run_checks(urls: Mapping[Target, str], *, timeout: float = 5.0) -> list[CheckResult]:
    """Check every URL concurrently; results in postgres, redis order."""
    from authkit_setup.diagnostics.postgres import check_postgres
    from authkit_setup.diagnostics.redis import check_redis

    checkers = {"postgres": check_postgres, "redis": check_redis}
    targets: tuple[Target, ...] = ("postgres", "redis")
    order = [t for t in targets if t in urls]
    with ThreadPoolExecutor(max_workers=max(1, len(order))) as pool:
        futures = {t: pool.submit(checkers[t], urls[t], timeout=timeout) for t in order}
        return [futures[t].result() for t in order]
