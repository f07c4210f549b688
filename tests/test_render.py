"""`authkit-setup render` end to end against the fake Render API and real test servers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.fakes.render_api import FAKE_RENDER_KEY, Fault
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import RenderWorld


def render(world: RenderWorld, *args: str) -> CliResult:
    result = run_cli("render", "--service", "authkit-api", "--yes", *args)
    assert_no_secret(result)  # every password and key the fake handed out, Key Value's too
    return result


def creates(world: RenderWorld) -> int:
    return world.fake.count("POST", "/postgres") + world.fake.count("POST", "/key-value")


def create_before_the_run(world: RenderWorld, path: str, **fields: object) -> None:
    """Create a free store with an empty allow list through the API, as someone did before."""
    import httpx

    fake = world.fake
    body = {"ownerId": fake.owner_id, "plan": "free", "ipAllowList": [], **fields}
    headers = {"Authorization": f"Bearer {FAKE_RENDER_KEY}"}
    httpx.post(f"{fake.base_url}{path}", headers=headers, json=body).raise_for_status()


def test_fresh_run_creates_wires_deploys_and_verifies(render_world: RenderWorld) -> None:
    fake = render_world.fake
    before = fake.env(render_world.service_id)
    result = render(render_world, "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()

    pgs, kvs = fake.postgres_named("authkit-db"), fake.key_values_named("authkit-redis")
    assert len(pgs) == 1 and len(kvs) == 1
    assert pgs[0]["region"] == "ohio" and kvs[0]["region"] == "ohio"
    assert (
        pgs[0]["databaseName"].startswith("authkit_") and pgs[0]["databaseUser"] == "authkit_user"
    )
    assert kvs[0]["options"]["maxmemoryPolicy"] == "noeviction"

    env = fake.env(render_world.service_id)
    assert env["DATABASE_URL"] == fake.connection_info(pgs[0]["id"])["internalConnectionString"]
    assert env["REDIS_URL"] == fake.connection_info(kvs[0]["id"])["internalConnectionString"]
    assert {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")} == before
    assert fake.bulk_env_put_calls == []
    assert fake.deploy_count(render_world.service_id) == 1

    assert doc["ok"] is True
    assert doc["service"] == {
        "id": render_world.service_id,
        "name": "authkit-api",
        "region": "ohio",
    }
    assert [(r["kind"], r["provider"], r["created"]) for r in doc["resources"]] == [
        ("postgres", "render", True),
        ("redis", "render", True),
    ]
    assert {e["key"]: e["action"] for e in doc["env"]} == {
        "DATABASE_URL": "created",
        "REDIS_URL": "created",
    }
    assert doc["deploy"]["id"].startswith("dep-")
    pg_check, redis_check = doc["checks"]
    assert pg_check["ok"] is True and pg_check["skipped"] is False
    assert "TLS in use" in pg_check["rungs"][-1]["detail"]
    assert redis_check["skipped"] is True and redis_check["ok"] is False
    assert "--redis-allow-cidr" in redis_check["reason"]
    assert [r["name"] for r in doc["resources"]] == ["authkit-db", "authkit-redis"]


def test_rerun_changes_nothing(render_world: RenderWorld) -> None:
    assert render(render_world).exit_code == 0
    fake = render_world.fake
    fake.reset_log()
    result = render(render_world, "--json")
    assert result.exit_code == 0, result.output
    assert creates(render_world) == 0
    assert fake.count("PUT") == 0
    assert fake.deploy_count(render_world.service_id) == 1
    assert {e["action"] for e in result.json()["env"]} == {"unchanged"}
    assert all(r["created"] is False for r in result.json()["resources"])
    assert fake.count() <= 12, [(r.method, r.path) for r in fake.requests]


def test_human_output_and_progress(render_world: RenderWorld) -> None:
    result = render(render_world)
    assert result.exit_code == 0, result.output
    assert "DATABASE_URL: created" in result.stdout
    assert "authkit-db" in result.stderr  # progress lines on stderr
    assert "not verifiable from here" in result.output


def test_store_in_other_region_stops_before_any_change(render_world: RenderWorld) -> None:
    fake = render_world.fake
    create_before_the_run(
        render_world, "/postgres", name="authkit-db", version="16", region="frankfurt"
    )
    fake.reset_log()
    result = render(render_world, "--json")
    assert result.exit_code == 1
    assert result.json()["error"]["code"] == "plan_conflict"
    assert "frankfurt" in result.json()["error"]["message"]
    assert creates(render_world) == 0 and fake.count("PUT") == 0
    assert "DATABASE_URL" not in fake.env(render_world.service_id)


def test_duplicate_names_stop_before_any_change(render_world: RenderWorld) -> None:
    fake = render_world.fake
    for _ in range(2):
        create_before_the_run(render_world, "/key-value", name="authkit-redis", region="ohio")
    fake.reset_log()
    result = render(render_world)
    assert result.exit_code == 1
    assert "2 redis stores are named 'authkit-redis'" in result.stderr
    assert creates(render_world) == 0 and fake.count("PUT") == 0


def test_foreign_database_url_needs_force(render_world: RenderWorld) -> None:
    fake = render_world.fake
    service = fake.add_service(
        "other-api",
        region="ohio",
        env={"DATABASE_URL": "postgresql://app:hunter2secret@db.example.com:5432/prod"},
    )
    result = run_cli("render", "--service", "other-api", "--json")
    assert result.exit_code == 1
    assert "db.example.com" in result.json()["error"]["message"]
    assert_no_secret(result, "hunter2secret")
    assert creates(render_world) == 0
    result = run_cli("render", "--service", "other-api", "--force", "--no-verify")
    assert result.exit_code == 0, result.output
    assert fake.env(str(service["id"]))["DATABASE_URL"].startswith("postgresql://authkit_user:")


def test_dry_run_changes_nothing(render_world: RenderWorld) -> None:
    result = render(render_world, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["planned"] is True
    assert [r["action"] for r in doc["resources"]] == ["create", "create"]
    assert creates(render_world) == 0 and render_world.fake.count("PUT") == 0


def test_starter_plan_maps_to_basic_256mb(render_world: RenderWorld) -> None:
    result = render(render_world, "--postgres-plan", "starter", "--no-verify")
    assert result.exit_code == 0, result.output
    body = next(
        r.body for r in render_world.fake.requests if r.method == "POST" and r.path == "/postgres"
    )
    assert (
        body["plan"] == "basic_256mb"
        and body["version"] == "16"
        and body["ipAllowList"] == [{"cidrBlock": "0.0.0.0/0", "description": "authkit-setup"}]
    )


def test_missing_and_rejected_key(
    render_world: RenderWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RENDER_API_KEY")
    result = run_cli("render", "--service", "authkit-api")
    assert result.exit_code == 3
    assert "--api-key" in result.stderr and "RENDER_API_KEY" in result.stderr
    result = run_cli(
        "render", "--service", "authkit-api", "--api-key", "rnd_wrong-wrong-wrong-wrong"
    )
    assert result.exit_code == 3
    assert "rejected" in result.stderr
    assert_no_secret(result, "rnd_wrong-wrong-wrong-wrong")
    assert "Traceback" not in result.output


def test_unknown_service_lists_candidates(render_world: RenderWorld) -> None:
    result = run_cli("render", "--service", "nope")
    assert result.exit_code == 2
    assert "authkit-api" in result.stderr


def test_service_by_id(render_world: RenderWorld) -> None:
    result = run_cli("render", "--service", render_world.service_id, "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["service"]["name"] == "authkit-api"


def test_region_flag_must_match(render_world: RenderWorld) -> None:
    result = run_cli("render", "--service", "authkit-api", "--region", "oregon")
    assert result.exit_code == 2 and "ohio" in result.stderr
    assert creates(render_world) == 0


def test_redis_allow_cidr_verifies_redis_for_real(render_world: RenderWorld) -> None:
    result = render(render_world, "--redis-allow-cidr", "127.0.0.1/32", "--json")
    assert result.exit_code == 0, result.output
    redis_check = result.json()["checks"][1]
    assert redis_check["ok"] is True and redis_check["skipped"] is False
    assert redis_check["server_version"].startswith("Redis")


def _can_connect(url: str) -> bool:
    import psycopg
    import redis

    try:
        if url.startswith("rediss://"):
            with redis.Redis.from_url(url, socket_timeout=5, retry=None) as client:
                return bool(client.ping())
        with psycopg.connect(url, connect_timeout=5, sslmode="require") as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except (psycopg.OperationalError, redis.ConnectionError):
        return False


def test_empty_allow_list_refuses_external_connections(render_world: RenderWorld) -> None:
    """As on Render, an empty ipAllowList means private network only: the external URL refuses
    every connection, so "not verifiable from here" is the truth; naming the address in the
    list opens it (the next connection sees the change)."""
    result = render(render_world, "--postgres-allow-cidr", "none", "--json")
    assert result.exit_code == 0, result.output
    pg_check, redis_check = result.json()["checks"]
    assert pg_check["skipped"] is True and redis_check["skipped"] is True
    fake = render_world.fake
    (pg,) = fake.postgres_named("authkit-db")
    (kv,) = fake.key_values_named("authkit-redis")
    urls = {
        store["id"]: fake.connection_info(store["id"])["externalConnectionString"]
        for store in (pg, kv)
    }
    assert [_can_connect(url) for url in urls.values()] == [False, False]

    import httpx

    def allow(cidr: str) -> None:
        for kind, store_id in (("postgres", pg["id"]), ("key-value", kv["id"])):
            response = httpx.patch(
                f"{fake.base_url}/{kind}/{store_id}",
                headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"},
                json={"ipAllowList": [{"cidrBlock": cidr, "description": "me"}]},
            )
            assert response.status_code == 200, response.text

    allow("10.0.0.0/8")  # a list that does not name this machine refuses it too
    assert [_can_connect(url) for url in urls.values()] == [False, False]
    allow("127.0.0.1/32")
    assert [_can_connect(url) for url in urls.values()] == [True, True]


def test_env_file_gets_external_urls(render_world: RenderWorld) -> None:
    path = Path("dev.env")
    path.write_text("# local settings\nKEEP=me\nDATABASE_URL=old\n")
    result = render(render_world, "--env-file", str(path), "--no-verify")
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text.startswith("# local settings\nKEEP=me\nDATABASE_URL=postgresql://")
    assert "sslmode=require" in text and "REDIS_URL=rediss://" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_wait_deploy(render_world: RenderWorld) -> None:
    fake = render_world.fake
    fake.deploy_build_after = 0.0
    fake.deploy_finish_after = 0.5
    result = render(render_world, "--wait-deploy", "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["deploy"]["status"] == "live"


def test_wait_deploy_failure(render_world: RenderWorld) -> None:
    fake = render_world.fake
    fake.deploy_build_after = 0.0
    fake.deploy_finish_after = 0.5
    fake.deploy_final_status = "build_failed"
    result = render(render_world, "--wait-deploy", "--no-verify")
    assert result.exit_code == 1
    assert "build_failed" in result.stderr


def test_deploy_202_empty_body(render_world: RenderWorld) -> None:
    render_world.fake.deploy_response = 202
    result = render(render_world, "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["deploy"]["id"].startswith("dep-")


def test_no_deploy(render_world: RenderWorld) -> None:
    result = render(render_world, "--no-deploy", "--no-verify")
    assert result.exit_code == 0
    assert render_world.fake.deploy_count(render_world.service_id) == 0


@pytest.mark.parametrize(
    "fault",
    [
        Fault.rate_limited(reset=1),
        Fault.status(503),
        Fault.status(500),
        Fault.drop_after(),
        Fault.drop_before(),
        Fault.malformed_json(),
        Fault.empty_body(),
    ],
    ids=["429", "503", "500", "drop-after", "drop-before", "malformed", "empty"],
)
def test_faults_on_create_end_with_one_store(render_world: RenderWorld, fault: Fault) -> None:
    fake = render_world.fake
    fake.inject("POST", r"/postgres", fault)
    fake.inject("POST", r"/key-value", fault)
    result = render(render_world, "--no-verify")
    if result.exit_code != 0:
        assert "Traceback" not in result.output
        result = render(render_world, "--no-verify")
    assert result.exit_code == 0, result.output
    assert len(fake.postgres_named("authkit-db")) == 1
    assert len(fake.key_values_named("authkit-redis")) == 1
    env = fake.env(render_world.service_id)
    assert len([k for k in env if k.startswith("EXISTING_")]) == 120


def test_slow_response_past_client_timeout(
    render_world: RenderWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authkit_setup.providers import render as render_provider

    original = render_provider.RenderClient.__init__

    def short_timeout(self: render_provider.RenderClient, **kwargs: object) -> None:
        kwargs["timeout"] = 0.5
        original(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(render_provider.RenderClient, "__init__", short_timeout)
    fake = render_world.fake
    fake.inject("POST", r"/postgres", Fault.slow(1.5))
    fake.inject("GET", r"/key-value", Fault.slow(1.5))
    result = render(render_world, "--no-verify")
    if result.exit_code != 0:
        result = render(render_world, "--no-verify")
    assert result.exit_code == 0, result.output
    assert len(fake.postgres_named("authkit-db")) == 1


def test_rate_limited_gets_say_how_long(render_world: RenderWorld) -> None:
    fake = render_world.fake
    fake.inject("GET", r"/services", Fault.rate_limited(reset=1))
    result = render(render_world, "--no-verify")
    assert result.exit_code == 0, result.output


def test_unauthorized_mid_run(render_world: RenderWorld) -> None:
    fake = render_world.fake
    fake.inject("PUT", r"/services/[^/]+/env-vars/.*", Fault.unauthorized())
    result = render(render_world, "--no-verify")
    assert result.exit_code == 3
    assert "rejected the API key" in result.stderr
    result = render(render_world, "--no-verify")
    assert result.exit_code == 0
    assert len(fake.postgres_named("authkit-db")) == 1


def test_check_service_uses_external_url_for_internal_host(render_world: RenderWorld) -> None:
    assert render(render_world, "--no-verify").exit_code == 0
    result = run_cli("check", "--service", "authkit-api", "--json")
    assert result.exit_code == 0, result.output
    pg_check, redis_check = result.json()["checks"]
    assert pg_check["ok"] is True
    assert any("internal host" in w for w in pg_check["warnings"])
    assert redis_check["skipped"] is True and "internal host" in redis_check["reason"]


def test_rate_limit_wait_is_announced(render_world: RenderWorld) -> None:
    render_world.fake.inject("GET", r"/services", Fault.rate_limited(reset=2))
    result = render(render_world, "--no-verify")
    assert result.exit_code == 0, result.output
    assert "waiting 2 s for the Render rate limit (429)" in result.stderr
