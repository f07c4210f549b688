"""Creates Render would refuse: found in the plan, before any change, or explained when made.

The most common first run on Render: the workspace already has its one free Postgres (a side
project, an expiring trial). `render` must stop before creating anything, name that database
and its expiry, and offer the ways out; every other create refusal (400/402/409/422 on
POST /postgres or /key-value) is a reason and a next step, never a raw status line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from authkit_setup.errors import ApiError
from authkit_setup.providers.base import Kind, Readiness, Store, StoreSpec
from authkit_setup.providers.render import RenderClient, RenderStores
from authkit_setup.providers.render_refusals import free_plan_refusal
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI, Fault
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import RenderWorld

# What a raw refusal would have looked like: "Render API: POST /postgres: 400 …".
RAW_STATUS_LINE = re.compile(r"POST /(postgres|key-value)|\b(400|402|409|422)\b")


def render(*args: str) -> CliResult:
    result = run_cli("render", "--service", "authkit-api", "--yes", "--no-verify", *args)
    assert_no_secret(result)
    return result


def seed_postgres(
    fake: FakeRenderAPI, name: str, *, plan: str = "free", region: str = "ohio"
) -> dict[str, Any]:
    """A Postgres made outside authkit-setup (another project in the same workspace)."""
    response = httpx.post(
        f"{fake.base_url}/postgres",
        headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"},
        json={
            "name": name,
            "ownerId": fake.owner_id,
            "plan": plan,
            "version": "16",
            "region": region,
            "ipAllowList": [{"cidrBlock": "0.0.0.0/0", "description": "everywhere"}],
        },
    )
    response.raise_for_status()
    fake.reset_log()
    return dict(response.json())


def creates(fake: FakeRenderAPI) -> int:
    return fake.count("POST", "/postgres") + fake.count("POST", "/key-value")


def assert_nothing_changed(world: RenderWorld, env_before: dict[str, str]) -> None:
    fake = world.fake
    assert creates(fake) == 0
    assert fake.key_values_named("authkit-redis") == []  # the Key Value was NOT created
    assert fake.postgres_named("authkit-db") == []
    assert fake.count("PUT") == 0 and fake.deploy_count(world.service_id) == 0
    assert fake.env(world.service_id) == env_before


# -- the workspace's free Postgres is in the way ---------------------------------------------------


def test_free_postgres_in_the_way_refuses_before_any_create(render_world: RenderWorld) -> None:
    fake = render_world.fake
    side = seed_postgres(fake, "side-project")
    before = fake.env(render_world.service_id)

    result = render()

    assert result.exit_code == 1, result.output
    assert_nothing_changed(render_world, before)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    hints = [line for line in result.stderr.splitlines() if line.startswith("hint:")]
    expires = side["expiresAt"][:10]
    assert errors == [
        "error: authkit-db cannot be created on the free plan: Render allows one free Postgres "
        f"per workspace, and it has side-project ({side['id']}, expires {expires}, in 29 days)"
    ]
    assert hints == [
        "hint: ways out: a paid plan (--postgres-plan basic_256mb); reuse side-project "
        "(--db-name side-project); delete or upgrade side-project in the Render Dashboard; "
        "or another provider (--postgres neon) (nothing has been changed)"
    ]
    assert not RAW_STATUS_LINE.search(result.stderr)
    assert "will be created" not in result.stderr  # refused before announcing a create


def test_refusal_json_shape(render_world: RenderWorld) -> None:
    fake = render_world.fake
    side = seed_postgres(fake, "side-project")
    before = fake.env(render_world.service_id)

    result = render("--json")

    assert result.exit_code == 1, result.output
    assert_nothing_changed(render_world, before)
    doc = result.json()
    assert set(doc) == {"ok", "error"} and doc["ok"] is False
    assert set(doc["error"]) == {"code", "message", "hint"}
    assert doc["error"]["code"] == "plan_conflict"
    assert side["id"] in doc["error"]["message"] and "side-project" in doc["error"]["message"]
    assert f"expires {side['expiresAt'][:10]}" in doc["error"]["message"]
    for way_out in ("--postgres-plan basic_256mb", "--db-name side-project", "--postgres neon"):
        assert way_out in doc["error"]["hint"]


def test_dry_run_shows_the_refusal(render_world: RenderWorld) -> None:
    fake = render_world.fake
    side = seed_postgres(fake, "side-project")
    before = fake.env(render_world.service_id)

    result = render("--dry-run", "--json")

    assert result.exit_code == 1, result.output
    assert_nothing_changed(render_world, before)
    assert result.json()["error"]["code"] == "plan_conflict"
    assert side["id"] in result.json()["error"]["message"]


def test_a_paid_plan_proceeds(render_world: RenderWorld) -> None:
    fake = render_world.fake
    side = seed_postgres(fake, "side-project")

    result = render("--postgres-plan", "basic_256mb", "--json")

    assert result.exit_code == 0, result.output
    (pg,) = fake.postgres_named("authkit-db")
    (kv,) = fake.key_values_named("authkit-redis")
    assert pg["plan"] == "basic_256mb"
    assert fake.postgres_named("side-project")[0]["id"] == side["id"]  # left alone
    env = fake.env(render_world.service_id)
    assert env["DATABASE_URL"] == fake.connection_info(pg["id"])["internalConnectionString"]
    assert env["REDIS_URL"] == fake.connection_info(kv["id"])["internalConnectionString"]
    # A paid plan has no free quota to check: the plan lists no other database.
    assert not [
        r
        for r in fake.requests
        if r.method == "GET" and r.path == "/postgres" and "name" not in r.query
    ]


def test_reusing_the_free_postgres_with_db_name(render_world: RenderWorld) -> None:
    fake = render_world.fake
    side = seed_postgres(fake, "side-project")

    result = render("--db-name", "side-project", "--json")

    assert result.exit_code == 0, result.output
    assert fake.count("POST", "/postgres") == 0
    postgres, _ = result.json()["resources"]
    assert (postgres["name"], postgres["id"], postgres["created"]) == (
        "side-project",
        side["id"],
        False,
    )
    env = fake.env(render_world.service_id)
    assert env["DATABASE_URL"] == fake.connection_info(side["id"])["internalConnectionString"]
    assert len(fake.key_values_named("authkit-redis")) == 1


def test_free_postgres_in_another_region_is_not_offered_for_reuse(
    render_world: RenderWorld,
) -> None:
    fake = render_world.fake
    seed_postgres(fake, "eu-trial", region="frankfurt")
    before = fake.env(render_world.service_id)

    result = render("--json")

    assert result.exit_code == 1, result.output
    assert_nothing_changed(render_world, before)
    hint = result.json()["error"]["hint"]
    assert "--db-name" not in hint
    assert "eu-trial is in frankfurt, so it cannot serve a service in ohio" in hint
    assert "--postgres-plan basic_256mb" in hint and "--postgres neon" in hint


def test_a_preview_is_not_offered_reuse_by_db_name(render_world: RenderWorld) -> None:
    """Under --preview the store is `<--db-name>-<preview>`: `--db-name side-project` would ask
    for side-project-pr-9, not reuse side-project, so that way out is not offered."""
    fake = render_world.fake
    seed_postgres(fake, "side-project")

    result = render("--preview", "pr-9", "--json")

    assert result.exit_code == 1, result.output
    error = result.json()["error"]
    assert error["code"] == "plan_conflict"
    assert error["message"].startswith("authkit-db-pr-9 cannot be created on the free plan")
    assert "--db-name" not in error["hint"] and "reuse" not in error["hint"]
    assert "--postgres-plan basic_256mb" in error["hint"] and "--postgres neon" in error["hint"]


def test_a_paid_postgres_elsewhere_is_not_in_the_way(render_world: RenderWorld) -> None:
    seed_postgres(render_world.fake, "big-app", plan="basic_1gb")
    result = render("--json")
    assert result.exit_code == 0, result.output
    assert [r["created"] for r in result.json()["resources"]] == [True, True]


# -- refusals the plan cannot foresee: explained when the create is refused --------------------


@pytest.mark.parametrize(
    ("status", "path", "args", "message", "hint"),
    [
        (
            402,
            "/key-value",
            ("--redis-plan", "starter"),
            "Render refused to create Key Value authkit-redis on the starter plan: Render asks "
            "for payment information (payment information required)",
            "add a payment method in the Render Dashboard (Workspace Settings → Billing), or "
            "use --redis-plan free, then run the same command again",
        ),
        (
            409,
            "/key-value",
            (),
            "Render refused to create Key Value authkit-redis: it conflicts with the "
            "workspace's current state (conflict)",
            "look in the Render Dashboard for a Key Value named authkit-redis being created or "
            "deleted, wait for it, then run the same command again",
        ),
        (
            422,
            "/postgres",
            ("--postgres-plan", "basic_256mb"),
            "Render refused to create Postgres authkit-db (basic_256mb, ohio): version 16 is "
            "not offered in ohio",
            "change what Render objects to (--postgres-plan, --postgres-version, "
            "--postgres-allow-cidr) and run the same command again; it reuses whatever was "
            "created",
        ),
        (
            400,
            "/postgres",
            (),
            "Render refused to create Postgres authkit-db on the free plan: free databases "
            "are not available to this workspace",
            "ways out: a paid plan (--postgres-plan basic_256mb); delete or upgrade the free "
            "Postgres in the Render Dashboard; or another provider (--postgres neon)",
        ),
    ],
    ids=["402-payment", "409-conflict", "422-invalid", "400-free"],
)
def test_a_refused_create_is_a_reason_and_a_next_step(
    render_world: RenderWorld,
    status: int,
    path: str,
    args: tuple[str, ...],
    message: str,
    hint: str,
) -> None:
    fake = render_world.fake
    words = {
        402: "payment information required",
        409: "conflict",
        422: "version 16 is not offered in ohio",
        400: "free databases are not available to this workspace",
    }[status]
    fake.inject("POST", path, Fault.status(status, {"message": words}))

    result = render("--json", *args)

    assert result.exit_code == 1, result.output
    error = result.json()["error"]
    assert error == {"code": "api_error", "message": message, "hint": hint}
    assert f"error: {message}" in result.stderr.splitlines()
    assert not RAW_STATUS_LINE.search(result.stderr.replace(f"{words}", ""))
    # The store made beside the refused one is named, and the next run picks it up.
    other = "authkit-db" if path == "/key-value" else "authkit-redis"
    assert f"warning: {other} (" in result.stderr and "the next run reuses it" in result.stderr
    again = render("--json", *args)
    assert again.exit_code == 0, again.output
    created = {r["name"]: r["created"] for r in again.json()["resources"]}
    assert created == {"authkit-db": path == "/postgres", "authkit-redis": path == "/key-value"}


def test_a_free_postgres_that_appears_after_the_plan_is_named_at_create(
    render_fake: FakeRenderAPI,
) -> None:
    """The plan saw no free Postgres, but by the create one exists (made in the dashboard
    meanwhile): Render's 400 is explained by naming it, as the plan would have."""
    side = seed_postgres(render_fake, "made-meanwhile")
    with RenderClient(token=FAKE_RENDER_KEY, base_url=render_fake.base_url) as client:
        stores = RenderStores(client, owner_id=render_fake.owner_id)
        spec = StoreSpec(kind=Kind.POSTGRES, name="authkit-db", region="ohio", plan="free")
        with pytest.raises(ApiError) as refused:
            stores.create(spec)
    assert refused.value.status == 400
    assert refused.value.message.startswith(
        "authkit-db cannot be created on the free plan: Render allows one free Postgres per "
        f"workspace, and it has made-meanwhile ({side['id']}, expires "
    )
    assert refused.value.hint is not None
    assert "--db-name made-meanwhile" in refused.value.hint
    assert "Render API" not in refused.value.message


# -- the wording of the expiry -------------------------------------------------------------------


def _free(name: str, expires_at: str | None, region: str = "ohio") -> Store:
    return Store(
        provider="render",
        kind=Kind.POSTGRES,
        id=f"dpg-{name}",
        name=name,
        region=region,
        plan="free",
        status="available",
        readiness=Readiness.READY,
        expires_at=expires_at,
    )


@pytest.mark.parametrize(
    ("expires_in", "said"),
    [
        (timedelta(days=12, hours=3), "expires 2026-01-13, in 12 days"),
        (timedelta(days=1, hours=1), "expires 2026-01-02, in 1 day"),
        (timedelta(hours=5), "expires 2026-01-01, within a day"),
        (timedelta(hours=-5), "expired 2026-01-01, less than a day ago"),
        (timedelta(days=-3, hours=-1), "expired 2025-12-29, 3 days ago"),
        (None, "no expiry given"),
    ],
)
def test_the_expiry_is_said_in_days(expires_in: timedelta | None, said: str) -> None:
    now = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    expires_at = None if expires_in is None else (now + expires_in).isoformat()
    spec = StoreSpec(kind=Kind.POSTGRES, name="authkit-db", region="ohio", plan="free")
    message, _ = free_plan_refusal(spec, [_free("trial", expires_at)], now=now)
    assert message.endswith(f"it has trial (dpg-trial, {said})")
