"""`check --service`: read a Render service's DATABASE_URL / REDIS_URL through the API.

Internal hosts (dpg-…, red-…) only resolve inside Render. For those we look the store up and
check it through its external URL instead, which proves the credentials and the database; the
internal path then only needs the same region and workspace, which we compare.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from authkit_setup.check import checking
from authkit_setup.diagnostics import run_checks
from authkit_setup.diagnostics.model import CheckResult, Target
from authkit_setup.diagnostics.url import RENDER_INTERNAL_HOST
from authkit_setup.errors import NotFoundError, UsageError
from authkit_setup.output import Output
from authkit_setup.pipeline.service import ServiceRef, resolve_service
from authkit_setup.providers.base import Kind
from authkit_setup.providers.clients import render_client
from authkit_setup.providers.render import RenderClient, RenderStores, store_from_api
from authkit_setup.secrets import register


@contextmanager
def _service(
    out: Output, service: str, workspace: str | None, api_key: str | None, env_file: Path
) -> Iterator[tuple[RenderClient, ServiceRef]]:
    """A Render client (--api-key > RENDER_API_KEY > `env_file`) and the service it finds."""
    with render_client(out, api_key=api_key, env_file=env_file) as client:
        yield client, resolve_service(client, service, workspace)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def check_service(
    out: Output,
    *,
    service: str,
    workspace: str | None,
    api_key: str | None,
    env_file: Path,
    timeout: float,
) -> list[CheckResult]:
    urls: dict[Target, str] = {}
    fixed: dict[Target, CheckResult] = {}
    notes: dict[Target, str] = {}
    with _service(out, service, workspace, api_key, env_file) as (client, ref):
        stores = RenderStores(client, ref.owner_id)
        for kind in Kind:
            target, key = kind.check_name, kind.env_var
            value = client.env_var(ref.id, key)
            if not value:
                continue
            register(value)  # announced to GitHub Actions before any result can quote it
            host = _host(value)
            if not RENDER_INTERNAL_HOST.match(host):
                urls[target] = value
                continue
            try:
                store = store_from_api(kind, client.store(kind, host))
            except NotFoundError:
                result = CheckResult(target, value)
                result.failed_rung = "dns"
                result.error_code = "internal_host_unknown"
                result.error_message = (
                    f"{key} points at {host}, which is not a {kind.value} store visible to this key"
                )
                result.hint = f"run `authkit-setup render --service {ref.name} --force` to point it at a store that exists"
                fixed[target] = result
                continue
            if store.region != ref.region:
                result = CheckResult(target, value)
                result.failed_rung = "dns"
                result.error_code = "other_region"
                result.error_message = (
                    f"{key} points at {store.name} ({host}) in {store.region}, but the service runs in "
                    f"{ref.region}: internal hosts do not resolve across regions"
                )
                result.hint = f"create the store in {ref.region} (authkit-setup render --service {ref.name} --force)"
                fixed[target] = result
                continue
            info = stores.connection_info(store)
            if info.external_url and info.external_reachable:
                urls[target] = info.external_url
                notes[target] = (
                    f"{key} uses the internal host {host} (same region as the service); "
                    "checked through the store's external URL from here"
                )
            else:
                result = CheckResult(target, value)
                result.skipped = True
                result.reason = (
                    f"{key} uses the internal host {host} ({store.name}, same region as the service, "
                    f"which is what internal URLs need); it cannot be checked from here because "
                    f"{info.unreachable_reason or 'it has no external URL'}. Re-run with "
                    "--verify-inside to check it from inside the service (one Render job), or allow "
                    "this machine's IP (--redis-allow-cidr) to check it from outside"
                )
                fixed[target] = result
        out.info(f"service {ref.name} ({ref.id}, {ref.region})")
    if not urls and not fixed:
        raise _no_urls(ref)
    results: dict[Target, CheckResult] = {}
    if urls:
        with checking(out, urls):
            results = {r.target: r for r in run_checks(urls, timeout=timeout)}
    for target, note in notes.items():
        results[target].warn(note)
    results.update(fixed)
    return [results[k.check_name] for k in Kind if k.check_name in results]


def check_service_from_inside(
    out: Output,
    *,
    service: str,
    workspace: str | None,
    api_key: str | None,
    env_file: Path,
    timeout: float,
) -> list[CheckResult]:
    """`check --service NAME --verify-inside`: the service's own DATABASE_URL / REDIS_URL,
    internal hosts included, checked from inside the service by one Render job (`timeout`
    bounds the wait for it)."""
    from authkit_setup.pipeline.verify_inside import verify_from_inside

    with _service(out, service, workspace, api_key, env_file) as (client, ref):
        urls: dict[Target, str] = {
            kind.check_name: value
            for kind in Kind
            if (value := client.env_var(ref.id, kind.env_var))
        }
        register(*urls.values())
        out.info(f"service {ref.name} ({ref.id}, {ref.region})")
        if not urls:
            raise _no_urls(ref)
        return verify_from_inside(client, ref, urls, out, timeout=timeout)


def _no_urls(ref: ServiceRef) -> UsageError:
    return UsageError(
        f"service {ref.name} has neither DATABASE_URL nor REDIS_URL",
        hint=f"run `authkit-setup render --service {ref.name}` to set them",
    )
