"""Migration step (`render --migrate-command`, `migrations`): make the service run its migration
command on every deploy.

Where the command goes depends on the instance type (render-api.md §7):

- Paid web services, private services and background workers get it as their **pre-deploy
  command**: Render runs it after the build and before the new version takes traffic, and a
  failing migration stops the deploy [BLOG-PD].
- Free instances have no pre-deploy command, so it goes into the **build command**, before the
  build step, the way the setup guide shows: `pnpm install && pnpm db:push && pnpm build`.
- Docker services have no build command: pre-deploy if paid, else a clear error.

A command that already runs (in either place) is left alone, so a re-run changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from authkit_setup.errors import BadResponseError, PlanConflictError, UsageError
from authkit_setup.output import Output
from authkit_setup.pipeline.service import ServiceRef
from authkit_setup.providers.render import RenderClient

Target = Literal["preDeployCommand", "buildCommand"]
Action = Literal["created", "updated", "unchanged"]

# Pre-deploy commands exist on paid web services, private services and workers only [BLOG-PD].
PRE_DEPLOY_TYPES = frozenset({"web_service", "private_service", "background_worker"})
DOCKER_RUNTIMES = frozenset({"docker", "image"})
LABELS: dict[Target, str] = {
    "preDeployCommand": "pre-deploy command",
    "buildCommand": "build command",
}

_AND = re.compile(r"\s*&&\s*")
# A build command we may rewrite in the middle: plain `a && b && c`, nothing a shell would read
# differently once we splice a step in (quotes, `;`, `||`, pipes, subshells, substitutions).
_PLAIN_CHAIN = re.compile(r"^(?:[^'\"`\\;|()<>$&\n]|&&)*$")
# A build step: a word `build` or `build:<script>` (`pnpm build`, `npm run build:prod`,
# `turbo run build`, `go build ./...`, `next build`), or the TypeScript compiler alone.
_BUILD_WORD = re.compile(r"^build(:[\w.-]+)?$")


@dataclass(frozen=True)
class MigrationPlan:
    """Where the migration command runs, and that field before and after this run."""

    command: str
    target: Target
    before: str | None
    after: str
    reason: str

    @property
    def changed(self) -> bool:
        return (self.before or "") != self.after

    @property
    def action(self) -> Action:
        if not self.changed:
            return "unchanged"
        return "updated" if self.before else "created"

    @property
    def label(self) -> str:
        return LABELS[self.target]

    def patch_body(self) -> dict[str, Any]:
        # The PATCH shape differs from GET (§7): preDeployCommand sits directly under
        # serviceDetails, buildCommand under serviceDetails.envSpecificDetails.
        if self.target == "preDeployCommand":
            return {"serviceDetails": {"preDeployCommand": self.after}}
        return {"serviceDetails": {"envSpecificDetails": {"buildCommand": self.after}}}

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "target": self.target,
            "action": self.action,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
        }


def _segments(command: str) -> list[str]:
    return [" ".join(part.split()) for part in _AND.split(command.strip()) if part.strip()]


def runs_command(existing: str | None, command: str) -> bool:
    """True if `command` is already one of the `&&` steps of `existing` (spacing ignored)."""
    if not existing:
        return False
    have, want = _segments(existing), _segments(command)
    if not want:
        return False
    return any(have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1))


def is_build_step(segment: str) -> bool:
    words = segment.split()
    return bool(words) and ("tsc" in words or any(_BUILD_WORD.match(w) for w in words[1:]))


def insert_migration(build: str | None, command: str) -> str:
    """`build` with `command` before its build step, else appended with `&&`.

    `pnpm install && pnpm build` → `pnpm install && pnpm db:push && pnpm build`. The text around
    the insertion is kept byte for byte.
    """
    build = (build or "").strip()
    if not build:
        return command
    if runs_command(build, command):
        return build
    if _PLAIN_CHAIN.match(build):
        parts = _AND.split(build)
        separators = _AND.findall(build)
        for i, segment in enumerate(parts):
            if is_build_step(segment):
                head = "".join(p + s for p, s in zip(parts[:i], separators[:i], strict=True))
                return f"{head}{command} && {build[len(head) :]}"
    return f"{build} && {command}"


def _commands(service: ServiceRef) -> tuple[str, str | None, str | None]:
    details = service.raw.get("serviceDetails") or {}
    env_specific = details.get("envSpecificDetails") or {}
    runtime = str(details.get("runtime") or details.get("env") or "")
    build = env_specific.get("buildCommand")
    # GET shows preDeployCommand inside envSpecificDetails (§7); accept the PATCH spot as well.
    pre_deploy = env_specific.get("preDeployCommand") or details.get("preDeployCommand")
    return (
        runtime,
        build if isinstance(build, str) else None,
        pre_deploy if isinstance(pre_deploy, str) and pre_deploy else None,
    )


def check_command(command: str, flag: str) -> str:
    command = command.strip()
    if not command:
        raise UsageError(f"{flag} is empty: pass the migration command, e.g. {flag} 'pnpm db:push'")
    if "\n" in command or "\r" in command:
        raise UsageError(f"{flag} must be one line", hint="join the steps with &&")
    return command


def plan_migration(service: ServiceRef, command: str, *, force: bool = False) -> MigrationPlan:
    """Decide where `command` goes. Reads only `service`; raises before any change."""
    command = check_command(command, "--command")
    runtime, build, pre_deploy = _commands(service)
    docker = runtime in DOCKER_RUNTIMES
    if runs_command(pre_deploy, command):
        assert pre_deploy is not None
        return MigrationPlan(
            command, "preDeployCommand", pre_deploy, pre_deploy, "already the pre-deploy command"
        )
    if not docker and runs_command(build, command):
        assert build is not None
        return MigrationPlan(command, "buildCommand", build, build, "already in the build command")

    can_pre_deploy = not service.is_free and service.type in PRE_DEPLOY_TYPES
    if can_pre_deploy:
        reason = f"paid {service.type.replace('_', ' ')}: runs before each deploy goes live"
        if pre_deploy and not force:
            raise PlanConflictError(
                f"{service.name} already has a pre-deploy command ({pre_deploy!r}), not {command!r}",
                hint="re-run with --force to replace it, or add the migration to it in the "
                "dashboard (nothing has been changed)",
            )
        return MigrationPlan(command, "preDeployCommand", pre_deploy, command, reason)
    if docker:
        why = (
            "a free instance"
            if service.is_free
            else f"a {service.type.replace('_', ' ')} (no pre-deploy command)"
        )
        raise PlanConflictError(
            f"{service.name} is a Docker service on {why}: it has no build command to add "
            f"{command!r} to, and pre-deploy commands need a paid web service, private service "
            "or background worker",
            hint="upgrade the instance type (starter or above) and re-run, or run the migration "
            "in your image's start command (e.g. CMD sh -c 'pnpm db:push && pnpm start')",
        )
    reason = (
        "free instance: no pre-deploy command, so it runs in the build"
        if service.is_free
        else f"{service.type.replace('_', ' ')}: no pre-deploy command, so it runs in the build"
    )
    return MigrationPlan(command, "buildCommand", build, insert_migration(build, command), reason)


def apply_migration(
    client: RenderClient, service: ServiceRef, plan: MigrationPlan, out: Output
) -> None:
    """PATCH the service if the plan changes something, and check that Render kept it."""
    if not plan.changed:
        out.step(f"{plan.label}: unchanged ({plan.after})")
        return
    updated = client.update_service(service.id, plan.patch_body())
    details = updated.get("serviceDetails")
    if isinstance(details, dict):
        env_specific = details.get("envSpecificDetails") or {}
        shown = env_specific.get(plan.target) or details.get(plan.target)
        if shown != plan.after:
            raise BadResponseError(
                f"Render accepted the change but {service.name}'s {plan.label} reads {shown!r}, "
                f"not {plan.after!r}",
                hint="check the service's settings in the dashboard; re-running is safe",
            )
    out.step(f"{plan.label}: {plan.action} ({plan.after})")
