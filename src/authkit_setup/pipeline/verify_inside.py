"""`--verify-inside`: prove the internal URLs from the service's own network with ONE Render job.

can it run? (instance type, build, runtime) → start the probe job, or join the one already
running → bounded wait → cancel at the deadline or on Ctrl-C → read the probe's JSON line back
from the logs → one check result per store, `"via": "inside"`.

Trust rules: a store passes only when the job finished `succeeded`, or (per store) when a
finished job's own report says that store passed; a job that fails without a readable report is
a failure; a job that cannot run, is canceled or is still running at the deadline is a skip
("not verified") with the reason and the next step. Facts and what is UNCONFIRMED about jobs:
shared/reference/render-api.md §6.2 (see providers/render_jobs.py).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from authkit_setup.diagnostics.inside import (
    PROBES,
    InsideCheckResult,
    find_probe_report,
    probe_command,
    result_from_probe,
)
from authkit_setup.diagnostics.model import CheckResult, Target
from authkit_setup.errors import (
    ApiConnectionError,
    ApiError,
    AuthkitError,
    CredentialsError,
    ServerError,
)
from authkit_setup.kinds import Kind
from authkit_setup.output import Output
from authkit_setup.pipeline.plan import StorePlan
from authkit_setup.pipeline.service import ServiceRef
from authkit_setup.pipeline.wait import poll
from authkit_setup.providers.render import RenderClient
from authkit_setup.providers.render_jobs import (
    Job,
    JobStatus,
    cancel_job,
    get_job,
    has_live_deploy,
    job_log_lines,
    recent_jobs,
    start_job,
)

TARGETS: tuple[Target, ...] = tuple(kind.check_name for kind in Kind)
STEP_TIMEOUT = 10.0  # seconds each probe step (dns, tcp, auth, ...) may take inside the job
LOG_GRACE = 10.0  # seconds to keep asking the logs API for the report after the job ended
FIRST_POLL, MAX_POLL = 0.5, 5.0
NOT_FROM_INSIDE = "not verified from inside"
OUTSIDE_NEXT = (
    "or check from outside: drop --verify-inside (Key Value then needs --redis-allow-cidr "
    "<this machine's IP>/32)"
)


def verify_from_inside(
    client: RenderClient,
    service: ServiceRef,
    urls: Mapping[Target, str],
    out: Output,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[CheckResult]:
    """Check `urls` (the service's DATABASE_URL / REDIS_URL) from inside `service`."""
    targets = [t for t in TARGETS if urls.get(t)]
    if not targets:
        return []
    command, why_not = _probe_plan(client, service, targets)
    if command is None:
        return _skipped(urls, targets, why_not)
    started = clock()
    job, ours, why_not = _start_or_join(client, service, command, out)
    if job is None:
        return _skipped(urls, targets, why_not)
    job, timed_out, last_seen = _wait(
        client, service, job, ours, out, deadline=started + timeout, sleep=sleep, clock=clock
    )
    elapsed = clock() - started
    job_doc = {"id": job.id, "status": job.status, "seconds": round(elapsed, 1)}
    if timed_out:
        if ours:
            reason = (
                f"{NOT_FROM_INSIDE}: probe job {job.id} did not finish within {timeout:g} s "
                f"(still {last_seen or 'pending'}), so it was canceled. Next: re-run with a "
                f"longer --timeout, {OUTSIDE_NEXT}"
            )
        else:
            reason = (
                f"{NOT_FROM_INSIDE}: probe job {job.id}, started by another run, was still "
                f"{last_seen or 'pending'} after {timeout:g} s and was left running. Next: "
                f"re-run once it has finished, {OUTSIDE_NEXT}"
            )
        return _skipped(urls, targets, reason, job=job_doc)
    if job.status == JobStatus.CANCELED:
        reason = (
            f"{NOT_FROM_INSIDE}: probe job {job.id} was canceled before it finished. "
            f"Next: re-run with --verify-inside, {OUTSIDE_NEXT}"
        )
        return _skipped(urls, targets, reason, job=job_doc)
    out.step(f"probe job {job.id} {job.status} after {elapsed:.1f} s; reading its report")
    report = _read_report(
        client, service, job, out, until=clock() + LOG_GRACE, sleep=sleep, clock=clock
    )
    return _results(service, urls, targets, job, report, job_doc)


def verify_plans_from_inside(
    client: RenderClient,
    service: ServiceRef,
    plans: Sequence[StorePlan],
    out: Output,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[CheckResult]:
    """`render --verify-inside`: check the URLs the run just wrote into the service."""
    urls: dict[Target, str] = {}
    for plan in plans:
        if plan.info is not None:
            urls[plan.spec.kind.check_name] = plan.info.app_url
    return verify_from_inside(client, service, urls, out, timeout=timeout, sleep=sleep, clock=clock)


# -- can it run? ------------------------------------------------------------------------------


def service_runtime(service: ServiceRef) -> str:
    details = service.raw.get("serviceDetails") or {}
    return str(details.get("runtime") or details.get("env") or "unknown")


def _probe_plan(
    client: RenderClient, service: ServiceRef, targets: list[Target]
) -> tuple[str | None, str]:
    """The probe's start command, or None and why no job can run (with the next step)."""
    if service.is_free:
        return None, (
            f"{NOT_FROM_INSIDE}: {service.name} runs on the free instance type, and one-off "
            "jobs need a paid one (Render is assumed not to run jobs for free services). Next: "
            f"move the service to a paid instance type, {OUTSIDE_NEXT}"
        )
    runtime = service_runtime(service)
    command = probe_command(runtime, targets, step_timeout=STEP_TIMEOUT)
    if command is None:
        return None, (
            f"{NOT_FROM_INSIDE}: {service.name} uses the {runtime} runtime, which has no probe "
            f"(probes exist for {' and '.join(PROBES)}). Next: run `authkit-setup check` in a "
            f"shell of the service (render ssh), {OUTSIDE_NEXT}"
        )
    try:
        built = has_live_deploy(client, service.id)
    except (ApiError, CredentialsError) as err:
        return None, _refused(err)
    if not built:
        return None, (
            f"{NOT_FROM_INSIDE}: {service.name} has no successful build yet, and a job runs "
            f"from the latest one. Next: wait until its deploy is live (authkit-setup render "
            f"--service {service.name} --wait-deploy), then re-run with --verify-inside"
        )
    return command, ""


# -- start ONE job, or join the probe already running -----------------------------------------


def _running_probe(client: RenderClient, service: ServiceRef, command: str) -> Job | None:
    """The oldest unfinished job running exactly `command` (the same probe of the same stores:
    a probe of other stores cannot stand in for this one). The list is newest first; its first
    page is enough: a probe ends by itself within a minute or so."""
    running = [
        job
        for job in itertools.islice(recent_jobs(client, service.id), 20)
        if not job.finished and job.start_command == command
    ]
    return running[-1] if running else None


def _start_or_join(
    client: RenderClient, service: ServiceRef, command: str, out: Output
) -> tuple[Job | None, bool, str]:
    """(job, started by this run, why not). Never two probe jobs on one service at once."""
    try:
        running = _running_probe(client, service, command)
    except (ApiError, CredentialsError) as err:
        return None, False, _refused(err)
    if running is not None:
        out.step(
            f"probe job {running.id} is already running on {service.name}: waiting for it "
            "instead of starting another"
        )
        return running, False, ""
    out.step(
        f"starting one probe job on {service.name} (a one-off job: billed per second at the "
        "service's instance type)"
    )
    try:
        job = start_job(client, service.id, command)
    except (ServerError, ApiConnectionError) as err:
        # The answer was lost, not necessarily the job: look before saying it did not start.
        try:
            found = _running_probe(client, service, command)
        except (ApiError, CredentialsError):
            found = None
        if found is not None:
            return found, True, ""
        return None, False, _refused(err)
    except (ApiError, CredentialsError) as err:
        return None, False, _refused(err)
    out.step(f"probe job {job.id} started")
    # Two runs at once may both have found nothing running: the older job wins, the newer
    # one is canceled, so both runs end up waiting for the same probe.
    try:
        oldest = _running_probe(client, service, command)
    except (ApiError, CredentialsError):
        oldest = None
    if oldest is not None and oldest.id != job.id:
        _cancel(client, service, job, out, why=f"{oldest.id} was started just before it")
        return oldest, False, ""
    return job, True, ""


def _refused(err: AuthkitError) -> str:
    # Also where an over-long start command would land: the probe is ~12 kB, and Render's
    # limit on startCommand is not documented (UNCONFIRMED).
    return (
        f"{NOT_FROM_INSIDE}: Render did not run the probe job ({err.message}). Next: fix what "
        f"the message says and re-run with --verify-inside, {OUTSIDE_NEXT}"
    )


# -- bounded wait; cancel at the deadline or on Ctrl-C ----------------------------------------


def _wait(
    client: RenderClient,
    service: ServiceRef,
    job: Job,
    ours: bool,
    out: Output,
    *,
    deadline: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[Job, bool, str | None]:
    """Poll until the job finished → (job, False, ...), or the deadline passed → (job, True,
    ...), having canceled it if it is ours; the job's status is then `canceled` once Render took
    the cancel. The third item is the status last read before any cancel."""
    delays = _backoff()
    last = job

    def read() -> Job:
        nonlocal last
        fresh = get_job(client, service.id, last.id)
        if fresh.status != last.status:
            out.info(f"probe job {fresh.id}: {fresh.status or 'pending'}")
        last = fresh
        return fresh

    try:
        job, timed_out = poll(
            job,
            read,
            lambda seen: seen.finished,
            deadline=deadline,
            pause=lambda left: min(next(delays), left),
            sleep=sleep,
            clock=clock,
        )
        seen = job.status
        if timed_out and ours and _cancel(client, service, job, out, why="the deadline passed"):
            job = replace(job, status=JobStatus.CANCELED.value)
    except BaseException:  # Ctrl-C or a failing status read: leave no job of ours running
        if ours and not last.finished:
            _cancel(client, service, last, out, why="the run stopped")
        raise
    return job, timed_out, seen


def _backoff() -> Iterator[float]:
    """Seconds between reads of a job's status: FIRST_POLL, then half as long again each
    time, at most MAX_POLL."""
    delay = FIRST_POLL
    while True:
        yield delay
        delay = min(delay * 1.5, MAX_POLL)


def _cancel(client: RenderClient, service: ServiceRef, job: Job, out: Output, *, why: str) -> bool:
    try:
        cancel_job(client, service.id, job.id)
    except AuthkitError as err:
        out.warn(
            f"probe job {job.id} could not be canceled ({err.message}); it ends by itself, "
            "or cancel it in the Render dashboard"
        )
        return False
    out.warn(f"probe job {job.id} canceled: {why}")
    return True


# -- the report ---------------------------------------------------------------------------------


def _read_report(
    client: RenderClient,
    service: ServiceRef,
    job: Job,
    out: Output,
    *,
    until: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> dict[str, Any] | None:
    """The probe's JSON line from the job's logs; logs may arrive a little after the job ends."""
    owner = str(service.raw.get("ownerId") or service.owner_id)

    def read() -> dict[str, Any] | None:
        return find_probe_report(job_log_lines(client, owner, job.id))

    try:
        report, _ = poll(
            read(),
            read,
            lambda found: found is not None,
            deadline=until,
            pause=lambda _left: 1.0,
            sleep=sleep,
            clock=clock,
        )
    except (ApiError, CredentialsError) as err:
        out.warn(f"the logs of probe job {job.id} could not be read ({err.message})")
        return None
    return report


HINTS: dict[str, str] = {
    "url": "set {var} on {service} to the store's internal URL (authkit-setup render --service {service})",
    "dns": (
        "internal hosts resolve only for stores in the service's region ({region}) and workspace: "
        "use a store there (authkit-setup render --service {service} --force)"
    ),
    "tcp": "the store does not accept connections: check it is available (authkit-setup status --service {service})",
    "tls": "use the internal URL exactly as Render gives it (authkit-setup render --service {service} --force)",
    "auth": "{var} has credentials the store refuses: rewrite it (authkit-setup render --service {service} --force)",
    "database": "{var} names a database the store does not have: rewrite it (authkit-setup render --service {service} --force)",
    "query": "the store answers but refuses the check query: see the message",
}


def _results(
    service: ServiceRef,
    urls: Mapping[Target, str],
    targets: list[Target],
    job: Job,
    report: dict[str, Any] | None,
    job_doc: dict[str, Any],
) -> list[CheckResult]:
    entries: dict[str, dict[str, Any]] = {}
    for entry in (report or {}).get("checks") or []:
        if isinstance(entry, dict) and isinstance(entry.get("target"), str):
            entries[entry["target"]] = entry
    succeeded = job.status == JobStatus.SUCCEEDED
    # A failed job whose report claims every store passed contradicts itself: trust neither.
    contradicts = (
        not succeeded and bool(entries) and all(e.get("ok") is True for e in entries.values())
    )
    results: list[CheckResult] = []
    for target in targets:
        entry = entries.get(target)
        if entry is not None and not contradicts:
            hint = HINTS.get(str(entry.get("failed_rung")), HINTS["query"])
            results.append(
                result_from_probe(
                    target,
                    urls[target],
                    entry,
                    hint=hint.format(
                        var=Kind.checked_as(target).env_var,
                        service=service.name,
                        region=service.region,
                    ),
                    job=job_doc,
                )
            )
            continue
        result = InsideCheckResult(target, urls[target], job=job_doc)
        if succeeded and report is None:
            # The probe exits 0 only when every store it was given passed: the status is proof.
            result.warn(
                f"probe job {job.id} succeeded, so every step passed, but its report could not "
                "be read from the logs: no per-step details"
            )
        else:
            result.unexplained = True
            result.error_code = "probe_job_failed"
            result.error_message = f"probe job {job.id} {job.status}" + (
                ", and its report contradicts that"
                if contradicts
                else f", and its report has no result for {target}"
                if report is not None
                else " without a report in its logs"
            )
            result.hint = (
                "read the job's logs in the Render dashboard; the probe needs the service's "
                "runtime (node or python3) on its PATH"
            )
        results.append(result)
    return results


def _skipped(
    urls: Mapping[Target, str],
    targets: list[Target],
    reason: str,
    *,
    job: dict[str, Any] | None = None,
) -> list[CheckResult]:
    """Each target not verified from inside, for `reason`: said in the results (under each
    store, or its "reason" in JSON), not also as a warning."""
    results: list[CheckResult] = []
    for target in targets:
        result = InsideCheckResult(target, urls[target], job=job)
        result.skipped = True
        result.reason = reason
        results.append(result)
    return results
