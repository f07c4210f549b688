"""A fake Render API wired to the real test servers, and the environment the CLI needs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import PgServer, RedisServer
from tests.fakes.common import served
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI, NullBackend, RealBackend
from tests.servers import AllowListFronts, PostgresTlsProxy, RedisTlsProxy

SERVICE = "authkit-api"
EXISTING = {f"EXISTING_{i:03d}": f"value-{i}" for i in range(120)}  # the service's own variables


def cli_uses(fake: FakeRenderAPI, monkeypatch: pytest.MonkeyPatch) -> FakeRenderAPI:
    """Point the CLI at `fake`: RENDER_API_URL is its base URL, RENDER_API_KEY the key it
    accepts. Returns `fake`."""
    monkeypatch.setenv("RENDER_API_URL", fake.base_url)
    monkeypatch.setenv("RENDER_API_KEY", FAKE_RENDER_KEY)
    return fake


def fabricated_render(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch | None = None
) -> Iterator[FakeRenderAPI]:
    """For a fixture, `yield from`: a fake Render with fabricated credentials (NullBackend),
    stores ready at once, one team and the web service SERVICE in Ohio holding `env`. With
    `monkeypatch`, the CLI's RENDER_API_URL and RENDER_API_KEY point at it. Closed after the
    test, which fails if the fake crashed."""
    api = FakeRenderAPI(backend=NullBackend(), postgres_ready_after=0.0, redis_ready_after=0.0)
    api.add_owner("AuthKit Team")
    api.add_service(SERVICE, region="ohio", env=env)
    if monkeypatch is not None:
        cli_uses(api, monkeypatch)
    yield from served(api)


def service_id(api: FakeRenderAPI) -> str:
    """SERVICE's id, looked up by name through the API as a client would."""
    import httpx

    page = httpx.get(
        f"{api.base_url}/services",
        headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"},
        params={"name": SERVICE},
    ).json()
    return str(page[0]["service"]["id"])


@dataclass
class RenderWorld:
    fake: FakeRenderAPI
    service: dict[str, object]

    @property
    def service_id(self) -> str:
        return str(self.service["id"])


@pytest.fixture
def real_backend(
    pg: PgServer, redis_srv: RedisServer, pg_tls: PostgresTlsProxy, redis_tls: RedisTlsProxy
) -> RealBackend:
    return RealBackend(
        pg_superuser_url=pg.superuser_url,
        pg_external_host="127.0.0.1",
        pg_external_port=pg_tls.port,
        redis_admin_url=redis_srv.url,
        redis_external_host="127.0.0.1",
        redis_external_port=redis_tls.port,
    )


@pytest.fixture(scope="session")
def allow_list_fronts() -> Iterator[AllowListFronts]:
    with AllowListFronts() as fronts:
        yield fronts


@pytest.fixture
def render_world(
    real_backend: RealBackend,
    allow_list_fronts: AllowListFronts,
    monkeypatch: pytest.MonkeyPatch,
    pg_tls: PostgresTlsProxy,
) -> Iterator[RenderWorld]:
    """A fake Render (real clock, stores ready at once) with one web service and 120 variables.
    Each store's external URL enforces its ipAllowList (empty: every connection refused)."""
    fake = FakeRenderAPI(
        backend=real_backend,
        postgres_ready_after=0.0,
        redis_ready_after=0.0,
        external_fronts=allow_list_fronts,
    )
    fake.add_owner("AuthKit Team")
    service = cli_uses(fake, monkeypatch).add_service(SERVICE, region="ohio", env=EXISTING)
    # Render's external Key Value host has a real certificate; the test TLS front uses the
    # throwaway CA, which Python's default trust store reads from SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(pg_tls.ca_path))
    try:
        yield RenderWorld(fake, service)
    finally:
        fake.drop_backend_stores()
        fake.close()
