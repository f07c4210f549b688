"""Deploy step: environment changes take effect only after a deploy, so trigger one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authkit_setup.errors import (
    ApiConnectionError,
    AuthkitError,
    ResourceFailedError,
    ServerError,
    WaitTimeoutError,
)
from authkit_setup.output import Output
from authkit_setup.pipeline.migrate import MigrationPlan, apply_migration, plan_migration
from authkit_setup.pipeline.plan import StorePlan
from authkit_setup.pipeline.service import ServiceRef
from authkit_setup.providers.render import DEPLOY_FAILED, DEPLOY_LIVE, RenderClient
from authkit_setup.targets.base import EnvChange
from authkit_setup.timestamps import parse_time

NOT_DEPLOYED_HINT = (
    "DATABASE_URL / REDIS_URL are already set but not deployed, and a re-run sees nothing to "
    "change: after fixing this, deploy the service (dashboard: Manual Deploy)"
)


@dataclass(frozen=True)
class Redeploy:
    """`render`'s last step on the service: its migration command (if asked), then one deploy
    when anything changed, so the service runs with the new variables."""

    client: RenderClient
    service: ServiceRef
    deploy: bool = True
    wait: bool = False
    timeout: float = 900.0
    migrate_command: str | None = None

    def plan(self, *, force: bool) -> MigrationPlan | None:
        """Where the migration command goes: decided while planning, so a conflict stops the
        run before any change."""
        if self.migrate_command is None:
            return None
        return plan_migration(self.service, self.migrate_command, force=force)

    def apply(
        self,
        plans: list[StorePlan],
        env: list[EnvChange],
        migration: MigrationPlan | None,
        out: Output,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict[str, Any] | None:
        return deploy_changes(
            self.client,
            self.service,
            plans,
            env,
            migration,
            out,
            deploy=self.deploy,
            wait=self.wait,
            timeout=self.timeout,
            sleep=sleep,
            clock=clock,
        )


def deploy_changes(
    client: RenderClient,
    service: ServiceRef,
    plans: list[StorePlan],
    env: list[EnvChange],
    migration: MigrationPlan | None,
    out: Output,
    *,
    deploy: bool,
    wait: bool,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any] | None:
    """The migration command (if asked), then one deploy when anything changed."""
    if migration is not None:  # after the env step, before the one deploy for both
        apply_migration(client, service, migration, out)
    changed = any(c.action != "unchanged" for c in env)
    changed = changed or (migration is not None and migration.changed)
    if changed and deploy:
        return deploy_service(
            client, service.id, out, wait=wait, timeout=timeout, sleep=sleep, clock=clock
        )
    if deploy and _undeployed(client, service.id, plans):
        # An earlier run wrote these variables but its deploy never happened (interrupted, or
        # the deploy call failed): the service may still run without them.
        out.step("the variables were written by an earlier run that did not deploy: deploying now")
        return trigger_deploy(client, service.id, out)
    if not changed:
        out.step("nothing changed: no deploy needed")
    return None


def _undeployed(client: RenderClient, service_id: str, plans: list[StorePlan]) -> bool:
    """True when no deploy started after the newest store the variables point at was created."""
    created = [parse_time(p.store.created_at) for p in plans if p.store is not None]
    newest = max((c for c in created if c is not None), default=None)
    if newest is None:
        return False
    latest = client.deploys(service_id, limit=1)
    if not latest:
        return True
    started = parse_time(latest[0].get("createdAt"))
    return started is not None and started < newest


def trigger_deploy(
    client: RenderClient,
    service_id: str,
    out: Output,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    try:
        deploy = _create_deploy(client, service_id)
    except (ApiConnectionError, ServerError):
        # The deploy may have been queued anyway: reuse an API deploy from the last minutes
        # rather than queueing a second one.
        deploy = _queued_deploy(client, service_id, sleep, tries=1)
        if deploy is None:
            deploy = _create_deploy(client, service_id)
    if deploy is None:
        # 202 Queued with an empty body: the deploy is in the list (newest first). If it is
        # not, the answer (an empty or unreadable 200) did not queue one: ask once more. A
        # duplicate deploy is harmless; a missing one leaves the new variables unused.
        deploy = _queued_deploy(client, service_id, sleep)
        if deploy is None:
            deploy = _create_deploy(client, service_id) or _queued_deploy(client, service_id, sleep)
    if deploy is None:
        deploy = {"id": None, "status": "queued"}
    out.step(f"deploy {deploy.get('id') or '(queued)'}: {deploy.get('status') or 'queued'}")
    return {"id": deploy.get("id"), "status": deploy.get("status") or "queued"}


def _create_deploy(client: RenderClient, service_id: str) -> dict[str, Any] | None:
    """POST a deploy. A refusal (401, 4xx, 429 after the retries) means none was queued: the
    error says so, because the variables are already written and a re-run will not deploy."""
    try:
        return client.create_deploy(service_id)
    except (ApiConnectionError, ServerError):
        raise  # ambiguous: the caller looks for the deploy
    except AuthkitError as err:
        err.hint = f"{err.hint}; {NOT_DEPLOYED_HINT}" if err.hint else NOT_DEPLOYED_HINT
        raise


def _queued_deploy(
    client: RenderClient, service_id: str, sleep: Callable[[float], None], *, tries: int = 3
) -> dict[str, Any] | None:
    """The API deploy queued in the last minutes, if the list shows one (newest first)."""
    for attempt in range(tries):
        if attempt:
            sleep(1.0)
        latest = client.deploys(service_id, limit=1)
        if latest and latest[0].get("trigger") == "api" and _recent(latest[0].get("createdAt")):
            return latest[0]
    return None


def _recent(created_at: Any, within: float = 300.0) -> bool:
    when = parse_time(created_at)
    return when is not None and abs((datetime.now(UTC) - when).total_seconds()) <= within


def deploy_service(
    client: RenderClient,
    service_id: str,
    out: Output,
    *,
    wait: bool,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Trigger a deploy; with `wait`, follow it until it is live (or fails, or `timeout`)."""
    deploy = trigger_deploy(client, service_id, out)
    if wait:
        deploy = wait_for_deploy(
            client, service_id, deploy, out, timeout=timeout, sleep=sleep, clock=clock
        )
    return deploy


def wait_for_deploy(
    client: RenderClient,
    service_id: str,
    deploy: dict[str, Any],
    out: Output,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    from authkit_setup.pipeline.wait import poll

    start = clock()
    deploy_id = deploy.get("id")
    with out.live("Waiting for the deploy") as progress:

        def read() -> tuple[Any, str]:
            nonlocal deploy_id
            if deploy_id is None:
                latest = client.deploys(service_id, limit=1)
                current = latest[0] if latest else {}
                deploy_id = current.get("id")
            else:
                current = client.deploy(service_id, str(deploy_id))
            status = str(current.get("status") or "queued")
            progress.update("deploy", f"deploy {deploy_id}: {status} ({clock() - start:.0f} s)")
            return deploy_id, status

        (deploy_id, status), timed_out = poll(
            read(),
            read,
            lambda seen: seen[1] == DEPLOY_LIVE or seen[1] in DEPLOY_FAILED,
            deadline=start + timeout,
            pause=lambda _left: min(10.0, max(2.0, (clock() - start) / 5)),
            sleep=sleep,
            clock=clock,
        )
    if status == DEPLOY_LIVE:
        return {"id": deploy_id, "status": status}
    if status in DEPLOY_FAILED:
        raise ResourceFailedError(
            f"deploy {deploy_id} ended {status}",
            hint="read the deploy logs in the Render dashboard; the variables are already set",
        )
    assert timed_out
    raise WaitTimeoutError(
        f"deploy {deploy_id} is still {status} after {timeout:.0f} s",
        hint="the deploy goes on; watch it in the dashboard",
    )
