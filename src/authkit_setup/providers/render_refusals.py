"""Render's refusals to create a store, said as a reason and the next step (render.py uses it).

The one Render refuses most often is documented: one free Postgres per workspace (render-api.md
§3.7). The plan step finds that one before any change (`RenderStores.check_quota`); whatever
else a create is refused for (400/402/409/422, §8.2) is explained here when it happens, never
shown as a raw status line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from authkit_setup.errors import ApiError
from authkit_setup.providers.base import Kind, Store, StoreSpec
from authkit_setup.timestamps import parse_time

# What Render may answer a store create it refuses (§8.2): 400 for validation and for the one
# free Postgres per workspace (§3.7; its wording is not on record); 402 (payment information)
# and 422 are not documented for these paths (UNCONFIRMED) but cost nothing to explain; 409 is
# a state conflict.
CREATE_REFUSALS = frozenset({400, 402, 409, 422})


@dataclass(frozen=True)
class KindOnRender:
    """How a kind is called on Render, and the options that change how it is created."""

    title: str
    plan_flag: str
    paid_plan: str  # the smallest paid plan (Postgres: basic_256mb, §0.3)
    elsewhere: str  # the same store from another provider
    options: str  # what a rejected request may need changed


ON_RENDER = {
    Kind.POSTGRES: KindOnRender(
        title="Postgres",
        plan_flag="--postgres-plan",
        paid_plan="basic_256mb",
        elsewhere="--postgres neon",
        options="--postgres-plan, --postgres-version, --postgres-allow-cidr",
    ),
    Kind.REDIS: KindOnRender(
        title="Key Value",
        plan_flag="--redis-plan",
        paid_plan="starter",
        elsewhere="--redis upstash",
        options="--redis-plan, --maxmemory-policy, --redis-allow-cidr",
    ),
}


def refusal(spec: StoreSpec, exc: ApiError, free_stores: Callable[[], list[Store]]) -> ApiError:
    """`exc`, Render's refusal to create `spec`, as a reason and the next step. `free_stores`
    lists the workspace's other free stores of the kind, to name the one in the way."""
    on = ON_RENDER[spec.kind]
    reason = " ".join((exc.detail or exc.message).split())[:200]
    what = f"Render refused to create {on.title} {spec.name}"
    message = f"{what} ({spec.plan}, {spec.region}): {reason}"
    hint = (
        f"change what Render objects to ({on.options}) and run the same command again; "
        "it reuses whatever was created"
    )
    if exc.status == 402:
        message = f"{what} on the {spec.plan} plan: Render asks for payment information ({reason})"
        hint = (
            "add a payment method in the Render Dashboard (Workspace Settings → Billing), "
            f"or use {on.plan_flag} free, then run the same command again"
        )
    elif exc.status == 409:
        message = f"{what}: it conflicts with the workspace's current state ({reason})"
        hint = (
            f"look in the Render Dashboard for a {on.title} named {spec.name} being created or "
            "deleted, wait for it, then run the same command again"
        )
    elif spec.plan == "free":
        # A Postgres (whose limit is documented) or a refusal that speaks of "free" is checked
        # against the free stores: the plan may have missed one made since.
        mentions_free = "free" in reason.lower()
        in_the_way: list[Store] = []
        if spec.kind is Kind.POSTGRES or mentions_free:
            try:
                in_the_way = free_stores()
            except ApiError:
                pass  # the refusal is still explained, without naming the store
        if in_the_way:
            message, hint = free_plan_refusal(spec, in_the_way, now=datetime.now(UTC))
        elif mentions_free:
            message, hint = f"{what} on the free plan: {reason}", free_plan_ways_out(spec, None)
    return ApiError(
        message, hint=hint, status=exc.status, request_id=exc.request_id, detail=exc.detail
    )


def free_plan_refusal(
    spec: StoreSpec, in_the_way: list[Store], *, now: datetime
) -> tuple[str, str]:
    """Why `spec` cannot be created on the free plan (one line naming the free stores in the
    way, and when each expires), and the ways out."""
    title = ON_RENDER[spec.kind].title
    named = ", ".join(f"{s.name} ({s.id}, {_expiry(s, now)})" for s in in_the_way)
    limit = f"Render allows one free {title} per workspace"
    message = f"{spec.name} cannot be created on the free plan: {limit}, and it has {named}"
    return message, free_plan_ways_out(spec, in_the_way[0])


def free_plan_ways_out(spec: StoreSpec, free: Store | None) -> str:
    """The ways past a free-plan limit: a paid plan, reusing the free store (when it is where
    this one is planned), deleting or upgrading it, or another provider."""
    on = ON_RENDER[spec.kind]
    ways = [f"a paid plan ({on.plan_flag} {on.paid_plan})"]
    if free is not None and free.region == spec.region and spec.name_from_flag:
        # (A preview's store is named `<name>-<preview>`: no flag can name an existing one.)
        ways.append(f"reuse {free.name} ({spec.kind.name_flag} {free.name})")
    what = free.name if free is not None else f"the free {on.title}"
    ways.append(f"delete or upgrade {what} in the Render Dashboard")
    hint = "; ".join(ways) + f"; or another provider ({on.elsewhere})"
    if free is not None and free.region != spec.region:
        hint += f" ({free.name} is in {free.region}, so it cannot serve a service in {spec.region})"
    return f"ways out: {hint}"


def _expiry(store: Store, now: datetime) -> str:
    """When a free store expires, in days: "expires 2026-10-19, in 29 days", "expired
    2026-09-01, 3 days ago", or "no expiry given"."""
    moment = parse_time(store.expires_at)
    if moment is None:
        return "no expiry given"
    day = moment.date().isoformat()
    if moment < now:
        ago = (now - moment).days
        return f"expired {day}, " + (
            "less than a day ago" if ago == 0 else f"{ago} day{'s' if ago > 1 else ''} ago"
        )
    left = (moment - now).days
    return f"expires {day}, " + (
        "within a day" if left == 0 else f"in {left} day{'s' if left > 1 else ''}"
    )
