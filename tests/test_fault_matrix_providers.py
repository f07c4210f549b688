"""Every Neon, Supabase and Upstash API call `authkit-setup provision` makes, under every fault,
one test per cell (issue 8; the Render matrix is tests/test_fault_matrix.py).

The calls (read off the fakes' request logs of a clean `provision --postgres neon|supabase
--redis upstash --env-file .env`; see `CALLS`):

- Neon: the project lookup (`GET /projects?search=`), the create, the post-create settle
  lookup, the operations listing (the readiness of every project read), the status poll
  (`GET /projects/{id}`, only when the operations are still running) and the two
  `connection_uri` reads (direct, then pooled).
- Supabase: the organizations, the project listing, the create, the settle listing, the
  status poll (`GET /v1/projects/{ref}`, only while the project is coming up) and the pooler
  config (once as the readiness check of the settle listing, once for the connection info).
- Upstash: the database listing, the create and the settle listing (creation is synchronous:
  no status poll, and the listing carries the password, so no `GET /redis/database/{id}`).

The faults (`FAULTS`): 429 with the provider's reset header (Supabase `X-RateLimit-Reset`;
Neon documents none and Upstash no rate limit at all, so theirs carry no header and the client
backs off), 500, 503, a connection dropped before the fake applied the request, dropped after
it applied it (creates only: on a GET it is the same as drop-before), malformed JSON, an
empty body.

Each cell declares ONE outcome (`expected_outcome`, from the retry policy; see
tests/fault_outcomes.py). Every fault here is transient, so every cell declares "recovers
within the run": GETs are retried, and an ambiguous create is followed by a look-up (asserted:
no blind second POST) and a create only if the name is missing. No traceback, no secret, each
fake ends with exactly one store of each kind, the .env holds DATABASE_URL / DIRECT_URL /
REDIS_URL of those stores, and every line that was in the .env before is kept.

Speed: the fakes' stores are ready at once (or after ~0.5 s in the status-poll cells, with a
short first poll), runs pass --no-verify and an ambiguous create pauses 0.1 s instead of 2 s
before it looks the name up again, so a cell costs the client's own waits: a 429 ~0.25-1.25 s,
5xx / dropped / unreadable GETs back off 0.25-0.5 s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import pytest

from authkit_setup.output import Output
from authkit_setup.providers.base import Store, StoreProvider, StoreSpec
from tests.fakes.common import FakeApiServer, Fault
from tests.fakes.local_backend import CloudFakes
from tests.fault_outcomes import Outcome, Recovers, assert_cell, record
from tests.helpers import CliResult, assert_no_secret, run_cli

Api = Literal["neon", "supabase", "upstash"]
ENV_TEXT = "# my app\nexport APP_NAME=authkit\n\n# keep me\nSECRET_THING='x y'\nPORT=3000\n"


@dataclass(frozen=True)
class Call:
    """One kind of API call: which fake and requests the fault hits, and how to reach it."""

    api: Api
    method: str
    path: str  # regex over the whole path relative to the fake's base_url, no query
    skip: int = 0  # let this many matching requests through untouched first
    fake_settings: dict[str, float] = field(default_factory=dict)
    fast_polls: bool = False  # shorten pipeline/wait.py's first poll so status polls happen soon

    @property
    def postgres(self) -> str:
        """The --postgres provider of the run (the Upstash cells run next to Neon)."""
        return "supabase" if self.api == "supabase" else "neon"


NEON_PROJECT = r"/projects/[a-z0-9-]+"
SB_PROJECT = r"/v1/projects/[a-z]{20}"
POLL = 0.5  # seconds a store stays not-ready in the status-poll cells

CALLS: dict[str, Call] = {
    "neon-lookup": Call("neon", "GET", r"/projects"),
    "neon-create": Call("neon", "POST", r"/projects"),
    "neon-settle-lookup": Call("neon", "GET", r"/projects", skip=1),
    "neon-operations": Call("neon", "GET", NEON_PROJECT + "/operations"),
    "neon-status-poll": Call(
        "neon", "GET", NEON_PROJECT, fake_settings={"operation_seconds": POLL}, fast_polls=True
    ),
    "neon-connection-uri-direct": Call("neon", "GET", NEON_PROJECT + "/connection_uri"),
    "neon-connection-uri-pooled": Call("neon", "GET", NEON_PROJECT + "/connection_uri", skip=1),
    "supabase-organizations": Call("supabase", "GET", r"/v1/organizations"),
    "supabase-lookup": Call("supabase", "GET", r"/v1/projects"),
    "supabase-create": Call("supabase", "POST", r"/v1/projects"),
    "supabase-settle-lookup": Call("supabase", "GET", r"/v1/projects", skip=1),
    "supabase-status-poll": Call(
        "supabase", "GET", SB_PROJECT, fake_settings={"unknown_seconds": POLL}, fast_polls=True
    ),
    "supabase-pooler-ready": Call("supabase", "GET", SB_PROJECT + "/config/database/pooler"),
    "supabase-pooler-connection": Call(
        "supabase", "GET", SB_PROJECT + "/config/database/pooler", skip=1
    ),
    "upstash-lookup": Call("upstash", "GET", r"/redis/databases"),
    "upstash-create": Call("upstash", "POST", r"/redis/database"),
    "upstash-settle-lookup": Call("upstash", "GET", r"/redis/databases", skip=1),
}

RESET_HEADER: dict[Api, dict[str, str | None]] = {
    "neon": {},  # Neon documents no reset header: exponential backoff
    "supabase": {"X-RateLimit-Reset": "1"},  # the fake would say the window's end (up to 60 s)
    "upstash": {},  # no Developer-API rate limit documented
}
FAULTS: dict[str, Callable[[Api], Fault]] = {
    "429": lambda api: Fault.status(429, headers=RESET_HEADER[api]),
    "500": lambda api: Fault.status(500),
    "503": lambda api: Fault.status(503),
    "drop-before": lambda api: Fault.drop_before(),
    "drop-after": lambda api: Fault.drop_after(),
    "malformed-json": lambda api: Fault.malformed_json(),
    "empty-body": lambda api: Fault.empty_body(),
}

CELLS = [
    pytest.param(call, fault, id=f"{call}-{fault}")
    for call, spec in CALLS.items()
    for fault in FAULTS
    if fault != "drop-after" or spec.method != "GET"
]


def fake_of(cloud: CloudFakes, api: Api) -> FakeApiServer[Any]:
    fakes: dict[Api, FakeApiServer[Any]] = {
        "neon": cloud.neon,
        "supabase": cloud.supabase,
        "upstash": cloud.upstash,
    }
    return fakes[api]


def provision(cloud: CloudFakes, call: Call) -> CliResult:
    result = run_cli(
        "provision",
        *("--postgres", call.postgres, "--redis", "upstash", "--env-file", ".env", "--no-verify"),
    )
    assert "Traceback" not in result.output, result.output
    assert_no_secret(result)  # the API keys, every password and token the fakes handed out
    return result


def expected_outcome(call_name: str, fault_name: str) -> Outcome:
    """The retry policy's answer for this cell: every fault in FAULTS is transient (429, 5xx,
    a drop, an unreadable body), GETs are retried and creates are looked up, so one fault is
    always absorbed within the run. (A 401 would fail cleanly; the Render matrix covers it.)"""
    return Recovers()


def assert_looked_up_before_creating_again(fake: FakeApiServer[Any], call: Call) -> None:
    """After an ambiguous create the next call on that collection is a GET (the look-up)."""
    import re

    requests = list(fake.requests)
    hits = [
        i
        for i, r in enumerate(requests)
        if r.method == call.method and re.fullmatch(call.path, r.path)
    ]
    faulted = hits[call.skip]
    lookups = {"neon": "/projects", "supabase": "/v1/projects", "upstash": "/redis/databases"}
    after = [
        (r.method, r.path)
        for r in requests[faulted + 1 :]
        if r.path in (requests[faulted].path, lookups[call.api])
    ]
    assert after and after[0] == ("GET", lookups[call.api]), after


def dotenv(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def password_of(url: str) -> str:
    return unquote(urlsplit(url).password or "")


def assert_end_state(cloud: CloudFakes, call: Call) -> None:
    neon = cloud.neon.projects_named("authkit-db")
    supabase = cloud.supabase.projects_named("authkit-db")
    redis = cloud.upstash.databases_named("authkit-redis")
    if call.postgres == "neon":
        assert len(neon) == 1 and supabase == [], (neon, supabase)
        pg_password = cloud.neon.credentials(neon[0]["id"]).password
    else:
        assert len(supabase) == 1 and neon == [], (neon, supabase)
        pg_password = cloud.supabase.credentials(supabase[0]["ref"]).password
    assert len(redis) == 1, redis

    path = Path(".env")
    text = path.read_text()
    assert text.startswith(ENV_TEXT), text  # every line that was there before, as it was
    values = dotenv(path)
    assert values["APP_NAME"] == "authkit" and values["SECRET_THING"] == "x y"
    assert {"DATABASE_URL", "DIRECT_URL", "REDIS_URL"} <= set(values)
    assert password_of(values["DATABASE_URL"]) == pg_password
    assert password_of(values["DIRECT_URL"]) == pg_password
    redis_password = cloud.upstash.database(redis[0]["database_id"])["password"]
    assert password_of(values["REDIS_URL"]) == redis_password


@pytest.fixture(autouse=True)
def _quick_create_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ambiguous create pauses 2 s before looking again (for a slow provider listing); the
    fakes list a store at once, so pause 0.1 s at most here."""
    from authkit_setup.pipeline import provision as flow_provision

    real = flow_provision.create_once

    def create_once(
        provider: StoreProvider, spec: StoreSpec, out: Output, *, sleep: Callable[[float], None]
    ) -> Store:
        return real(provider, spec, out, sleep=lambda seconds: sleep(min(seconds, 0.1)))

    monkeypatch.setattr(flow_provision, "create_once", create_once)


@pytest.mark.parametrize(("call_name", "fault_name"), CELLS)
def test_cell(
    cloud_fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch, call_name: str, fault_name: str
) -> None:
    call = CALLS[call_name]
    fake = fake_of(cloud_fakes, call.api)
    for name, value in call.fake_settings.items():
        setattr(fake, name, value)
    if call.fast_polls:
        monkeypatch.setattr("authkit_setup.pipeline.wait.FIRST_POLL", 0.2)
        monkeypatch.setattr("authkit_setup.pipeline.wait.MIN_INTERVAL", 0.2)
    Path(".env").write_text(ENV_TEXT)
    if call.skip:
        fake.inject(call.method, call.path, Fault.slow(0.0), times=call.skip)  # a pass-through
    injected = fake.inject(call.method, call.path, FAULTS[fault_name](call.api))
    expected = expected_outcome(call_name, fault_name)

    assert_cell(lambda: provision(cloud_fakes, call), injected, call_name, expected)
    if call.method == "POST" and fault_name != "429":
        assert_looked_up_before_creating_again(fake, call)
    assert_end_state(cloud_fakes, call)
    record("providers", expected)


def test_the_calls_are_the_ones_a_clean_run_makes(cloud_fakes: CloudFakes) -> None:
    """Guard against drift: every call of a clean run (and only those) has its row in CALLS."""
    import re

    seen: set[tuple[Api, str, str]] = set()
    for postgres in ("neon", "supabase"):
        Path(".env").write_text(ENV_TEXT)
        result = provision(cloud_fakes, Call(postgres, "GET", ""))
        assert result.exit_code == 0, result.output
        for api in ("neon", "supabase", "upstash"):
            for request in fake_of(cloud_fakes, api).requests:
                seen.add((api, request.method, request.path))
        cloud_fakes.reset_logs()
    covered = {(c.api, c.method, c.path) for c in CALLS.values()}
    for api, method, path in seen:
        assert any(a == api and m == method and re.fullmatch(p, path) for a, m, p in covered), (
            f"{api} {method} {path} has no row in CALLS"
        )
