"""The Neon, Supabase and Upstash fakes behave like the documented APIs (httpx against the real
HTTP servers), inject every fault kind, and hand out connection info that reaches real servers
when a store backend is given."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.conftest import PgServer, RedisServer
from tests.fakes.common import (
    ManualClock,
    NullBackend,
    StoreBackend,
    drop_after,
    drop_before,
    empty_body,
    malformed_json,
    served,
    slow,
    status,
)
from tests.fakes.local_backend import CloudFakes, LocalBackend
from tests.fakes.neon_api import FAKE_NEON_KEY, NeonFake
from tests.fakes.supabase_api import FAKE_SUPABASE_TOKEN, SupabaseFake
from tests.fakes.upstash_api import FAKE_UPSTASH_API_KEY, FAKE_UPSTASH_EMAIL, UpstashFake

# ------------------------------------------------------------------------------- fixtures


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def backend() -> NullBackend:
    return NullBackend()


def bearer_client(base_url: str, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=5
    ) as client:
        yield client


@pytest.fixture
def neon(clock: ManualClock, backend: NullBackend) -> Iterator[NeonFake]:
    yield from served(NeonFake(clock=clock, backend=backend, seed=7))


@pytest.fixture
def neon_client(neon: NeonFake) -> Iterator[httpx.Client]:
    yield from bearer_client(neon.base_url, FAKE_NEON_KEY)


@pytest.fixture
def supabase(clock: ManualClock) -> Iterator[SupabaseFake]:
    yield from served(SupabaseFake(clock=clock, seed=7))


@pytest.fixture
def supabase_client(supabase: SupabaseFake) -> Iterator[httpx.Client]:
    yield from bearer_client(supabase.base_url, FAKE_SUPABASE_TOKEN)


@pytest.fixture
def upstash(clock: ManualClock) -> Iterator[UpstashFake]:
    yield from served(UpstashFake(clock=clock, seed=7))


@pytest.fixture
def upstash_client(upstash: UpstashFake) -> Iterator[httpx.Client]:
    auth = (FAKE_UPSTASH_EMAIL, FAKE_UPSTASH_API_KEY)
    with httpx.Client(base_url=upstash.base_url, auth=auth, timeout=5) as client:
        yield client


def _neon_create(client: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    project = {
        "name": name,
        "region_id": "aws-us-east-2",
        "pg_version": 17,
        "branch": {"name": "main", "database_name": "authkit", "role_name": "authkit_owner"},
        **extra,
    }
    response = client.post("/projects", json={"project": project})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# ------------------------------------------------------------------------------- Neon


def test_neon_rejects_a_bad_key_and_never_logs_it(neon: NeonFake) -> None:
    response = httpx.get(
        f"{neon.base_url}/projects", headers={"Authorization": "Bearer wrong-key-123"}
    )
    assert response.status_code == 401
    assert set(response.json()) == {"request_id", "code", "message"}
    assert httpx.get(f"{neon.base_url}/projects").status_code == 401

    record = neon.requests[0]
    assert (record.method, record.path, record.auth_scheme, record.status) == (
        "GET",
        "/projects",
        "Bearer",
        401,
    )
    assert "wrong-key-123" not in repr(record)
    assert neon.count("GET", "/api/v2/projects") == neon.requests.count(path_prefix="/proj") == 2


def test_neon_project_becomes_ready_on_the_clock(
    neon: NeonFake, neon_client: httpx.Client, clock: ManualClock, backend: NullBackend
) -> None:
    created = _neon_create(neon_client, "authkit", org_id=neon.org_id)
    project_id = created["project"]["id"]
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{8}", project_id)
    assert {op["action"]: op["status"] for op in created["operations"]} == {
        "create_timeline": "running",
        "start_compute": "scheduling",
    }
    (endpoint,) = created["endpoints"]
    assert re.fullmatch(r"ep-[a-z]+-[a-z]+-[a-z0-9]{8}", endpoint["id"])
    assert endpoint["host"] == f"{endpoint['id']}.us-east-2.aws.neon.tech"
    assert endpoint["current_state"] == "init"
    (uri,) = created["connection_uris"]
    params = uri["connection_parameters"]
    password = created["roles"][0]["password"]
    assert params == {
        "database": "authkit",
        "password": password,
        "role": "authkit_owner",
        "host": endpoint["host"],
        "pooler_host": endpoint["host"].replace(endpoint["id"], endpoint["id"] + "-pooler"),
    }
    assert uri["connection_uri"] == (
        f"postgresql://authkit_owner:{password}@{endpoint['host']}/authkit?sslmode=require"
    )
    assert created["branch"]["primary"] is True
    assert created["databases"][0]["owner_name"] == "authkit_owner"
    assert [(c.database, c.user, c.password) for c in backend.postgres] == [
        ("authkit", "authkit_owner", password)
    ]

    def op_statuses() -> dict[str, str]:
        ops = []
        for op in created["operations"]:
            response = neon_client.get(f"/projects/{project_id}/operations/{op['id']}")
            assert response.status_code == 200
            ops.append(response.json()["operation"])
        return {op["action"]: op["status"] for op in ops}

    clock.advance(1.0)
    assert op_statuses() == {"create_timeline": "running", "start_compute": "running"}
    clock.advance(1.0)
    assert op_statuses() == {"create_timeline": "finished", "start_compute": "finished"}
    listed = neon_client.get(f"/projects/{project_id}/operations").json()["operations"]
    assert {op["status"] for op in listed} == {"finished"}
    assert neon_client.get(f"/projects/{project_id}/endpoints").json()["endpoints"][0][
        "current_state"
    ] == ("active")
    assert neon_client.get(f"/projects/{project_id}").json()["project"]["name"] == "authkit"

    pooled = neon_client.get(
        f"/projects/{project_id}/connection_uri",
        params={"database_name": "authkit", "role_name": "authkit_owner", "pooled": "true"},
    )
    assert pooled.json() == {
        "uri": f"postgresql://authkit_owner:{password}@{params['pooler_host']}/authkit"
        "?sslmode=require"
    }
    deleted = neon_client.delete(f"/projects/{project_id}")
    assert deleted.status_code == 200 and deleted.json()["project"]["id"] == project_id
    assert backend.postgres == []
    assert neon_client.get(f"/projects/{project_id}").status_code == 404


def test_neon_mutations_answer_423_while_operations_run(
    neon_client: httpx.Client, clock: ManualClock
) -> None:
    project_id = _neon_create(neon_client, "authkit")["project"]["id"]
    body = {"branch": {"name": "preview/pr-1"}, "endpoints": [{"type": "read_write"}]}
    locked = neon_client.post(f"/projects/{project_id}/branches", json=body)
    assert locked.status_code == 423
    assert "running" in locked.json()["message"]
    assert neon_client.delete(f"/projects/{project_id}").status_code == 423
    clock.advance(2.0)
    assert neon_client.post(f"/projects/{project_id}/branches", json=body).status_code == 201


def test_neon_search_is_partial_so_clients_must_match_names_exactly(
    neon: NeonFake, neon_client: httpx.Client
) -> None:
    for name in ("authkit", "authkit-db-pr-1", "other"):
        neon.add_project(name)
    found = neon_client.get("/projects", params={"search": "authkit"}).json()
    assert sorted(p["name"] for p in found["projects"]) == ["authkit", "authkit-db-pr-1"]
    assert [p["name"] for p in found["projects"] if p["name"] == "authkit"] == ["authkit"]

    names: list[str] = []
    cursor = ""
    for _ in range(10):  # three one-item pages and an empty one; a fake that loops fails here
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = neon_client.get("/projects", params=params).json()
        names += [p["name"] for p in page["projects"]]
        cursor = page["pagination"]["cursor"]
        if len(page["projects"]) < 1:
            break
    else:
        raise AssertionError(f"paging never ended: {names}")
    assert names == ["authkit", "authkit-db-pr-1", "other"]

    for n in range(9):
        neon.add_project(f"filler-{n}")
    assert len(neon_client.get("/projects").json()["projects"]) == 10  # default limit
    assert neon_client.get("/projects", params={"limit": "401"}).status_code == 400


def test_neon_org_id_can_be_required(clock: ManualClock) -> None:
    with NeonFake(clock=clock, require_org_id=True) as neon:
        headers = {"Authorization": f"Bearer {FAKE_NEON_KEY}"}
        with httpx.Client(base_url=neon.base_url, headers=headers) as client:
            (org,) = client.get("/users/me/organizations").json()["organizations"]
            assert org["id"] == neon.org_id and org["id"].startswith("org-")
            missing = client.post("/projects", json={"project": {"name": "authkit"}})
            assert missing.status_code == 400
            assert "org_id is required" in missing.json()["message"]
            assert client.get("/projects").status_code == 400
            _neon_create(client, "authkit", org_id=org["id"])
            listed = client.get("/projects", params={"org_id": org["id"]}).json()
            assert [p["name"] for p in listed["projects"]] == ["authkit"]
            assert len(client.get("/regions").json()["regions"]) >= 8


def test_neon_branches_duplicate_409_default_undeletable(
    neon: NeonFake, neon_client: httpx.Client, clock: ManualClock, backend: NullBackend
) -> None:
    created = neon.add_project("authkit", database_name="authkit", role_name="authkit_owner")
    project_id = created["project"]["id"]
    default_id = created["branch"]["id"]
    body = {
        "branch": {"name": "preview/pr-1", "parent_id": default_id},
        "endpoints": [{"type": "read_write"}],
    }
    made = neon_client.post(f"/projects/{project_id}/branches", json=body)
    assert made.status_code == 201
    branch = made.json()
    assert branch["branch"]["parent_id"] == default_id
    assert branch["endpoints"][0]["id"] != created["endpoints"][0]["id"]
    assert branch["connection_uris"][0]["connection_parameters"]["role"] == "authkit_owner"
    assert {op["action"] for op in branch["operations"]} == {"create_branch", "start_compute"}
    clock.advance(2.0)

    duplicate = neon_client.post(f"/projects/{project_id}/branches", json=body)
    assert duplicate.status_code == 409
    assert duplicate.json()["message"] == "branch already exists"

    found = neon_client.get(f"/projects/{project_id}/branches", params={"search": "pr-1"})
    assert [b["name"] for b in found.json()["branches"]] == ["preview/pr-1"]
    branch_id = branch["branch"]["id"]
    revealed = neon_client.get(
        f"/projects/{project_id}/branches/{branch_id}/roles/authkit_owner/reveal_password"
    )
    assert revealed.json() == {"password": created["roles"][0]["password"]}

    assert neon_client.delete(f"/projects/{project_id}/branches/{default_id}").status_code == 400
    assert len(backend.postgres) == 2
    deleted = neon_client.delete(f"/projects/{project_id}/branches/{branch_id}")
    assert deleted.status_code == 200
    assert deleted.json()["branch"]["id"] == branch_id
    assert len(backend.postgres) == 1
    gone = neon_client.get(f"/projects/{project_id}/branches/{branch_id}")
    assert gone.status_code == 404


# ------------------------------------------------------------------------------- Supabase


def test_supabase_rejects_a_bad_token(supabase: SupabaseFake) -> None:
    response = httpx.get(
        f"{supabase.base_url}/v1/projects", headers={"Authorization": "Bearer sbp_nope"}
    )
    assert response.status_code == 401
    assert set(response.json()) == {"message"}


def test_supabase_project_comes_up_then_pooler_appears(
    supabase: SupabaseFake, supabase_client: httpx.Client, clock: ManualClock
) -> None:
    (org,) = supabase_client.get("/v1/organizations").json()
    assert org["slug"] == supabase.org_slug and set(org) == {"id", "slug", "name"}
    request = {
        "db_pass": "s3cretPassw0rd16",
        "name": "authkit",
        "organization_slug": org["slug"],
        "region": "eu-central-1",
    }
    created = supabase_client.post("/v1/projects", json=request)
    assert created.status_code == 201
    project = created.json()
    ref = project["ref"]
    assert re.fullmatch(r"[a-z]{20}", ref) and project["id"] == ref
    assert project["status"] == "UNKNOWN"
    assert {k for k in project if k != "created_at"} == {
        "id",
        "ref",
        "organization_id",
        "organization_slug",
        "name",
        "region",
        "status",
    }

    def get() -> dict[str, Any]:
        body: dict[str, Any] = supabase_client.get(f"/v1/projects/{ref}").json()
        return body

    clock.advance(1.0)
    assert get()["status"] == "COMING_UP"
    not_ready = supabase_client.delete(f"/v1/projects/{ref}")
    assert not_ready.status_code == 400
    assert not_ready.json() == {"message": "Project not ready for deletion."}

    clock.advance(4.0)
    healthy = get()
    assert healthy["status"] == "ACTIVE_HEALTHY"
    assert healthy["database"]["host"] == f"db.{ref}.supabase.co"
    pooler_path = f"/v1/projects/{ref}/config/database/pooler"
    assert supabase_client.get(pooler_path).json() == []

    clock.advance(2.0)
    (primary,) = supabase_client.get(pooler_path).json()
    assert primary["database_type"] == "PRIMARY"
    assert primary["db_user"] == f"postgres.{ref}"
    assert primary["db_host"] == "aws-0-eu-central-1.pooler.supabase.com"
    assert primary["db_port"] == 6543
    assert primary["pool_mode"] == "transaction"
    assert primary["connection_string"] == (
        f"postgresql://postgres.{ref}:[YOUR-PASSWORD]"
        "@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
    )
    assert supabase.credentials(ref).password == "s3cretPassw0rd16"
    assert [p["name"] for p in supabase_client.get("/v1/projects").json()] == ["authkit"]

    deleted = supabase_client.delete(f"/v1/projects/{ref}")
    assert deleted.status_code == 200
    assert deleted.json()["ref"] == ref
    assert supabase_client.get(f"/v1/projects/{ref}").status_code == 404
    assert supabase_client.delete(f"/v1/projects/{ref}").status_code == 404


def test_supabase_create_validates_the_body(
    supabase: SupabaseFake, supabase_client: httpx.Client
) -> None:
    base = {"name": "authkit", "organization_slug": supabase.org_slug, "region": "us-east-1"}
    assert supabase_client.post("/v1/projects", json=base).status_code == 400  # no db_pass
    extra = {**base, "db_pass": "x" * 16, "surprise": 1}
    rejected = supabase_client.post("/v1/projects", json=extra)
    assert rejected.status_code == 400 and "surprise" in rejected.json()["message"]
    bad_region = {**base, "db_pass": "x" * 16, "region": "mars-1"}
    assert supabase_client.post("/v1/projects", json=bad_region).status_code == 400
    assert supabase_client.get("/v1/projects").json() == []


def test_supabase_rate_limit_headers_and_429(
    supabase_client: httpx.Client, clock: ManualClock
) -> None:
    first = supabase_client.get("/v1/organizations")
    assert (
        first.headers["X-RateLimit-Limit"],
        first.headers["X-RateLimit-Remaining"],
        first.headers["X-RateLimit-Reset"],
    ) == ("120", "119", "60")

    with SupabaseFake(clock=clock, rate_limit=3) as fake:
        headers = {"Authorization": f"Bearer {FAKE_SUPABASE_TOKEN}"}
        with httpx.Client(base_url=fake.base_url, headers=headers) as client:
            remaining = [client.get("/v1/projects").headers["X-RateLimit-Remaining"]]
            clock.advance(10)
            remaining += [client.get("/v1/projects").headers["X-RateLimit-Remaining"]]
            remaining += [client.get("/v1/projects").headers["X-RateLimit-Remaining"]]
            assert remaining == ["2", "1", "0"]
            limited = client.get("/v1/projects")
            assert limited.status_code == 429
            assert set(limited.json()) == {"message"}
            assert limited.headers["X-RateLimit-Remaining"] == "0"
            assert limited.headers["X-RateLimit-Reset"] == "50"
            # per endpoint: another endpoint has its own window
            assert client.get("/v1/organizations").status_code == 200
            clock.advance(50)
            assert client.get("/v1/projects").status_code == 200


# ------------------------------------------------------------------------------- Upstash


def test_upstash_rejects_bad_credentials_with_a_string_body(upstash: UpstashFake) -> None:
    url = f"{upstash.base_url}/redis/databases"
    wrong = httpx.get(url, auth=(FAKE_UPSTASH_EMAIL, "not-the-key"))
    assert wrong.status_code == 401
    assert isinstance(wrong.json(), str)
    assert httpx.get(url).status_code == 401
    bearer = httpx.get(url, headers={"Authorization": f"Bearer {FAKE_UPSTASH_API_KEY}"})
    assert bearer.status_code == 401
    assert upstash.requests[0].auth_scheme == "Basic"
    assert FAKE_UPSTASH_API_KEY not in repr(upstash.requests)


def test_upstash_regional_creation_is_deprecated(upstash_client: httpx.Client) -> None:
    response = upstash_client.post(
        "/redis/database",
        json={"database_name": "authkit", "region": "eu-west-1", "primary_region": "eu-west-1"},
    )
    assert response.status_code == 400
    assert response.json() == "regional db creation is deprecated"
    missing = upstash_client.post("/redis/database", json={"database_name": "authkit"})
    assert missing.status_code == 400 and isinstance(missing.json(), str)
    assert upstash_client.get("/redis/databases").json() == []


def test_upstash_create_get_list_delete(upstash_client: httpx.Client) -> None:
    created = upstash_client.post(
        "/redis/database",
        json={"database_name": "authkit", "platform": "aws", "primary_region": "us-east-1"},
    )
    assert created.status_code == 200
    db = created.json()
    assert db["state"] == "active" and db["tls"] is True and db["region"] == "global"
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{5}\.upstash\.io", db["endpoint"])
    assert db["port"] == 6379 and db["password"] and db["rest_token"]
    # the MCP server's spelling: name + region "global"
    legacy = upstash_client.post(
        "/redis/database",
        json={"name": "authkit-cache", "region": "global", "primary_region": "eu-central-1"},
    )
    assert legacy.status_code == 200

    listed = upstash_client.get("/redis/databases").json()
    assert isinstance(listed, list) and len(listed) == 2
    assert [d["database_id"] for d in listed if d["database_name"] == "authkit"] == [
        db["database_id"]
    ]
    hidden = upstash_client.get(
        f"/redis/database/{db['database_id']}", params={"credentials": "hide"}
    ).json()
    assert not {"password", "rest_token", "read_only_rest_token"} & set(hidden)
    assert hidden["endpoint"] == db["endpoint"]

    deleted = upstash_client.delete(f"/redis/database/{db['database_id']}")
    assert deleted.status_code == 200 and deleted.json() == "OK"
    assert upstash_client.get(f"/redis/database/{db['database_id']}").status_code == 404


# ------------------------------------------------------------------------------- faults


def test_fault_status_is_not_applied(neon: NeonFake, neon_client: httpx.Client) -> None:
    neon.inject("POST", r"/projects", status(429))
    refused = neon_client.post("/projects", json={"project": {"name": "authkit"}})
    assert refused.status_code == 429
    assert set(refused.json()) == {"request_id", "code", "message"}
    assert neon.projects_named("authkit") == []
    assert neon.requests.last().fault == "status"
    _neon_create(neon_client, "authkit")  # only once


def test_fault_status_with_custom_body_and_headers(
    upstash: UpstashFake, upstash_client: httpx.Client
) -> None:
    upstash.inject("*", r"/redis/.*", status(503, "maintenance", {"Retry-After": "2"}), times=2)
    for _ in range(2):
        response = upstash_client.get("/redis/databases")
        assert (response.status_code, response.json()) == (503, "maintenance")
        assert response.headers["Retry-After"] == "2"
    assert upstash_client.get("/redis/databases").status_code == 200


def test_fault_slow_triggers_client_timeouts(
    supabase: SupabaseFake, supabase_client: httpx.Client
) -> None:
    supabase.inject("GET", r"/v1/organizations", slow(0.5))
    with pytest.raises(httpx.ReadTimeout):
        supabase_client.get("/v1/organizations", timeout=0.1)
    assert supabase_client.get("/v1/organizations").status_code == 200


def test_fault_drop_before_does_not_apply(
    supabase: SupabaseFake, supabase_client: httpx.Client
) -> None:
    supabase.inject("POST", r"/v1/projects", drop_before())
    body = {"db_pass": "p" * 16, "name": "authkit", "organization_slug": supabase.org_slug}
    with pytest.raises(httpx.RemoteProtocolError):
        supabase_client.post("/v1/projects", json=body)
    assert supabase_client.get("/v1/projects").json() == []
    assert supabase.requests.matching("POST")[0].status is None


def test_fault_drop_after_applies(upstash: UpstashFake, upstash_client: httpx.Client) -> None:
    upstash.inject("POST", r"/redis/database", drop_after())
    body = {"database_name": "authkit", "platform": "aws", "primary_region": "us-east-1"}
    with pytest.raises(httpx.RemoteProtocolError):
        upstash_client.post("/redis/database", json=body)
    assert [d["database_name"] for d in upstash_client.get("/redis/databases").json()] == [
        "authkit"
    ]


def test_fault_malformed_json(neon: NeonFake, neon_client: httpx.Client) -> None:
    neon.inject("GET", r"/projects", malformed_json())
    response = neon_client.get("/projects")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        response.json()


def test_fault_empty_body(upstash: UpstashFake, upstash_client: httpx.Client) -> None:
    injected = upstash.inject("GET", r"/redis/databases", empty_body())
    response = upstash_client.get("/redis/databases")
    assert (response.status_code, response.content) == (200, b"")
    assert injected.fired == 1 and injected.remaining == 0


# ------------------------------------------------------------------------------- real backend


def _can_login(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SELECT current_user").fetchone() is not None
    except psycopg.OperationalError:
        return False


@pytest.mark.slow
def test_connection_info_reaches_real_servers_through_a_backend(
    pg: PgServer, redis_srv: RedisServer, clock: ManualClock
) -> None:
    store: StoreBackend = LocalBackend(pg, redis_srv)

    with NeonFake(clock=clock, backend=store, uri_sslmode=None, operation_seconds=0) as neon:
        headers = {"Authorization": f"Bearer {FAKE_NEON_KEY}"}
        with httpx.Client(base_url=neon.base_url, headers=headers) as client:
            created = _neon_create(client, "authkit")
            project_id = created["project"]["id"]
            uri = created["connection_uris"][0]["connection_uri"]
            assert f"@{pg.host}:{pg.port}/" in uri
            assert _can_login(uri)
            params = created["connection_uris"][0]["connection_parameters"]
            pooled = client.get(
                f"/projects/{project_id}/connection_uri",
                params={
                    "database_name": params["database"],
                    "role_name": params["role"],
                    "pooled": "true",
                },
            ).json()["uri"]
            assert _can_login(pooled)
            branch = client.post(
                f"/projects/{project_id}/branches",
                json={"branch": {"name": "preview/pr-1"}, "endpoints": [{"type": "read_write"}]},
            ).json()
            branch_uri = branch["connection_uris"][0]["connection_uri"]
            assert branch_uri != uri and _can_login(branch_uri)
            assert client.delete(f"/projects/{project_id}").status_code == 200
            assert not _can_login(uri) and not _can_login(branch_uri)

    with SupabaseFake(clock=clock, backend=store, unknown_seconds=0, coming_up_seconds=0) as sb:
        sb.pooler_delay_seconds = 0
        headers = {"Authorization": f"Bearer {FAKE_SUPABASE_TOKEN}"}
        with httpx.Client(base_url=sb.base_url, headers=headers) as client:
            db_pass = "Chosen-by-client-42"
            ref = client.post(
                "/v1/projects",
                json={"db_pass": db_pass, "name": "authkit", "organization_slug": sb.org_slug},
            ).json()["ref"]
            (primary,) = client.get(f"/v1/projects/{ref}/config/database/pooler").json()
            assert (primary["db_host"], primary["db_port"]) == (pg.host, pg.port)
            url = primary["connection_string"].replace("[YOUR-PASSWORD]", db_pass)
            assert _can_login(url)
            assert client.delete(f"/v1/projects/{ref}").status_code == 200
            assert not _can_login(url)

    with UpstashFake(clock=clock, backend=store) as upstash:
        auth = (FAKE_UPSTASH_EMAIL, FAKE_UPSTASH_API_KEY)
        with httpx.Client(base_url=upstash.base_url, auth=auth) as client:
            db = client.post(
                "/redis/database",
                json={"database_name": "authkit", "platform": "aws", "primary_region": "us-east-1"},
            ).json()
            assert (db["endpoint"], db["port"]) == (redis_srv.host, redis_srv.port)
            username = upstash.credentials(db["database_id"]).username
            with redis.Redis(
                host=db["endpoint"],
                port=db["port"],
                username=username,
                password=db["password"],
                socket_timeout=5,
            ) as r:
                assert r.ping() is True
            assert client.delete(f"/redis/database/{db['database_id']}").json() == "OK"
            with redis.Redis.from_url(redis_srv.url, protocol=2) as admin:
                assert admin.execute_command("ACL", "GETUSER", username) is None


def test_connect_host_overrides_realistic_hosts(clock: ManualClock) -> None:
    with (
        NeonFake(clock=clock, connect_host="127.0.0.1", connect_port=6432) as neon,
        UpstashFake(clock=clock, connect_host="127.0.0.1", connect_port=6380) as upstash,
    ):
        created = neon.add_project("authkit")
        (uri,) = created["connection_uris"]
        assert uri["connection_parameters"]["host"] == "127.0.0.1"
        assert "@127.0.0.1:6432/neondb" in uri["connection_uri"]
        assert created["endpoints"][0]["host"].endswith(".us-east-2.aws.neon.tech")
        db = upstash.add_database("authkit")
        assert (db["endpoint"], db["port"]) == ("127.0.0.1", 6380)


def test_concurrent_creates_are_consistent(upstash: UpstashFake) -> None:
    def create(n: int) -> str:
        with httpx.Client(
            base_url=upstash.base_url, auth=(FAKE_UPSTASH_EMAIL, FAKE_UPSTASH_API_KEY)
        ) as client:
            body = {"database_name": f"db-{n}", "platform": "aws", "primary_region": "us-east-1"}
            database_id: str = client.post("/redis/database", json=body).json()["database_id"]
            return database_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(create, range(24)))
    assert len(set(ids)) == 24
    assert upstash.count("POST", "/v2/redis/database") == 24
    assert len(upstash.databases_named("db-3")) == 1


def test_closed_fake_stops_answering_keep_alive_clients(clock: ManualClock) -> None:
    fake = SupabaseFake(clock=clock)
    headers = {"Authorization": f"Bearer {FAKE_SUPABASE_TOKEN}"}
    with httpx.Client(base_url=fake.base_url, headers=headers, timeout=2) as client:
        assert client.get("/v1/organizations").status_code == 200
        fake.close()
        fake.close()  # idempotent
        with pytest.raises(httpx.TransportError):
            client.get("/v1/organizations")


def test_upstash_password_opens_only_its_own_database(cloud_fakes: CloudFakes) -> None:
    """Each Upstash database has its own endpoint and password, and clients all log in as
    `default`: another database's password must not open it (a client that wrote the wrong
    database's password into REDIS_URL must fail verification)."""
    auth = (FAKE_UPSTASH_EMAIL, FAKE_UPSTASH_API_KEY)
    with httpx.Client(base_url=cloud_fakes.upstash.base_url, auth=auth) as client:
        first, second = (
            client.post(
                "/redis/database",
                json={"database_name": name, "platform": "aws", "primary_region": "us-east-1"},
            ).json()
            for name in ("first", "second")
        )
    assert (first["endpoint"], first["port"]) != (second["endpoint"], second["port"])

    def ping(db: dict[str, Any], password: str) -> bool:
        url = f"rediss://default:{password}@{db['endpoint']}:{db['port']}"
        with redis.Redis.from_url(
            url, socket_timeout=5, ssl_ca_certs=os.environ["SSL_CERT_FILE"]
        ) as r:
            return bool(r.ping())

    assert ping(first, first["password"]) and ping(second, second["password"])
    with pytest.raises(redis.AuthenticationError):
        ping(second, first["password"])
    with pytest.raises(redis.AuthenticationError):
        ping(first, second["password"])
