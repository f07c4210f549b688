"""The fake Render API behaves like the reference says (tests/fakes/render_api.py)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.fakes.render_api import (
    FAKE_OWNER_NAME,
    FAKE_RENDER_KEY,
    LEGACY_POSTGRES_PLAN_MESSAGE,
    FakeRenderAPI,
    Fault,
    ManualClock,
    NullBackend,
    RateLimits,
    RealBackend,
)

if TYPE_CHECKING:
    from tests.conftest import PgServer, RedisServer
    from tests.fakes.fixtures import MakeRenderFake
    from tests.servers import PostgresTlsProxy, RedisTlsProxy

# A no-op once tests/conftest.py registers the plugin; never import the module directly here
# (it must be registered before it is imported, or pytest cannot rewrite its asserts).


def _client(fake: FakeRenderAPI, key: str = FAKE_RENDER_KEY) -> httpx.Client:
    return httpx.Client(
        base_url=fake.base_url,
        headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
        timeout=5.0,
    )


@pytest.fixture
def client(render_fake: FakeRenderAPI) -> Iterator[httpx.Client]:
    with _client(render_fake) as http:
        yield http


def _store_body(owner_id: str, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A create body: a free store `name` in Oregon, open to nobody, `fields` added or replaced."""
    return {
        "name": name,
        "ownerId": owner_id,
        "plan": "free",
        "region": "oregon",
        "ipAllowList": [],
        **fields,
    }


def _pg_body(owner_id: str, **overrides: Any) -> dict[str, Any]:
    pg = {"version": "16", "databaseName": "authkit", "databaseUser": "authkit_user"}
    return _store_body(owner_id, "authkit-db", pg | overrides)


def _kv_body(owner_id: str, **overrides: Any) -> dict[str, Any]:
    return _store_body(owner_id, "authkit-redis", {"maxmemoryPolicy": "noeviction"} | overrides)


def _collect(http: httpx.Client, path: str, limit: int) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(1000):  # a fake whose cursors loop must fail, not hang
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = http.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        if not page:
            return pages
        cursor = page[-1]["cursor"]
    raise AssertionError(f"paging {path} never reached an empty page")


# -- fixtures, auth, owners ----------------------------------------------------------------


def test_fixture_defaults(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    assert FAKE_RENDER_KEY.startswith("rnd_")  # but not shaped like a real key
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", render_fake.base_url)
    owners = client.get("/owners").json()
    assert len(owners) == 1
    assert owners[0]["owner"]["name"] == FAKE_OWNER_NAME
    assert owners[0]["owner"]["type"] == "team"
    assert re.fullmatch(r"tea-[a-z0-9]{20}", owners[0]["owner"]["id"])
    assert owners[0]["owner"]["id"] == render_fake.owner_id
    assert isinstance(owners[0]["cursor"], str)


def test_users_and_unauthorized(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    me = client.get("/users")
    assert me.status_code == 200
    assert set(me.json()) == {"email", "name"}

    with _client(render_fake, key="rnd_wrong-wrong-wrong-wrong-wrong") as bad:
        response = bad.get("/users")
    assert response.status_code == 401
    assert response.json() == {"message": "unauthorized"}
    no_header = httpx.get(f"{render_fake.base_url}/users")
    assert no_header.status_code == 401

    render_fake.revoke_key(FAKE_RENDER_KEY)  # the key is revoked in the middle of a run
    assert client.get("/owners").status_code == 401
    render_fake.add_key(FAKE_RENDER_KEY)
    assert client.get("/owners").status_code == 200


def test_owner_filters_and_unwrapped_get(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    other = render_fake.add_owner("AuthKit")  # a prefix of the seeded name
    assert [o["owner"]["id"] for o in client.get("/owners?name=AuthKit").json()] == [other["id"]]
    assert client.get("/owners", params={"name": "Nobody"}).json() == []
    single = client.get(f"/owners/{other['id']}")
    assert single.status_code == 200
    assert single.json() == other
    missing = client.get("/owners/tea-doesnotexist")
    assert missing.status_code == 404
    assert missing.json() == {"message": "not found: tea-doesnotexist"}


def test_every_response_carries_request_id_and_rate_limit_headers(
    render_fake: FakeRenderAPI, client: httpx.Client
) -> None:
    responses = [
        client.get("/users"),
        client.get("/services/srv-nope"),
        client.post("/postgres", json={}),
        httpx.get(f"{render_fake.base_url}/users"),
        client.get("/no-such-route"),
    ]
    assert [r.status_code for r in responses] == [200, 404, 400, 401, 404]
    for response in responses:
        assert response.headers["Render-Request-Id"].startswith("api-")
        assert int(response.headers["Ratelimit-Limit"]) > 0
        assert int(response.headers["Ratelimit-Remaining"]) >= 0
        assert 0 <= int(response.headers["Ratelimit-Reset"]) <= 3600
    assert all("message" in r.json() for r in responses[1:])
    assert responses[0].headers["Ratelimit-Limit"] == "400"
    assert responses[2].headers["Ratelimit-Limit"] == "20"


# -- services ------------------------------------------------------------------------------


def test_service_name_filter_is_exact(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    web = render_fake.add_service("authkit-web", region="frankfurt")
    render_fake.add_service("authkit-web-2")
    render_fake.add_service("authkit")
    worker = render_fake.add_service("authkit-worker", type="background_worker")
    assert re.fullmatch(r"srv-[a-z0-9]{20}", web["id"])

    found = client.get("/services", params={"name": "authkit-web", "ownerId": render_fake.owner_id})
    assert [item["service"]["id"] for item in found.json()] == [web["id"]]
    assert all(set(item) == {"service", "cursor"} for item in found.json())

    both = client.get("/services", params=[("name", "authkit-web"), ("name", "authkit-worker")])
    assert {item["service"]["id"] for item in both.json()} == {web["id"], worker["id"]}
    typed = client.get("/services", params={"type": "background_worker"}).json()
    assert [item["service"]["id"] for item in typed] == [worker["id"]]
    assert client.get("/services", params={"region": "frankfurt"}).json()[0]["service"] == web
    assert client.get("/services", params={"ownerId": "tea-other"}).json() == []

    single = client.get(f"/services/{web['id']}").json()  # unwrapped
    assert single["id"] == web["id"]
    assert single["ownerId"] == render_fake.owner_id
    assert single["serviceDetails"]["region"] == "frankfurt"
    assert single["serviceDetails"]["plan"] == "starter"
    assert single["serviceDetails"]["envSpecificDetails"] == {
        "buildCommand": "npm install",
        "startCommand": "npm start",
    }


def test_patch_service_pre_deploy_and_build_command_asymmetry(
    render_fake: FakeRenderAPI, client: httpx.Client
) -> None:
    web = render_fake.add_service("authkit-web", plan="starter")
    # The GET location of preDeployCommand is ignored in a PATCH.
    wrong = client.patch(
        f"/services/{web['id']}",
        json={"serviceDetails": {"envSpecificDetails": {"preDeployCommand": "migrate"}}},
    )
    assert wrong.status_code == 200
    assert "preDeployCommand" not in wrong.json()["serviceDetails"]["envSpecificDetails"]

    patched = client.patch(
        f"/services/{web['id']}",
        json={
            "serviceDetails": {
                "envSpecificDetails": {"buildCommand": "npm ci && npm run build"},
                "preDeployCommand": "npx authkit migrate",
            }
        },
    )
    assert patched.status_code == 200
    details = client.get(f"/services/{web['id']}").json()["serviceDetails"]
    assert details["envSpecificDetails"] == {
        "buildCommand": "npm ci && npm run build",
        "startCommand": "npm start",
        "preDeployCommand": "npx authkit migrate",
    }
    assert "preDeployCommand" not in details

    free = render_fake.add_service("authkit-free", plan="free")
    refused = client.patch(
        f"/services/{free['id']}", json={"serviceDetails": {"preDeployCommand": "migrate"}}
    )
    assert refused.status_code == 400
    assert "free" in refused.json()["message"]
    assert (
        "preDeployCommand"
        not in render_fake.service(free["id"])["serviceDetails"]["envSpecificDetails"]
    )


# -- env vars ------------------------------------------------------------------------------


def test_env_var_pagination_over_250_vars(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    env = {f"VAR_{i:03d}": f"value-{i}" for i in range(250)}
    web = render_fake.add_service("authkit-web", env=env)
    pages = _collect(client, f"/services/{web['id']}/env-vars", limit=100)
    assert [len(page) for page in pages] == [100, 100, 50, 0]
    items = [item for page in pages for item in page]
    assert all(set(item) == {"envVar", "cursor"} for item in items)
    assert {i["envVar"]["key"]: i["envVar"]["value"] for i in items} == env
    assert len({i["cursor"] for i in items}) == 250

    assert len(client.get(f"/services/{web['id']}/env-vars").json()) == 20  # default limit
    too_big = client.get(f"/services/{web['id']}/env-vars", params={"limit": 101})
    assert too_big.status_code == 400
    assert client.get(f"/services/{web['id']}/env-vars?cursor=garbage").status_code == 400


def test_bulk_put_replaces_the_whole_set(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    web = render_fake.add_service("authkit-web", env={"SECRET_KEY": "s3cret", "NODE_ENV": "prod"})
    assert render_fake.bulk_env_put_calls == []
    response = client.put(
        f"/services/{web['id']}/env-vars", json=[{"key": "DATABASE_URL", "value": "postgres://x"}]
    )
    assert response.status_code == 200
    assert [item["envVar"] for item in response.json()] == [
        {"key": "DATABASE_URL", "value": "postgres://x"}
    ]
    assert render_fake.env(web["id"]) == {"DATABASE_URL": "postgres://x"}  # the rest is gone
    assert render_fake.bulk_env_put_calls == [
        (web["id"], [{"key": "DATABASE_URL", "value": "postgres://x"}])
    ]


def test_per_key_put_upserts_one_key(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    web = render_fake.add_service(
        "authkit-web", env={"SECRET_KEY": "s3cret", "DATABASE_URL": "old"}
    )
    base = f"/services/{web['id']}/env-vars"
    missing = client.get(f"{base}/REDIS_URL")
    assert missing.status_code == 404
    assert missing.json() == {"message": "not found"}

    updated = client.put(f"{base}/DATABASE_URL", json={"value": "postgresql://new"})
    assert updated.status_code == 200
    assert updated.json() == {"key": "DATABASE_URL", "value": "postgresql://new"}
    added = client.put(f"{base}/REDIS_URL", json={"value": "redis://red-x:6379"})
    assert added.status_code == 200
    assert render_fake.env(web["id"]) == {
        "SECRET_KEY": "s3cret",
        "DATABASE_URL": "postgresql://new",
        "REDIS_URL": "redis://red-x:6379",
    }
    assert client.get(f"{base}/REDIS_URL").json() == {
        "key": "REDIS_URL",
        "value": "redis://red-x:6379",
    }
    assert client.put(f"{base}/EMPTY", json={}).status_code == 400
    generated = client.put(f"{base}/TOKEN", json={"generateValue": True}).json()
    assert len(generated["value"]) >= 32

    deleted = client.delete(f"{base}/REDIS_URL")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.delete(f"{base}/REDIS_URL").status_code == 404
    assert "REDIS_URL" not in render_fake.env(web["id"])
    assert render_fake.bulk_env_put_calls == []


# -- Postgres ------------------------------------------------------------------------------


def test_postgres_create_and_status_follow_the_clock(
    render_fake: FakeRenderAPI, client: httpx.Client, manual_clock: ManualClock
) -> None:
    created = client.post("/postgres", json=_pg_body(render_fake.owner_id))
    assert created.status_code == 201, created.text
    pg = created.json()
    assert re.fullmatch(r"dpg-[a-z0-9]{20}-a", pg["id"])
    assert pg["status"] == "unknown"
    assert re.fullmatch(r"authkit_[a-z0-9]{4}", pg["databaseName"])
    assert pg["databaseUser"] == "authkit_user"
    assert pg["ipAllowList"] is None
    assert pg["region"] == "oregon"
    assert pg["version"] == "16"
    assert pg["owner"]["id"] == render_fake.owner_id
    created_at = datetime.fromisoformat(pg["createdAt"])
    assert datetime.fromisoformat(pg["expiresAt"]) - created_at == timedelta(days=30)

    def status() -> str:
        value = client.get(f"/postgres/{pg['id']}").json()["status"]
        assert isinstance(value, str)
        return value

    seen = [status()]
    for _ in range(10):
        manual_clock.advance(5)
        seen.append(status())
    assert seen[0] == "unknown"
    assert seen[-1] == "available"
    assert [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]] == [
        "unknown",
        "creating",
        "available",
    ]

    render_fake.set_status(pg["id"], "suspended")
    suspended = client.get(f"/postgres/{pg['id']}").json()
    assert suspended["status"] == "suspended"
    assert suspended["suspended"] == "suspended"
    render_fake.set_status(pg["id"], None)
    assert status() == "available"


def test_postgres_validation(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    owner = render_fake.owner_id
    legacy = client.post("/postgres", json=_pg_body(owner, plan="starter"))
    assert legacy.status_code == 400
    assert legacy.json() == {"message": LEGACY_POSTGRES_PLAN_MESSAGE}
    for plan in ("standard", "pro", "pro_plus"):
        assert client.post("/postgres", json=_pg_body(owner, plan=plan)).status_code == 400
    unknown = client.post("/postgres", json=_pg_body(owner, plan="basic-256mb"))
    assert unknown.status_code == 400
    assert "plan" in unknown.json()["message"]
    for field in ("name", "plan", "ownerId", "version"):
        body = _pg_body(owner)
        del body[field]
        response = client.post("/postgres", json=body)
        assert response.status_code == 400, field
        assert field in response.json()["message"]
    assert client.post("/postgres", json=_pg_body(owner, version=16)).status_code == 400
    assert client.post("/postgres", json=_pg_body(owner, region="mars")).status_code == 400
    assert client.post("/postgres", json=_pg_body(owner, ownerId="tea-nope")).status_code == 404
    assert client.post("/postgres", content=b"{not json").status_code == 400
    assert render_fake.postgres_named("authkit-db") == []

    paid = client.post("/postgres", json=_pg_body(owner, plan="basic_256mb", diskSizeGB=20))
    assert paid.status_code == 201
    assert "expiresAt" not in paid.json()
    assert paid.json()["diskSizeGB"] == 20
    assert client.post("/postgres", json=_pg_body(owner)).status_code == 201  # first free one
    second_free = client.post("/postgres", json=_pg_body(owner))
    assert second_free.status_code == 400  # one free Postgres per workspace
    # The error body as render-api.md §8.1 has it: {"id"?, "message"}, the message a string.
    body = second_free.json()
    assert set(body) <= {"id", "message"} and isinstance(body["message"], str)
    assert second_free.headers["content-type"].startswith("application/json")


def test_postgres_list_filters_and_pagination(
    render_fake: FakeRenderAPI, client: httpx.Client
) -> None:
    owner = render_fake.owner_id
    for i in range(5):
        body = _pg_body(owner, name=f"authkit-db-pr-{i}", plan="basic_256mb")
        assert client.post("/postgres", json=body).status_code == 201
    client.post("/postgres", json=_pg_body(owner, region="ohio", plan="basic_256mb"))
    client.post("/postgres", json=_pg_body(owner, plan="basic_256mb"))  # names repeat

    exact = client.get(
        "/postgres", params={"name": "authkit-db", "ownerId": owner, "includeReplicas": "false"}
    ).json()
    assert len(exact) == 2
    assert all(set(item) == {"postgres", "cursor"} for item in exact)
    assert {item["postgres"]["region"] for item in exact} == {"oregon", "ohio"}
    ohio = client.get("/postgres", params={"name": "authkit-db", "region": "ohio"}).json()
    assert len(ohio) == 1
    assert len(render_fake.postgres_named("authkit-db")) == 2

    pages = _collect(client, "/postgres", limit=3)
    assert [len(page) for page in pages] == [3, 3, 1, 0]
    names = [item["postgres"]["name"] for page in pages for item in page]
    assert names[:5] == [f"authkit-db-pr-{i}" for i in range(5)]


def test_postgres_connection_info_patch_delete_recovery_export(
    render_fake: FakeRenderAPI, client: httpx.Client
) -> None:
    owner = render_fake.owner_id
    paid = client.post("/postgres", json=_pg_body(owner, plan="basic_256mb")).json()
    free = client.post("/postgres", json=_pg_body(owner, name="authkit-free")).json()

    info = client.get(f"/postgres/{paid['id']}/connection-info").json()
    assert set(info) == {
        "password",
        "internalConnectionString",
        "externalConnectionString",
        "psqlCommand",
    }
    password, database = info["password"], paid["databaseName"]
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password)
    assert info["internalConnectionString"] == (
        f"postgresql://authkit_user:{password}@{paid['id']}/{database}"
    )
    assert info["externalConnectionString"] == (
        f"postgresql://authkit_user:{password}@oregon-postgres.render.invalid:5432/{database}"
    )
    assert f"PGPASSWORD={password} psql" in info["psqlCommand"]
    assert render_fake.connection_info(paid["id"]) == info

    allow = [{"cidrBlock": "203.0.113.7/32", "description": "ci"}]
    patched = client.patch(f"/postgres/{paid['id']}", json={"ipAllowList": allow})
    assert patched.status_code == 200
    assert patched.json()["ipAllowList"] == allow
    cleared = client.patch(f"/postgres/{paid['id']}", json={"ipAllowList": []}).json()
    assert cleared["ipAllowList"] is None

    assert client.get(f"/postgres/{paid['id']}/recovery").json()["recoveryStatus"] == "AVAILABLE"
    assert (
        client.get(f"/postgres/{free['id']}/recovery").json()["recoveryStatus"] == "NOT_AVAILABLE"
    )

    assert client.post(f"/postgres/{paid['id']}/export").status_code == 202
    exports = client.get(f"/postgres/{paid['id']}/export").json()
    assert len(exports) == 1
    assert set(exports[0]) == {"id", "createdAt", "url"}
    assert "token=" in exports[0]["url"]

    deleted = client.delete(f"/postgres/{paid['id']}")
    assert deleted.status_code == 204
    gone = client.get(f"/postgres/{paid['id']}")
    assert gone.status_code == 404
    assert gone.json() == {"message": f"not found: {paid['id']}"}
    assert client.get(f"/postgres/{paid['id']}/connection-info").status_code == 404


# -- Key Value -----------------------------------------------------------------------------


def test_key_value_lifecycle(
    render_fake: FakeRenderAPI, client: httpx.Client, manual_clock: ManualClock
) -> None:
    owner = render_fake.owner_id
    assert (
        client.post("/key-value", json=_kv_body(owner, maxmemoryPolicy="allkeys-lru")).status_code
        == 400
    )
    assert client.post("/key-value", json=_kv_body(owner, plan="basic_256mb")).status_code == 400
    created = client.post("/key-value", json=_kv_body(owner))
    assert created.status_code == 201, created.text
    kv = created.json()
    assert re.fullmatch(r"red-[a-z0-9]{20}", kv["id"])
    assert kv["status"] == "unknown"
    assert kv["ipAllowList"] is None
    assert kv["version"] == "8.1.4"
    assert kv["options"]["maxmemoryPolicy"] == "noeviction"

    manual_clock.advance(render_fake.redis_ready_after)
    detail = client.get(f"/key-value/{kv['id']}").json()
    assert detail["status"] == "available"

    listed = client.get("/key-value", params={"name": "authkit-redis", "ownerId": owner}).json()
    assert [item["keyValue"]["id"] for item in listed] == [kv["id"]]
    assert client.get("/key-value", params={"name": "authkit"}).json() == []

    info = client.get(f"/key-value/{kv['id']}/connection-info").json()
    assert info["internalConnectionString"] == f"redis://{kv['id']}:6379"
    assert re.fullmatch(
        rf"rediss://{kv['id']}:[A-Za-z0-9]{{32}}@oregon-keyvalue\.render\.invalid:6379",
        info["externalConnectionString"],
    )
    assert set(info) == {"internalConnectionString", "externalConnectionString", "cliCommand"}

    patched = client.patch(f"/key-value/{kv['id']}", json={"maxmemoryPolicy": "allkeys_lru"})
    assert patched.json()["options"]["maxmemoryPolicy"] == "allkeys_lru"
    assert client.delete(f"/key-value/{kv['id']}").status_code == 204
    assert render_fake.key_values_named("authkit-redis") == []


# -- deploys -------------------------------------------------------------------------------


def test_deploy_201_and_status_progression(
    render_fake: FakeRenderAPI, client: httpx.Client, manual_clock: ManualClock
) -> None:
    web = render_fake.add_service("authkit-web", env={"A": "1"})
    created = client.post(f"/services/{web['id']}/deploys", json={})
    assert created.status_code == 201
    deploy = created.json()
    assert re.fullmatch(r"dep-[a-z0-9]{20}", deploy["id"])
    assert deploy["status"] == "created"
    assert render_fake.deploy_env(deploy["id"]) == {"A": "1"}

    def status() -> str:
        value = client.get(f"/services/{web['id']}/deploys/{deploy['id']}").json()["status"]
        assert isinstance(value, str)
        return value

    manual_clock.advance(render_fake.deploy_build_after)
    assert status() == "build_in_progress"
    manual_clock.advance(render_fake.deploy_finish_after)
    assert status() == "live"

    render_fake.deploy_final_status = "build_failed"
    second = client.post(f"/services/{web['id']}/deploys").json()  # no body at all
    manual_clock.advance(render_fake.deploy_finish_after)
    listed = client.get(f"/services/{web['id']}/deploys").json()
    assert [item["deploy"]["id"] for item in listed] == [second["id"], deploy["id"]]
    assert [item["deploy"]["status"] for item in listed] == ["build_failed", "live"]
    assert render_fake.deploy_count(web["id"]) == 2
    assert client.get(f"/services/{web['id']}/deploys/dep-nope").status_code == 404


def test_deploy_202_empty_body_appears_in_list(
    make_render_fake: MakeRenderFake, manual_clock: ManualClock
) -> None:
    fake = make_render_fake(deploy_response=202)
    web = fake.add_service("authkit-web")
    with _client(fake) as http:
        queued = http.post(f"/services/{web['id']}/deploys", json={})
        assert queued.status_code == 202
        assert queued.content == b""
        listed = http.get(f"/services/{web['id']}/deploys", params={"limit": 1}).json()
    assert len(listed) == 1
    assert listed[0]["deploy"]["status"] == "created"
    assert fake.deploys(web["id"])[0]["id"] == listed[0]["deploy"]["id"]
    assert fake.deploy_count(web["id"]) == 1


# -- rate limits ---------------------------------------------------------------------------


def test_rate_limit_429_with_reset(
    make_render_fake: MakeRenderFake, manual_clock: ManualClock
) -> None:
    fake = make_render_fake(rate_limits=RateLimits(get_per_minute=3, creates_per_hour=2))
    with _client(fake) as http:
        remaining = [http.get("/users").headers["Ratelimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        manual_clock.advance(15)
        limited = http.get("/users")
        assert limited.status_code == 429
        assert limited.json() == {"message": "rate limit exceeded"}
        assert limited.headers["Ratelimit-Reset"] == "45"
        assert limited.headers["Ratelimit-Remaining"] == "0"
        assert "Retry-After" not in limited.headers
        manual_clock.advance(45)
        assert http.get("/users").status_code == 200

        # POST /postgres and POST /key-value share the hourly creation bucket.
        owner = fake.owner_id
        assert http.post("/postgres", json=_pg_body(owner)).status_code == 201
        assert http.post("/key-value", json=_kv_body(owner)).status_code == 201
        third = http.post("/key-value", json=_kv_body(owner, name="another"))
        assert third.status_code == 429
        assert 3500 <= int(third.headers["Ratelimit-Reset"]) <= 3600
    assert fake.key_values_named("another") == []


def test_deploy_rate_limit_is_per_service(make_render_fake: MakeRenderFake) -> None:
    fake = make_render_fake(rate_limits=RateLimits(service_changes_per_minute=2))
    one, two = fake.add_service("one"), fake.add_service("two")
    with _client(fake) as http:
        codes = [http.post(f"/services/{one['id']}/deploys").status_code for _ in range(3)]
        assert codes == [201, 201, 429]
        assert http.post(f"/services/{two['id']}/deploys").status_code == 201
    assert fake.deploy_count(one["id"]) == 2


def test_rate_limits_can_be_disabled(make_render_fake: MakeRenderFake) -> None:
    fake = make_render_fake(rate_limits=RateLimits(get_per_minute=1, enabled=False))
    with _client(fake) as http:
        responses = [http.get("/users") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert responses[-1].headers["Ratelimit-Limit"] == "1"


# -- fault injection -----------------------------------------------------------------------


def test_fault_status_codes_fire_times_then_stop(
    render_fake: FakeRenderAPI, client: httpx.Client
) -> None:
    handle = render_fake.inject("GET", r"/users", Fault.status(503), times=2)
    assert [client.get("/users").status_code for _ in range(3)] == [503, 503, 200]
    assert handle.fired == 2

    render_fake.inject("GET", r"/owners", Fault.status(502, body="<html>bad gateway</html>"))
    bad_gateway = client.get("/owners")
    assert bad_gateway.status_code == 502
    assert bad_gateway.text == "<html>bad gateway</html>"

    render_fake.inject("*", r"/owners", Fault.status(500, {"message": "boom"}))
    assert client.get("/owners").json() == {"message": "boom"}

    render_fake.inject("GET", r"/users", Fault.rate_limited(reset=7, retry_after=3))
    limited = client.get("/users")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert limited.headers["Ratelimit-Reset"] == "7"

    render_fake.inject("GET", r"/users", Fault.rate_limited(reset=None))
    bare = client.get("/users")
    assert bare.status_code == 429
    assert "Ratelimit-Reset" not in bare.headers
    assert "Retry-After" not in bare.headers

    render_fake.inject("GET", r"/users", Fault.unauthorized())
    assert client.get("/users").status_code == 401
    assert client.get("/users").status_code == 200


def test_fault_status_does_not_apply_the_request(
    render_fake: FakeRenderAPI, client: httpx.Client
) -> None:
    render_fake.inject("POST", r"/postgres", Fault.status(500))
    assert client.post("/postgres", json=_pg_body(render_fake.owner_id)).status_code == 500
    assert render_fake.postgres_named("authkit-db") == []


def test_fault_drop_before_does_not_create(
    render_fake: FakeRenderAPI, client: httpx.Client
) -> None:
    render_fake.inject("POST", r"/postgres", Fault.drop_before())
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/postgres", json=_pg_body(render_fake.owner_id))
    assert render_fake.postgres_named("authkit-db") == []
    assert render_fake.requests[-1].status is None
    assert render_fake.requests[-1].fault == "drop_before"
    assert client.get("/users").status_code == 200  # the client recovers on a new connection


def test_fault_drop_after_really_creates(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    render_fake.inject("POST", r"/key-value", Fault.drop_after())
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/key-value", json=_kv_body(render_fake.owner_id))
    assert len(render_fake.key_values_named("authkit-redis")) == 1
    listed = client.get("/key-value", params={"name": "authkit-redis"}).json()
    assert len(listed) == 1


def test_fault_malformed_and_empty_bodies(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    web = render_fake.add_service("authkit-web")
    render_fake.inject("GET", r"/services/[^/]+", Fault.malformed_json())
    broken = client.get(f"/services/{web['id']}")
    assert broken.status_code == 200
    assert broken.content == b'{"broken":'
    render_fake.inject("PUT", r"/services/[^/]+/env-vars/.*", Fault.empty_body())
    empty = client.put(f"/services/{web['id']}/env-vars/DATABASE_URL", json={"value": "x"})
    assert empty.status_code == 200
    assert empty.content == b""
    assert "DATABASE_URL" not in render_fake.env(web["id"])  # not applied
    assert client.get(f"/services/{web['id']}").json()["id"] == web["id"]


def test_fault_slow_then_answers_normally(render_fake: FakeRenderAPI) -> None:
    render_fake.inject("GET", r"/users", Fault.slow(0.6))
    with _client(render_fake) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get("/users", timeout=0.2)
    render_fake.inject("GET", r"/users", Fault.slow(0.2))
    with _client(render_fake) as http:
        started = time.monotonic()
        assert http.get("/users").status_code == 200
        assert time.monotonic() - started >= 0.2


def test_fault_path_pattern_must_match_the_whole_path(
    render_fake: FakeRenderAPI, client: httpx.Client
) -> None:
    pg = client.post("/postgres", json=_pg_body(render_fake.owner_id)).json()
    render_fake.inject("GET", r"/postgres", Fault.status(503))
    assert client.get(f"/postgres/{pg['id']}").status_code == 200
    assert client.get("/postgres").status_code == 503


# -- request log ---------------------------------------------------------------------------


def test_request_log(render_fake: FakeRenderAPI, client: httpx.Client) -> None:
    web = render_fake.add_service("authkit-web")
    client.get("/users")
    client.put(f"/services/{web['id']}/env-vars/DATABASE_URL", json={"value": "postgresql://x"})
    client.get(f"/services/{web['id']}/env-vars", params={"limit": 5})

    log = render_fake.requests
    assert [(r.method, r.path) for r in log] == [
        ("GET", "/users"),
        ("PUT", f"/services/{web['id']}/env-vars/DATABASE_URL"),
        ("GET", f"/services/{web['id']}/env-vars"),
    ]
    assert log[1].body == {"value": "postgresql://x"}
    assert log[2].query == {"limit": ["5"]}
    assert [r.status for r in log] == [200, 200, 200]
    assert all(r.request_id.startswith("api-") for r in log)
    assert FAKE_RENDER_KEY not in repr(log)

    assert render_fake.count() == 3
    assert render_fake.count("GET") == 2
    assert render_fake.count("put", f"/services/{web['id']}/env-vars") == 1
    assert render_fake.count(path_prefix="/v1/services") == 2
    render_fake.reset_log()
    assert render_fake.requests == []


def test_concurrent_clients_are_safe(make_render_fake: MakeRenderFake) -> None:
    # 200 mutations in one minute would exceed the 100/min bucket, so limits are off here.
    render_fake = make_render_fake(rate_limits=RateLimits(enabled=False))
    web = render_fake.add_service("authkit-web")
    failures: list[int] = []

    def writer(worker: int) -> None:
        with _client(render_fake) as http:
            for i in range(25):
                response = http.put(
                    f"/services/{web['id']}/env-vars/K_{worker}_{i}", json={"value": str(i)}
                )
                if response.status_code != 200:
                    failures.append(response.status_code)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(render_fake.env(web["id"])) == 200
    assert render_fake.count("PUT") == 200


# -- construction --------------------------------------------------------------------------


def test_context_manager_and_custom_construction() -> None:
    clock = ManualClock()
    with FakeRenderAPI(api_keys={"rnd_other"}, clock=clock, backend=NullBackend()) as fake:
        owner = fake.add_owner("Solo", type="user")
        assert owner["id"].startswith("usr-")
        with _client(fake) as http:
            assert http.get("/users").status_code == 401
        kept_alive = _client(fake, key="rnd_other")
        assert kept_alive.get(f"/owners/{owner['id']}").status_code == 200
    try:
        with pytest.raises(httpx.TransportError):
            kept_alive.get("/users")  # the pooled keep-alive connection is cut too
    finally:
        kept_alive.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.base_url}/users", timeout=1)
    fake.close()  # idempotent
    assert fake.internal_errors == []


# -- the real backend ----------------------------------------------------------------------


@pytest.mark.slow
def test_real_backend_creates_connectable_stores(
    make_render_fake: MakeRenderFake,
    pg: PgServer,
    redis_srv: RedisServer,
    pg_tls: PostgresTlsProxy,
    redis_tls: RedisTlsProxy,
) -> None:
    import psycopg
    import redis

    backend = RealBackend(
        pg_superuser_url=pg.superuser_url,
        pg_external_host=pg_tls.host,
        pg_external_port=pg_tls.port,
        redis_admin_url=redis_srv.url,
        redis_external_host=redis_tls.host,
        redis_external_port=redis_tls.port,
    )
    fake = make_render_fake(backend=backend)
    user = f"authkit_fake_{time.monotonic_ns()}"
    with _client(fake) as http:
        body = _pg_body(fake.owner_id, plan="basic_256mb", databaseUser=user)
        pg_store = http.post("/postgres", json=body).json()
        kv_store = http.post("/key-value", json=_kv_body(fake.owner_id)).json()
        pg_info = http.get(f"/postgres/{pg_store['id']}/connection-info").json()
        kv_info = http.get(f"/key-value/{kv_store['id']}/connection-info").json()

        external = pg_info["externalConnectionString"]
        assert external.startswith(f"postgresql://{user}:")
        with psycopg.connect(f"{external}?sslmode=require", connect_timeout=10) as conn:
            row = conn.execute("SELECT current_user, current_database()").fetchone()
        assert row == (user, pg_store["databaseName"])

        with redis.Redis.from_url(
            kv_info["externalConnectionString"], ssl_ca_certs=redis_tls.ca_path, socket_timeout=5
        ) as client:
            assert client.ping()
            assert client.acl_whoami() in (kv_store["id"], kv_store["id"].encode())

        assert http.delete(f"/postgres/{pg_store['id']}").status_code == 204
        assert http.delete(f"/key-value/{kv_store['id']}").status_code == 204

    with psycopg.connect(pg.superuser_url, autocommit=True) as admin:
        database = pg_store["databaseName"]
        assert (
            admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
            is None
        )
        assert admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user]).fetchone() is None
    with redis.Redis.from_url(redis_srv.url, socket_timeout=5) as admin_redis:
        assert kv_store["id"] not in [
            u.decode() if isinstance(u, bytes) else u for u in admin_redis.acl_users()
        ]
