"""Neon, Supabase and Upstash providers on their own: URL rules, regions, readiness, retries,
idempotency lookups, the registry, and the `check` hints for their hosts. The API fakes run in
realistic mode here (provider host names, NullBackend) on a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from authkit_setup.errors import CredentialsError, UsageError
from authkit_setup.output import Output
from authkit_setup.providers.base import ConnectionInfo, Kind, Readiness, StoreSpec
from authkit_setup.providers.neon import NeonClient, NeonStores, database_urls, pooled_host
from authkit_setup.providers.supabase import SupabaseClient, SupabaseStores
from authkit_setup.providers.upstash import UpstashClient, UpstashStores, endpoint_host, redis_url
from tests.fakes.common import ManualClock, served, status
from tests.fakes.neon_api import FAKE_NEON_KEY, NeonFake
from tests.fakes.supabase_api import FAKE_SUPABASE_TOKEN, SupabaseFake
from tests.fakes.upstash_api import FAKE_UPSTASH_API_KEY, FAKE_UPSTASH_EMAIL, UpstashFake
from tests.helpers import run_cli

PG = StoreSpec(Kind.POSTGRES, "authkit-db", "aws-us-east-2", "default")
KV = StoreSpec(Kind.REDIS, "authkit-redis", "us-east-2", "default")


class Sleeps:
    """An injected `sleep` that records the waits and moves the fakes' clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleeps(clock: ManualClock) -> Sleeps:
    return Sleeps(clock)


@pytest.fixture
def neon_fake(clock: ManualClock) -> Iterator[NeonFake]:
    yield from served(NeonFake(clock=clock, seed=3))


@pytest.fixture
def neon(neon_fake: NeonFake, sleeps: Sleeps) -> Iterator[NeonStores]:
    client = NeonClient(token=FAKE_NEON_KEY, base_url=neon_fake.base_url, sleep=sleeps)
    yield NeonStores(client)
    client.close()


@pytest.fixture
def supabase_fake(clock: ManualClock) -> Iterator[SupabaseFake]:
    yield from served(SupabaseFake(clock=clock, seed=3))


def _supabase(fake: SupabaseFake, sleeps: Sleeps, **kwargs: object) -> SupabaseStores:
    client = SupabaseClient(token=FAKE_SUPABASE_TOKEN, base_url=fake.base_url, sleep=sleeps)
    return SupabaseStores(client, password_factory=lambda: "Generated-Pass-123", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def upstash_fake(clock: ManualClock) -> Iterator[UpstashFake]:
    yield from served(UpstashFake(clock=clock, seed=3))


@pytest.fixture
def upstash(upstash_fake: UpstashFake, sleeps: Sleeps) -> Iterator[UpstashStores]:
    client = UpstashClient(
        email=FAKE_UPSTASH_EMAIL,
        api_key=FAKE_UPSTASH_API_KEY,
        base_url=upstash_fake.base_url,
        sleep=sleeps,
    )
    yield UpstashStores(client)
    client.close()


def q(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# ------------------------------------------------------------------------------- regions


@pytest.mark.parametrize(
    ("render_region", "neon", "aws"),
    [
        ("oregon", "aws-us-west-2", "us-west-2"),
        ("ohio", "aws-us-east-2", "us-east-2"),
        ("virginia", "aws-us-east-1", "us-east-1"),
        ("frankfurt", "aws-eu-central-1", "eu-central-1"),
        ("singapore", "aws-ap-southeast-1", "ap-southeast-1"),
    ],
)
def test_each_render_region_maps_to_each_providers_spelling(
    render_region: str, neon: str, aws: str
) -> None:
    assert NeonStores(None).region_for(render_region) == neon  # type: ignore[arg-type]
    assert SupabaseStores(None).region_for(render_region) == aws  # type: ignore[arg-type]
    assert UpstashStores(None).region_for(render_region) == aws  # type: ignore[arg-type]


def test_provider_region_override_in_either_spelling() -> None:
    assert NeonStores(None, region="eu-west-2").region_for("ohio") == "aws-eu-west-2"  # type: ignore[arg-type]
    assert NeonStores(None, region="azure-gwc").region_for("ohio") == "azure-gwc"  # type: ignore[arg-type]
    assert UpstashStores(None, region="aws-sa-east-1").region_for("ohio") == "sa-east-1"  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not a Supabase region"):
        SupabaseStores(None, region="azure-gwc").region_for("ohio")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- Neon


def test_neon_urls_pooled_host_same_port_sslmode_and_pgbouncer() -> None:
    direct = "postgresql://authkit_user:pw@ep-cool-dawn-a1b2c3d4.us-east-2.aws.neon.tech/authkit"
    pooled = "postgresql://authkit_user:pw@ep-cool-dawn-a1b2c3d4.us-east-2.aws.neon.tech/authkit"
    app, migrations = database_urls(direct, pooled)  # the API forgot -pooler: we add it
    assert urlsplit(app).hostname == "ep-cool-dawn-a1b2c3d4-pooler.us-east-2.aws.neon.tech"
    assert urlsplit(app).port is None  # Neon pools on 5432 too: no 6543
    assert q(app) == {"sslmode": ["require"], "pgbouncer": ["true"]}
    assert urlsplit(migrations).hostname == "ep-cool-dawn-a1b2c3d4.us-east-2.aws.neon.tech"
    assert q(migrations) == {"sslmode": ["require"]}
    # An sslmode Neon chose is kept; a cell label in the host is fine.
    app, _ = database_urls(
        direct,
        "postgresql://u:p@ep-x-1-pooler.c-4.ap-southeast-1.aws.neon.tech/db?sslmode=verify-full",
    )
    assert urlsplit(app).hostname == "ep-x-1-pooler.c-4.ap-southeast-1.aws.neon.tech"
    assert q(app)["sslmode"] == ["verify-full"]
    assert pooled_host("127.0.0.1") == "127.0.0.1"


def test_neon_create_wait_and_urls_on_the_fake(
    neon: NeonStores, neon_fake: NeonFake, clock: ManualClock
) -> None:
    neon_fake.uri_sslmode = None  # like the 2024 recording: no sslmode in the URIs
    store = neon.create(PG)
    assert store.created and store.readiness is Readiness.PENDING
    assert store.region == "aws-us-east-2"
    clock.advance(2.0)
    assert neon.refresh(store).readiness is Readiness.READY
    info = neon.connection_info(store)
    project_id = store.id
    creds = neon_fake.credentials(project_id)
    assert urlsplit(info.app_url).password == creds.password
    assert "-pooler." in urlsplit(info.app_url).hostname  # type: ignore[operator]
    assert q(info.app_url) == {"sslmode": ["require"], "pgbouncer": ["true"]}
    assert "-pooler" not in info.extra_env["DIRECT_URL"]
    assert q(info.extra_env["DIRECT_URL"]) == {"sslmode": ["require"]}
    body = neon_fake.requests.last("POST", "/projects").body["project"]
    assert body["region_id"] == "aws-us-east-2" and body["pg_version"] == 16


def test_neon_find_matches_names_exactly_and_pages(neon: NeonStores, neon_fake: NeonFake) -> None:
    neon_fake.add_project("authkit-db-old")
    neon_fake.add_project("my-authkit-db")
    assert neon.find(Kind.POSTGRES, "authkit-db") == []
    neon_fake.add_project("authkit-db")
    (found,) = neon.find(Kind.POSTGRES, "authkit-db")
    assert found.name == "authkit-db" and found.readiness is Readiness.READY
    listing = [r for r in neon_fake.requests if r.path == "/projects"][-1]
    assert listing.query["search"] == ["authkit-db"] and listing.query["limit"] == ["400"]


def test_neon_423_and_429_are_retried_even_for_create(
    neon: NeonStores, neon_fake: NeonFake, sleeps: Sleeps
) -> None:
    neon_fake.inject("POST", "/projects", status(423), times=2)
    neon_fake.inject("GET", "/projects", status(429), times=1)
    assert neon.find(Kind.POSTGRES, "authkit-db") == []
    neon.create(PG)
    assert neon_fake.count("POST", "/projects") == 3
    assert len(neon_fake.projects_named("authkit-db")) == 1
    assert len(sleeps.waits) == 3


def test_neon_failed_operation_fails_the_wait(
    neon: NeonStores, neon_fake: NeonFake, clock: ManualClock
) -> None:
    neon_fake.operation_final_status = "failed"
    store = neon.create(PG)
    clock.advance(5)
    fresh = neon.refresh(store)
    assert fresh.readiness is Readiness.FAILED and "failed" in fresh.status


def test_neon_org_id_required(clock: ManualClock, sleeps: Sleeps) -> None:
    notices: list[str] = []
    with NeonFake(clock=clock, require_org_id=True, operation_seconds=0) as fake:
        client = NeonClient(token=FAKE_NEON_KEY, base_url=fake.base_url, sleep=sleeps)
        stores = NeonStores(client, on_notice=notices.append)
        assert stores.find(Kind.POSTGRES, "authkit-db") == []  # the only org is used
        assert stores.org_id == fake.org_id and fake.org_id in notices[0]
        stores.create(PG)
        assert fake.requests.last("POST", "/projects").body["project"]["org_id"] == fake.org_id

        fake.add_organization("Second Org")
        other = NeonStores(client)
        with pytest.raises(CredentialsError, match="--neon-org-id") as caught:
            other.find(Kind.POSTGRES, "authkit-db")
        assert "NEON_ORG_ID" in caught.value.message and "Second Org" in str(caught.value.hint)
        client.close()


def test_neon_wrong_database_names_say_which_flags(neon: NeonStores, neon_fake: NeonFake) -> None:
    neon_fake.add_project("authkit-db")  # Neon's defaults: neondb / neondb_owner
    (store,) = neon.find(Kind.POSTGRES, "authkit-db")
    with pytest.raises(UsageError, match="no database 'authkit'") as caught:
        neon.connection_info(store)
    assert "--database" in str(caught.value.hint)


# ------------------------------------------------------------------------------- Supabase


def test_supabase_transaction_pooler_with_our_password_and_session_direct_url(
    supabase_fake: SupabaseFake, sleeps: Sleeps, clock: ManualClock
) -> None:
    stores = _supabase(supabase_fake, sleeps)
    spec = StoreSpec(Kind.POSTGRES, "authkit-db", "us-east-2", "default")
    store = stores.create(spec)
    body = supabase_fake.requests.last("POST", "/v1/projects").body
    assert body == {
        "name": "authkit-db",
        "organization_slug": supabase_fake.org_slug,
        "db_pass": "Generated-Pass-123",
        "region": "us-east-2",
    }
    assert store.readiness is Readiness.PENDING and store.status == "UNKNOWN"
    clock.advance(5.5)  # ACTIVE_HEALTHY, but the pooler list is still empty
    fresh = stores.refresh(store)
    assert fresh.readiness is Readiness.PENDING and "pooler" in fresh.status
    clock.advance(2)
    assert stores.refresh(store).readiness is Readiness.READY
    info = stores.connection_info(store)
    app = urlsplit(info.app_url)
    assert (app.username, app.password, app.port) == (
        f"postgres.{store.id}",
        "Generated-Pass-123",
        6543,
    )
    assert app.hostname == "aws-0-us-east-2.pooler.supabase.com"  # from the API, not the region
    assert q(info.app_url) == {"sslmode": ["require"], "pgbouncer": ["true"]}
    direct = urlsplit(info.extra_env["DIRECT_URL"])
    assert (direct.hostname, direct.port) == (app.hostname, 5432)  # session mode, IPv4
    assert q(info.extra_env["DIRECT_URL"]) == {"sslmode": ["require"]}
    assert not direct.hostname.endswith(".supabase.co")  # type: ignore[union-attr]  # IPv6-only


def test_supabase_failed_project_and_exact_name_in_the_org(
    supabase_fake: SupabaseFake, sleeps: Sleeps
) -> None:
    stores = _supabase(supabase_fake, sleeps)
    other_org = supabase_fake.add_organization("Other")["slug"]
    supabase_fake.add_project("authkit-db", "x" * 12, organization_slug=other_org)
    supabase_fake.add_project("authkit-db-2", "x" * 12)
    stores = _supabase(supabase_fake, sleeps, org=supabase_fake.org_slug, db_password="y" * 12)
    assert stores.find(Kind.POSTGRES, "authkit-db") == []
    ref = supabase_fake.add_project("authkit-db", "y" * 12)["ref"]
    supabase_fake.set_status(ref, "INIT_FAILED")
    (found,) = stores.find(Kind.POSTGRES, "authkit-db")
    assert found.readiness is Readiness.FAILED


def test_supabase_org_must_be_named_when_there_are_several(
    supabase_fake: SupabaseFake, sleeps: Sleeps
) -> None:
    supabase_fake.add_organization("Second", slug="second-org")
    with pytest.raises(CredentialsError, match="--supabase-org") as caught:
        _supabase(supabase_fake, sleeps).find(Kind.POSTGRES, "authkit-db")
    assert "SUPABASE_ORG" in caught.value.message and "second-org" in str(caught.value.hint)
    by_name = _supabase(supabase_fake, sleeps, org="SECOND")
    assert by_name.org_slug == "second-org"
    with pytest.raises(UsageError, match="not one of your"):
        _ = _supabase(supabase_fake, sleeps, org="nope").org_slug


def test_supabase_password_recovered_only_from_a_matching_url(
    supabase_fake: SupabaseFake, sleeps: Sleeps
) -> None:
    ref = supabase_fake.add_project("authkit-db", "Secret-From-Before-1", region="us-east-2")["ref"]
    stores = _supabase(supabase_fake, sleeps)
    with pytest.raises(CredentialsError, match="SUPABASE_DB_PASSWORD") as caught:
        stores.find(Kind.POSTGRES, "authkit-db")  # no password anywhere: fail at the plan
    assert ref in caught.value.message and "reset it" in str(caught.value.hint)
    stores.recover_password(["postgresql://someone:other@db.example.com:5432/app"])
    (store,) = stores.find(Kind.POSTGRES, "authkit-db")
    with pytest.raises(CredentialsError, match="SUPABASE_DB_PASSWORD"):
        stores.connection_info(store)
    written = (
        f"postgresql://postgres.{store.id}:Secret-From-Before-1@"
        f"aws-0-us-east-2.pooler.supabase.com:6543/postgres?pgbouncer=true"
    )
    stores.recover_password([written])
    assert urlsplit(stores.connection_info(store).app_url).password == "Secret-From-Before-1"


def test_supabase_create_that_dropped_still_knows_its_password(
    supabase_fake: SupabaseFake, sleeps: Sleeps, clock: ManualClock
) -> None:
    from authkit_setup.pipeline.provision import create_once
    from tests.fakes.common import drop_after

    supabase_fake.inject("POST", "/v1/projects", drop_after())
    stores = _supabase(supabase_fake, sleeps)
    spec = StoreSpec(Kind.POSTGRES, "authkit-db", "us-east-2", "default")
    store = create_once(stores, spec, Output(quiet=True), sleep=lambda s: None)
    assert supabase_fake.count("POST", "/v1/projects") == 1  # found by name, not re-created
    clock.advance(10)
    info = stores.connection_info(stores.refresh(store))
    assert urlsplit(info.app_url).password == "Generated-Pass-123"


def test_supabase_429_waits_for_the_reset_header(
    supabase_fake: SupabaseFake, sleeps: Sleeps
) -> None:
    supabase_fake.inject("GET", "/v1/projects", status(429, headers={"X-RateLimit-Reset": "7"}))
    assert _supabase(supabase_fake, sleeps).find(Kind.POSTGRES, "authkit-db") == []
    assert len(sleeps.waits) == 1 and 7 <= sleeps.waits[0] < 7.5


# ------------------------------------------------------------------------------- Upstash


def test_upstash_url_rules() -> None:
    assert endpoint_host("beloved-stallion-58500") == "beloved-stallion-58500.upstash.io"
    assert endpoint_host("steady-stud-32559.upstash.io") == "steady-stud-32559.upstash.io"
    url = redis_url({"endpoint": "beloved-stallion-58500", "port": 32559, "password": "ab/cd"})
    assert url == "rediss://default:ab%2Fcd@beloved-stallion-58500.upstash.io:32559"


def test_upstash_create_is_synchronous_and_found_by_exact_name(
    upstash: UpstashStores, upstash_fake: UpstashFake
) -> None:
    upstash_fake.add_database("authkit-redis-old")
    assert upstash.find(Kind.REDIS, "authkit-redis") == []
    store = upstash.create(KV)
    assert store.readiness is Readiness.READY and store.region == "us-east-2"
    body = upstash_fake.requests.last("POST", "/redis/database").body
    assert body == {
        "database_name": "authkit-redis",
        "platform": "aws",
        "primary_region": "us-east-2",
        "tls": True,
    }
    info = upstash.connection_info(store)
    assert info.verify_grace == 30.0
    parts = urlsplit(info.app_url)
    assert (parts.scheme, parts.username, parts.port) == ("rediss", "default", 6379)
    assert parts.hostname.endswith(".upstash.io")  # type: ignore[union-attr]
    (found,) = upstash.find(Kind.REDIS, "authkit-redis")
    assert found.id == store.id and upstash.connection_info(found).app_url == info.app_url
    upstash_fake.set_state(store.id, "suspended")
    assert upstash.refresh(store).readiness is Readiness.FAILED


def test_upstash_falls_back_to_the_older_create_body(
    upstash: UpstashStores, upstash_fake: UpstashFake
) -> None:
    upstash_fake.inject("POST", "/redis/database", status(400, body="unknown field platform"))
    store = upstash.create(KV)
    first, second = upstash_fake.requests.matching("POST", "/redis/database")
    assert first.status == 400 and second.body["region"] == "global"
    assert len(upstash_fake.databases_named("authkit-redis")) == 1 and store.created


def test_upstash_5xx_on_create_is_not_retried_blindly(
    upstash: UpstashStores, upstash_fake: UpstashFake
) -> None:
    from authkit_setup.errors import ServerError
    from authkit_setup.pipeline.provision import create_once

    upstash_fake.inject("POST", "/redis/database", status(503))
    # create_once looks the name up after an ambiguous failure, then creates once more.
    store = create_once(upstash, KV, Output(), sleep=lambda s: None)
    assert upstash_fake.count("POST", "/redis/database") == 2
    assert len(upstash_fake.databases_named("authkit-redis")) == 1 and store.created
    upstash_fake.inject("POST", "/redis/database", status(503))
    with pytest.raises(ServerError):
        upstash.create(KV)


# ------------------------------------------------------------------------------- verification


def test_verification_retries_connection_failures_within_the_grace(
    closed_port: int, clock: ManualClock
) -> None:
    from authkit_setup.pipeline.plan import StorePlan
    from authkit_setup.pipeline.verify import verify_stores

    url = f"rediss://default:pw@127.0.0.1:{closed_port}"
    info = ConnectionInfo(app_url=url, external_url=url, verify_grace=30.0)
    plan = StorePlan(KV, UpstashStores(None), None, info)  # type: ignore[arg-type]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    (result,) = verify_stores([plan], Output(quiet=True), timeout=1, sleep=sleep, clock=clock)
    assert result.failed_rung == "tcp" and len(waits) == 15

    waits.clear()
    plan.info = ConnectionInfo(app_url=url, external_url=url)
    verify_stores([plan], Output(quiet=True), timeout=1, sleep=sleep, clock=clock)
    assert waits == []


# ------------------------------------------------------------------------------- check hints


def test_lint_knows_neon_and_supabase_hosts() -> None:
    from authkit_setup.diagnostics.url import lint, parse_url

    def warnings(raw: str) -> str:
        return " | ".join(lint(parse_url(raw, "postgres")))

    neon = "postgresql://u:p@ep-a-b-1234.us-east-2.aws.neon.tech/db?sslmode=require"
    assert "sslsni=0" in warnings(neon + "&sslsni=0")
    assert "libpq 17" in warnings(neon + "&sslnegotiation=direct")
    pooled = neon.replace("ep-a-b-1234.", "ep-a-b-1234-pooler.")
    assert "pgbouncer=true" in warnings(pooled) and "DIRECT_URL" in warnings(pooled)
    assert warnings(neon) == ""
    assert "IPv6-only" in warnings(
        "postgresql://postgres:p@db.abcdefghij.supabase.co:5432/postgres"
    )
    bare = "postgresql://postgres:p@aws-0-us-east-1.pooler.supabase.com:5432/postgres"
    assert "postgres.<project-ref>" in warnings(bare)
    assert warnings(bare.replace("postgres:p@", "postgres.abcdefghij:p@")) == ""


def test_neon_no_sni_error_maps_to_a_hint() -> None:
    from authkit_setup.diagnostics.postgres import _classify
    from authkit_setup.diagnostics.url import parse_url

    url = parse_url("postgresql://u:p@ep-cool-x-99-pooler.us-east-2.aws.neon.tech/db", "postgres")
    failure = _classify(
        Exception(
            "ERROR:  Endpoint ID is not specified. Either please upgrade the postgres client "
            "library (libpq) for SNI support or pass the endpoint ID (first part of the domain "
            "name) as a parameter: '?options=endpoint%3D<endpoint-id>'."
        ),
        url,
        5.0,
    )
    assert failure.code == "neon_sni" and failure.rung == "tls"
    assert "options=endpoint%3Dep-cool-x-99" in failure.hint and "libpq" in failure.hint


def test_upstash_plaintext_failure_maps_to_rediss(closed_port: int) -> None:
    import redis.exceptions

    from authkit_setup.diagnostics.redis import _classify
    from authkit_setup.diagnostics.url import parse_url

    url = parse_url("redis://default:p@steady-stud-32559.upstash.io:32559", "redis")
    failure = _classify(
        redis.exceptions.ConnectionError("Connection closed by server."), url, "127.0.0.1", 1.0
    )
    assert failure.code == "tls_required" and "rediss://" in failure.hint


# ------------------------------------------------------------------------------- registry


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from authkit_setup.providers import registry

    monkeypatch.setattr(registry, "_entries", {})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "load_errors", [])
    yield


def test_registry_lists_the_builtins_by_kind(fresh_registry: None) -> None:
    from authkit_setup.providers import registry

    assert registry.names_for(Kind.POSTGRES) == ["neon", "render", "supabase"]
    assert registry.names_for(Kind.REDIS) == ["render", "upstash"]
    with pytest.raises(UsageError, match="not a redis provider") as caught:
        registry.get("neon", Kind.REDIS)
    assert "render, upstash" in str(caught.value.hint)
    with pytest.raises(UsageError, match="render --service"):
        registry.get("render", Kind.POSTGRES).build(registry.ProviderSettings(out=Output()))


class _StaticStores:
    """A third-party provider: one fixed Redis URL, registered like the built-ins."""

    name = "static"
    kinds = frozenset({Kind.REDIS})

    def __init__(self, url: str) -> None:
        self.url = url

    def find(self, kind: Kind, name: str) -> list[object]:
        from authkit_setup.providers.base import Store

        return [Store("static", kind, "static-1", name, "anywhere", "", "ok", Readiness.READY)]

    def region_for(self, render_region: str) -> str:
        return "anywhere"

    def connection_info(self, store: object) -> ConnectionInfo:
        return ConnectionInfo(app_url=self.url, external_url=self.url)


def test_a_plugin_registers_from_an_entry_point_and_drives_provision(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch, redis_srv: object
) -> None:
    import importlib.metadata

    from authkit_setup.providers import registry

    url = redis_srv.url  # type: ignore[attr-defined]

    def register_static() -> None:
        registry.register(
            "static",
            kinds=frozenset({Kind.REDIS}),
            factory=lambda settings: _StaticStores(url),  # type: ignore[arg-type,return-value]
        )

    class EntryPoint:
        name = "static"

        def load(self) -> object:
            return register_static

    class Broken(EntryPoint):
        name = "broken"

        def load(self) -> object:
            raise ImportError("no module named nowhere")

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [EntryPoint(), Broken()])
    result = run_cli("provision", "--redis", "static", "--env-file", "x.env", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["resources"][0]["provider"] == "static"
    assert Path("x.env").read_text().startswith("REDIS_URL=redis://")
    assert "plug-in 'broken' failed to load" in result.stderr
