"""What the PostgreSQL and Redis ladders share: the climb that stops at the first failing rung,
the rungs up to TLS (url → dns → tcp → tls), the timed round trips and the slow-link warning."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable

from authkit_setup.diagnostics.model import CheckResult, RungFailed, Target
from authkit_setup.diagnostics.network import connect, resolve
from authkit_setup.diagnostics.url import ConnectionUrl, lint, parse_url, weak_password_warning

SLOW_MS = 30.0


def climb(
    target: Target,
    raw_url: str,
    timeout: float,
    ladder: Callable[[CheckResult, str, float], None],
) -> CheckResult:
    """Run `ladder` on a new result; a failed rung has recorded itself there and ends it."""
    result = CheckResult(target, raw_url)
    try:
        ladder(result, raw_url, timeout)
    except RungFailed:
        pass
    return result


def url_rung(
    result: CheckResult, raw_url: str, describe: Callable[[ConnectionUrl], str]
) -> ConnectionUrl:
    """Rung 1: parse and lint the URL; `describe` gives the detail line."""
    with result.rung("url") as detail:
        url = parse_url(raw_url, result.target)
        for warning in [*weak_password_warning(url), *lint(url)]:
            result.warn(warning)
        detail[0] = describe(url)
    return url


def reach(
    result: CheckResult,
    url: ConnectionUrl,
    timeout: float,
    tls_rung: Callable[[socket.socket], str],
) -> str:
    """Rungs 2 to 4: resolve, connect, then `tls_rung` on the socket (closed after it); the
    address connected to, for the driver to log in at."""
    with result.rung("dns") as detail:
        resolved, detail[0] = resolve(url, timeout)
    with result.rung("tcp") as detail:
        sock, address, detail[0] = connect(url, resolved, timeout)
    try:
        with result.rung("tls") as detail:
            detail[0] = tls_rung(sock)
    finally:
        sock.close()
    return address


def median_round_trip(call: Callable[[], object], *, times: int = 3) -> float:
    """The median of `times` calls, in milliseconds."""
    timings = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def warn_if_slow(result: CheckResult, what: str) -> None:
    """A round trip over SLOW_MS means `what` is far from this machine."""
    if result.latency_ms is not None and result.latency_ms > SLOW_MS:
        result.warn(
            f"round trip {result.latency_ms:.0f} ms (> {SLOW_MS:.0f} ms): {what} is probably "
            "in another region than this machine; keep it in the app's region"
        )
