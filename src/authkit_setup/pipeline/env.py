"""Env step: write DATABASE_URL / REDIS_URL (and extras such as DIRECT_URL) to the target.

The target is a Render service's environment (`render`) or a .env file (`provision`); either
way one key at a time, every other variable untouched, each key reported as created, updated
or unchanged (targets/).
"""

from __future__ import annotations

from authkit_setup.output import Output
from authkit_setup.pipeline.plan import StorePlan
from authkit_setup.targets.base import EnvChange, EnvTarget, predict


def planned_env(
    target: EnvTarget, plans: list[StorePlan], current: dict[str, str | None]
) -> list[EnvChange]:
    """What the env step would do (a dry run), as far as planning could tell."""
    changes = []
    for plan in plans:
        key = plan.spec.kind.env_var
        desired = target.url(plan.info) if plan.info else None
        changes.append(EnvChange(key, predict(current.get(key), desired)))
    return changes


def write_env(
    target: EnvTarget, plans: list[StorePlan], current: dict[str, str | None], out: Output
) -> list[EnvChange]:
    values = target.values({p.spec.kind: p.info for p in plans if p.info is not None}, out)
    return target.write(values, current, out)
