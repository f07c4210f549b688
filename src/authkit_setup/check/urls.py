"""Verify step: run the `check` ladder on URLs, and render the results for people or JSON."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authkit_setup.check import checking
from authkit_setup.diagnostics import run_checks
from authkit_setup.diagnostics.model import CheckResult, Target
from authkit_setup.errors import UsageError
from authkit_setup.kinds import Kind
from authkit_setup.output import Output
from authkit_setup.settings import DATABASE_URL, REDIS_URL, read_env_file, resolve

RUNG_TIMEOUT = 5.0  # seconds each rung may take, unless --timeout says otherwise
INSIDE_TIMEOUT = 300.0  # seconds to wait for the --verify-inside job, unless --timeout says


@dataclass(frozen=True)
class CheckRequest:
    """`authkit-setup check`'s options, as given."""

    database_url: str | None = None
    redis_url: str | None = None
    env_file: Path = Path(".env")
    service: str | None = None
    workspace: str | None = None
    api_key: str | None = None
    timeout: float | None = None  # a rung's, or with --verify-inside the job's; None: default
    verify_inside: bool = False


def diagnose(request: CheckRequest, out: Output) -> list[CheckResult]:
    """`check`: the request's URLs found and checked, from here or from inside the service."""
    r = request
    return check_urls(
        out,
        database_url=r.database_url,
        redis_url=r.redis_url,
        env_file=r.env_file,
        service=r.service,
        workspace=r.workspace,
        api_key=r.api_key,
        timeout=RUNG_TIMEOUT if r.timeout is None else r.timeout,
        verify_inside=r.verify_inside,
        inside_timeout=INSIDE_TIMEOUT if r.timeout is None else r.timeout,
    )


def run_check(out: Output, request: CheckRequest) -> int:
    """`authkit-setup check`: find the URLs, check them, print the results; the exit code (0
    when every URL given passes or could not be checked from here, 1 when one fails)."""
    results = diagnose(request, out)
    render_checks(out, results)
    return 0 if all(r.ok or r.skipped for r in results) else 1


def check_urls(
    out: Output,
    *,
    database_url: str | None,
    redis_url: str | None,
    env_file: Path,
    service: str | None = None,
    workspace: str | None = None,
    api_key: str | None = None,
    timeout: float = RUNG_TIMEOUT,
    verify_inside: bool = False,
    inside_timeout: float = INSIDE_TIMEOUT,
) -> list[CheckResult]:
    """Find the URLs (flag > environment > .env, or a Render service's variables) and check
    them; with `verify_inside`, a service's from inside it (one Render job, `inside_timeout`)."""
    if timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    urls: dict[Target, str] = {}
    if service:
        if database_url or redis_url:
            raise UsageError(
                "--service reads the URLs from the service: do not also pass --database-url/--redis-url"
            )
        from authkit_setup.check.service import check_service, check_service_from_inside

        check = check_service_from_inside if verify_inside else check_service
        return check(
            out,
            service=service,
            workspace=workspace,
            api_key=api_key,
            env_file=env_file,
            timeout=inside_timeout if verify_inside else timeout,
        )
    if verify_inside:
        raise UsageError(
            "--verify-inside runs a job inside a Render service: pass --service NAME too"
        )
    values = read_env_file(env_file, required=env_file != Path(".env"))
    pg = resolve(database_url, DATABASE_URL, values)
    rd = resolve(redis_url, REDIS_URL, values)
    if pg.value:
        urls["postgres"] = pg.value
    if rd.value:
        urls["redis"] = rd.value
    if not urls:
        raise UsageError(
            "nothing to check: pass --database-url/--redis-url, set DATABASE_URL/REDIS_URL, "
            f"or put them in {env_file}"
        )
    for setting in (pg, rd):
        if setting.value:
            out.info(f"{setting.name} from {_describe(setting.source, env_file)}")
    with checking(out, urls):
        return run_checks(urls, timeout=timeout)


def _describe(source: str, env_file: Path) -> str:
    return {"flag": "the command line", "env": "the environment", "env-file": str(env_file)}.get(
        source, source
    )


def checks_json(results: list[CheckResult], *, with_skip: bool = False) -> list[dict[str, Any]]:
    return [r.to_json(with_skip=with_skip) for r in results]


def render_checks(out: Output, results: list[CheckResult]) -> None:
    """Print results: a block per URL for people, one JSON document with --json."""
    # A store that cannot be checked from here is reported as skipped (never as passed); it does
    # not fail the run, the way a failing rung does.
    out.result({"ok": all(r.ok or r.skipped for r in results), "checks": checks_json(results)})
    if out.json_mode:
        return
    for result in results:
        print_check(out, result)
    failed = [r for r in results if not r.ok and not r.skipped]
    if failed:
        out.print(f"{len(failed)} of {len(results)} failed.", role="failed")
    elif any(r.skipped for r in results):
        out.print("Not everything could be checked from here (see above).", role="note")
    else:
        out.print("All checks passed.", role="ok")


def print_check(out: Output, result: CheckResult) -> None:
    inside = " (checked from inside the service)" if getattr(result, "via", "") == "inside" else ""
    name = Kind.checked_as(result.target).display_name
    out.print(f"{name}  {result.url}{inside}", role="heading", span=len(name))
    if result.skipped:
        out.print(f"  - not checked: {result.reason}", role="note", span=len("  - not checked:"))
    elif not result.ok and result.failed_rung is None and result.error_message:
        out.print(f"  ✗ {result.error_message}", role="failed", span=len("  ✗"))
        out.print(f"    fix: {result.hint}", role="hint", span=len("    fix:"))
    for rung in result.rungs:
        mark = "✓" if rung.ok else "✗"
        out.print(
            f"  {mark} {rung.name:<9} {rung.detail}  ({rung.ms:.0f} ms)",
            role="ok" if rung.ok else "failed",
            span=len(f"  {mark} {rung.name:<9}") if not rung.ok else len(f"  {mark}"),
        )
    if result.failed_rung:
        out.print(f"    fix: {result.hint}", role="hint", span=len("    fix:"))
    for warning in result.warnings:
        out.print(f"  ! {warning}", role="warning", span=len("  !"))
    out.print()
