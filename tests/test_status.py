"""`authkit-setup status`: stores, expiry, backups and wiring, for people and for machines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.fixtures import MakeRenderFake
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI
from tests.helpers import assert_no_secret, run_cli
from tests.render_env import RenderWorld, cli_uses

STORE_KEYS = {
    "kind",
    "provider",
    "name",
    "id",
    "region",
    "plan",
    "status",
    "created_at",
    "expires_at",
    "expires_in_days",
    "wired",
    "pitr",
    "backups",
}
DAY = 86400.0


class SettableClock:
    """A clock for the fake that may be set anywhere, also before its start (stores made in the
    past: their `createdAt` and free-plan `expiresAt` move with it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def create_store(fake: FakeRenderAPI, kind: str, name: str, plan: str) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "ownerId": fake.owner_id, "plan": plan, "region": "ohio"}
    if kind == "postgres":
        body["version"] = "16"
    response = httpx.post(
        f"{fake.base_url}/{kind}", headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"}, json=body
    )
    response.raise_for_status()
    return dict(response.json())


@pytest.fixture
def api_only(make_render_fake: MakeRenderFake, monkeypatch: pytest.MonkeyPatch) -> FakeRenderAPI:
    fake = make_render_fake(postgres_ready_after=0.0, redis_ready_after=0.0)
    return cli_uses(fake, monkeypatch)


def test_nothing_yet_is_missing(api_only: FakeRenderAPI) -> None:
    result = run_cli("status", "--json")
    assert result.exit_code == 1
    doc = result.json()
    assert set(doc) == {"ok", "preview", "service", "stores", "warnings"}
    assert doc["ok"] is False and doc["warnings"] == [] and doc["preview"] is None
    assert [(s["kind"], s["name"], s["status"]) for s in doc["stores"]] == [
        ("postgres", "authkit-db", "missing"),
        ("redis", "authkit-redis", "missing"),
    ]
    for store in doc["stores"]:
        assert set(store) == STORE_KEYS
        assert store["id"] is None and store["wired"] is None and store["backups"] is False
    assert "authkit-setup render --service NAME` creates them" in result.stderr


def test_after_render_everything_is_wired(render_world: RenderWorld) -> None:
    assert run_cli("render", "--service", "authkit-api", "--no-verify").exit_code == 0
    fake = render_world.fake
    (pg,) = fake.postgres_named("authkit-db")
    (kv,) = fake.key_values_named("authkit-redis")
    result = run_cli("status", "--service", "authkit-api", "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["ok"] is True and doc["warnings"] == []
    assert doc["service"] == {
        "id": render_world.service_id,
        "name": "authkit-api",
        "region": "ohio",
    }
    db, cache = doc["stores"]
    assert db == {
        "kind": "postgres",
        "provider": "render",
        "name": "authkit-db",
        "id": pg["id"],
        "region": "ohio",
        "plan": "free",
        "status": "available",
        "created_at": pg["createdAt"],
        "expires_at": pg["expiresAt"],
        "expires_in_days": 29,  # 30 days minus the seconds since creation, rounded down
        "wired": True,
        "pitr": "NOT_AVAILABLE",
        "backups": False,
    }
    assert cache == {
        "kind": "redis",
        "provider": "render",
        "name": "authkit-redis",
        "id": kv["id"],
        "region": "ohio",
        "plan": "free",
        "status": "available",
        "created_at": kv["createdAt"],
        "expires_at": None,
        "expires_in_days": None,
        "wired": True,
        "pitr": None,
        "backups": False,
    }
    assert "Traceback" not in result.output


def test_human_table(render_world: RenderWorld) -> None:
    assert run_cli("render", "--service", "authkit-api", "--no-verify").exit_code == 0
    result = run_cli("status", "--service", "authkit-api")
    assert result.exit_code == 0, result.output
    (pg,) = render_world.fake.postgres_named("authkit-db")
    for text in ("authkit-db", "authkit-redis", pg["id"], "available", "NOT_AVAILABLE", "wired"):
        assert text in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert result.stderr == ""


def test_paid_preview_has_point_in_time_recovery(api_only: FakeRenderAPI) -> None:
    create_store(api_only, "postgres", "authkit-db-pr-4", "basic_256mb")
    create_store(api_only, "key-value", "authkit-redis-pr-4", "starter")
    result = run_cli("status", "--preview", "pr-4", "--json")
    assert result.exit_code == 0, result.output
    db, cache = result.json()["stores"]
    assert (db["name"], db["pitr"], db["backups"], db["expires_at"]) == (
        "authkit-db-pr-4",
        "AVAILABLE",
        True,
        None,
    )
    assert (cache["name"], cache["pitr"], cache["backups"]) == ("authkit-redis-pr-4", None, False)
    assert db["wired"] is None  # no --service given


def test_free_database_about_to_expire_warns(
    make_render_fake: MakeRenderFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SettableClock()
    fake = make_render_fake(clock=clock, postgres_ready_after=0.0, redis_ready_after=0.0)
    cli_uses(fake, monkeypatch)
    clock.now = -25 * DAY  # created 25 days ago: 5 of its 30 days left
    create_store(fake, "postgres", "authkit-db", "free")
    clock.now = 0.0
    result = run_cli("status", "--json")
    db = result.json()["stores"][0]
    assert db["expires_in_days"] == 4  # 4 days and 23:59:59.x
    (warning,) = result.json()["warnings"]
    assert "authkit-db" in warning and "expires in 4 days" in warning and "basic_256mb" in warning
    assert "warning: authkit-db" in result.stderr

    clock.now = 10 * DAY  # the fake's time moves on; `status` reads Render's expiresAt as is
    human = run_cli("status")
    assert "expires in 4 days" in human.stderr


def test_wiring_elsewhere_duplicates_and_region(api_only: FakeRenderAPI) -> None:
    fake = api_only
    first = create_store(fake, "postgres", "authkit-db", "free")
    create_store(fake, "postgres", "authkit-db", "basic_256mb")
    kv = create_store(fake, "key-value", "authkit-redis", "free")
    fake.add_service(
        "authkit-api",
        region="oregon",
        env={
            "DATABASE_URL": "postgresql://app:pw-elsewhere@db.example.com/app",
            "REDIS_URL": f"redis://{kv['id']}:6379",
        },
    )
    result = run_cli("status", "--service", "authkit-api", "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert [(s["name"], s["wired"]) for s in doc["stores"]] == [
        ("authkit-db", False),
        ("authkit-db", False),
        ("authkit-redis", True),
    ]
    assert doc["stores"][0]["id"] == first["id"]
    assert any("2 postgres stores are named 'authkit-db'" in w for w in doc["warnings"])
    assert any("in ohio but authkit-api runs in oregon" in w for w in doc["warnings"])
    assert_no_secret(result, "pw-elsewhere")


def test_preview_store_missing_is_reported_with_wired_false(api_only: FakeRenderAPI) -> None:
    create_store(api_only, "postgres", "authkit-db-pr-8", "basic_256mb")
    api_only.add_service("authkit-api", region="ohio")
    result = run_cli("status", "--preview", "pr-8", "--service", "authkit-api", "--json")
    assert result.exit_code == 1
    db, cache = result.json()["stores"]
    assert (db["status"], db["wired"]) == ("available", False)
    assert (cache["name"], cache["status"], cache["wired"]) == (
        "authkit-redis-pr-8",
        "missing",
        False,
    )
    assert "--preview pr-8` creates them" in result.stderr


def test_several_workspaces_need_a_scope(api_only: FakeRenderAPI) -> None:
    api_only.add_owner("Another Team")
    result = run_cli("status")
    assert result.exit_code == 2
    assert "--workspace" in result.stderr and "Traceback" not in result.output
    assert run_cli("status", "--workspace", "AuthKit Team").exit_code == 1  # missing, not usage


def test_missing_key_and_bad_input(
    api_only: FakeRenderAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli("status", "--db-name", " ").exit_code == 2
    monkeypatch.delenv("RENDER_API_KEY")
    result = run_cli("status", "--json")
    assert result.exit_code == 3
    assert result.json()["error"]["code"] == "missing_credentials"
