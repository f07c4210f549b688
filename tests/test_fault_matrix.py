"""Every Render API call `authkit-setup render` makes, under every fault, one test per cell.

The calls (read off `fake.requests` of a fresh run; see `CALLS`): service lookup, store
lookups, the listing of the workspace's free Postgres, env-var GETs, store creates, the
post-create settle lookups, status polls, connection info, env-var PUTs, the deploy POST, the deploy list (after a 202) and the deploy
polls (--wait-deploy). The faults (`FAULTS`): 429 with Ratelimit-Reset, with Retry-After, with
neither; 500, 502, 503; a response slower than the client timeout; a connection dropped before
the fake applied the request and after; malformed JSON; an empty body; a 401 mid-run.

Each cell declares ONE outcome (`expected_outcome`, derived from the retry policy; see
tests/fault_outcomes.py) and asserts exactly that: every transient fault (429, 5xx, timeouts,
drops, unreadable bodies) is absorbed within the run, by a retry on idempotent calls and by a
look-up-then-create on the POSTs; a 401 fails cleanly with exit 3 naming RENDER_API_KEY, and
the re-run succeeds. No traceback, no secret either way, and the service ends with exactly one
store of each kind, its 120 other variables intact, the URLs of those stores in DATABASE_URL /
REDIS_URL, one deploy (two in deploy-create-slow, see `expected_deploys`), and the bulk env PUT
never called.

Speed: the fake's stores are ready at once and runs pass --no-verify, so a cell costs the
client's own waits: 429 waits ~1 s, 5xx / dropped connections back off 0.25-0.5 s, an
ambiguous create waits 2 s before its second attempt. Timeouts use AUTHKIT_HTTP_TIMEOUT.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from authkit_setup.providers.base import Kind
from authkit_setup.providers.render import RenderClient
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI, Fault
from tests.fault_outcomes import (
    FailsCleanly,
    Outcome,
    Recovers,
    assert_cell,
    record,
)
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import EXISTING, SERVICE, fabricated_render

CLIENT_TIMEOUT = 0.3  # AUTHKIT_HTTP_TIMEOUT in the `slow` cells
SLOW = 0.9  # the fake answers this late: three client timeouts
LATE = 4.0  # deploy-create-slow: the fake applies the timed-out deploy POST after all retries


@dataclass(frozen=True)
class Call:
    """One kind of API call: which requests the fault hits, and how to make the run reach it."""

    method: str
    path: str  # regex over the whole path (no /v1, no query), as FakeRenderAPI.inject takes it
    skip: int = 0  # let this many matching requests through untouched first
    args: tuple[str, ...] = ()
    fake_settings: dict[str, object] = field(default_factory=dict)
    fast_polls: bool = False  # shorten pipeline/wait.py's first poll so status polls happen soon


STORE_COLLECTION = r"/(postgres|key-value)"
STORE = r"/(postgres|key-value)/(dpg|red)-[a-z0-9]+(-a)?"
ENV_VAR = r"/services/srv-[a-z0-9]+/env-vars/(DATABASE_URL|REDIS_URL)"

CALLS: dict[str, Call] = {
    "service-lookup": Call("GET", r"/services"),
    "store-lookup": Call("GET", STORE_COLLECTION),
    # The plan lists the workspace's free Postgres after looking authkit-db up (providers/render
    # check_quota: one free Postgres per workspace).
    "free-postgres-list": Call("GET", r"/postgres", skip=1),
    "env-get": Call("GET", ENV_VAR),
    "store-create": Call("POST", STORE_COLLECTION),
    # The three plan listings come first (authkit-db, the free Postgres, authkit-redis), then
    # one listing per created store (pipeline/provision.settle).
    "settle-lookup": Call("GET", STORE_COLLECTION, skip=3),
    "status-poll": Call(
        "GET",
        STORE,
        # Not ready at the post-create listing, even on a loaded machine; ready soon after.
        fake_settings={"postgres_ready_after": 0.8, "redis_ready_after": 0.8},
        fast_polls=True,
    ),
    "connection-info": Call("GET", STORE + "/connection-info"),
    # The second PUT: DATABASE_URL is already written when REDIS_URL meets the fault.
    "env-put": Call("PUT", ENV_VAR, skip=1),
    "deploy-create": Call("POST", r"/services/srv-[a-z0-9]+/deploys"),
    "deploy-list": Call(
        "GET", r"/services/srv-[a-z0-9]+/deploys", fake_settings={"deploy_response": 202}
    ),
    "deploy-poll": Call(
        "GET",
        r"/services/srv-[a-z0-9]+/deploys/dep-[a-z0-9]+",
        args=("--wait-deploy",),
        fake_settings={"deploy_build_after": 0.0, "deploy_finish_after": 0.0},
    ),
}

FAULTS: dict[str, Callable[[], Fault]] = {
    "429-ratelimit-reset": lambda: Fault.rate_limited(reset=1),
    "429-retry-after": lambda: Fault.rate_limited(reset=None, retry_after=1),
    "429-no-header": lambda: Fault.rate_limited(reset=None),
    "500": lambda: Fault.status(500),
    "502": lambda: Fault.status(502),
    "503": lambda: Fault.status(503),
    "slow": lambda: Fault.slow(SLOW),
    "drop-before": Fault.drop_before,
    "drop-after": Fault.drop_after,
    "malformed-json": Fault.malformed_json,
    "empty-body": Fault.empty_body,
    "401": Fault.unauthorized,
}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRenderAPI]:
    """A fake Render (stores ready at once, fabricated credentials) with a 120-variable service."""
    yield from fabricated_render(EXISTING, monkeypatch)


def render(api: FakeRenderAPI, call: Call) -> CliResult:
    result = run_cli("render", "--service", SERVICE, "--yes", "--no-verify", *call.args)
    assert "Traceback" not in result.output, result.output
    assert_no_secret(result)  # the key, every Postgres and every Key Value password
    return result


# Faults after which the client cannot know whether a POST was applied: it must look the name
# up before it creates again (a 429 or 401 says the request was refused).
AMBIGUOUS = {"500", "502", "503", "slow", "drop-before", "drop-after", "malformed-json"}
AMBIGUOUS |= {"empty-body"}


def expected_outcome(call_name: str, fault_name: str) -> Outcome:
    """The retry policy's answer for this cell (see tests/fault_outcomes.py)."""
    if fault_name == "401":
        hints: tuple[str, ...] = ("RENDER_API_KEY",)
        if call_name == "deploy-create":  # the variables are written: say they wait for a deploy
            hints += ("already set but not deployed",)
        return FailsCleanly(3, "error: Render rejected the API key (401", hints)
    return Recovers()


def expected_deploys(call_name: str, fault_name: str) -> int:
    """One deploy, except when a deploy POST times out and Render applies it only after the
    client has listed the deploys, found none and posted again: two. A duplicate deploy is
    harmless (providers/render.create_deploy says so) and no look-up can see a request the
    server has not applied yet; the store creates avoid the same race by pausing before their
    look-up, the deploy POST does not."""
    return 2 if (call_name, fault_name) == ("deploy-create", "slow") else 1


def assert_end_state(api: FakeRenderAPI, deploys: int = 1) -> None:
    (service,) = [s for s in _services(api) if s["name"] == SERVICE]
    pgs, kvs = api.postgres_named("authkit-db"), api.key_values_named("authkit-redis")
    assert len(pgs) == 1 and len(kvs) == 1, (pgs, kvs)
    env = api.env(str(service["id"]))
    assert {k: v for k, v in env.items() if k.startswith("EXISTING_")} == EXISTING
    assert env["DATABASE_URL"] == api.connection_info(pgs[0]["id"])["internalConnectionString"]
    assert env["REDIS_URL"] == api.connection_info(kvs[0]["id"])["internalConnectionString"]
    assert set(env) == {*EXISTING, "DATABASE_URL", "REDIS_URL"}
    assert api.bulk_env_put_calls == []
    assert api.deploy_count(str(service["id"])) == deploys


def _services(api: FakeRenderAPI) -> list[dict[str, object]]:
    page = httpx.get(
        f"{api.base_url}/services",
        headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"},
        params={"limit": 100},
    ).json()
    return [entry["service"] for entry in page]


# A re-run also deploys variables that an interrupted run wrote but never deployed
# (pipeline/deploy._undeployed).
CELLS = [pytest.param(call, fault, id=f"{call}-{fault}") for call in CALLS for fault in FAULTS]


def assert_looked_up_before_creating_again(api: FakeRenderAPI, call: Call) -> None:
    """After an ambiguous POST the next call on that collection is a GET (the look-up), never
    a blind second POST."""
    requests = list(api.requests)
    hits = [
        i
        for i, r in enumerate(requests)
        if r.method == call.method and re.fullmatch(call.path, r.path)
    ]
    faulted = hits[call.skip]
    path = requests[faulted].path
    after = [r for r in requests[faulted + 1 :] if r.path == path]
    assert after and after[0].method == "GET", [(r.method, r.path) for r in after]


@pytest.mark.parametrize(("call_name", "fault_name"), CELLS)
def test_cell(
    fake: FakeRenderAPI, monkeypatch: pytest.MonkeyPatch, call_name: str, fault_name: str
) -> None:
    call = CALLS[call_name]
    for name, value in call.fake_settings.items():
        setattr(fake, name, value)
    if call.fast_polls:
        monkeypatch.setattr("authkit_setup.pipeline.wait.FIRST_POLL", 0.2)
        monkeypatch.setattr("authkit_setup.pipeline.wait.MIN_INTERVAL", 0.2)
    if fault_name == "slow":
        monkeypatch.setenv("AUTHKIT_HTTP_TIMEOUT", str(CLIENT_TIMEOUT))
    if call.skip:
        fake.inject(call.method, call.path, Fault.slow(0.0), times=call.skip)  # a pass-through
    fault = FAULTS[fault_name]()
    if expected_deploys(call_name, fault_name) == 2:
        fault = Fault.slow(LATE)  # surely after the client's look-up and second POST
    injected = fake.inject(call.method, call.path, fault)

    expected = expected_outcome(call_name, fault_name)

    assert_cell(lambda: render(fake, call), injected, call_name, expected)
    if call.method == "POST" and fault_name in AMBIGUOUS:
        assert_looked_up_before_creating_again(fake, call)
    settle_slow_requests(fake)
    assert_end_state(fake, expected_deploys(call_name, fault_name))
    record("render", expected)


def settle_slow_requests(api: FakeRenderAPI) -> None:
    """A request the client gave up on is still applied when the fake wakes: wait for it (an
    AssertionError if the fake never finishes)."""
    api.wait_until_idle(timeout=LATE + 5.0)


# -- client-side rate limits -----------------------------------------------------------------


class FakeTime:
    """An injected clock and sleep: sleeping moves the clock, nothing really waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limited_client(fake_time: FakeTime, notices: list[str]) -> RenderClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/deploys"):
            return httpx.Response(201, json={"id": "dep-x", "status": "created"})
        if request.method == "POST":
            body = json.loads(request.content)
            return httpx.Response(201, json={"id": f"dpg-{body['name']}", **body})
        return httpx.Response(200, json=[])

    client = RenderClient(
        token=FAKE_RENDER_KEY,
        base_url="http://render.test/v1",
        transport=httpx.MockTransport(answer),
        sleep=fake_time.sleep,
        # The announcement providers.render_client wires in, word for word.
        on_wait=lambda seconds, reason: notices.append(f"waiting {seconds:.0f} s for the {reason}"),
    )
    client._clock = fake_time.clock  # RenderClient takes no clock= of its own
    return client


def test_the_21st_create_in_an_hour_waits_for_the_window_and_says_so() -> None:
    fake_time, notices = FakeTime(), list[str]()
    client = limited_client(fake_time, notices)
    for i in range(20):  # one create a minute, Postgres and Key Value share the bucket
        fake_time.now += 60.0
        kind = Kind.POSTGRES if i % 2 == 0 else Kind.REDIS
        client.create_store(kind, {"name": f"store-{i}"})
        client.get("/postgres")  # GETs have their own bucket and never wait here
    assert fake_time.sleeps == [] and notices == []

    fake_time.now += 60.0  # 21st create at t=1260 s; the first was at t=60 s
    client.create_store(Kind.POSTGRES, {"name": "store-20"})
    assert fake_time.sleeps == [pytest.approx(3600.0 - 1200.0)]
    assert notices == ["waiting 2400 s for the Render limit for create calls"]


def test_the_11th_deploy_in_a_minute_waits() -> None:
    fake_time, notices = FakeTime(), list[str]()
    client = limited_client(fake_time, notices)
    for _ in range(11):
        fake_time.now += 1.0
        client.create_deploy("srv-aaaaaaaaaaaaaaaaaaaa")
    assert fake_time.sleeps == [pytest.approx(50.0)]
    assert notices == ["waiting 50 s for the Render limit for deploy calls"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Ratelimit-Reset": "60", "Ratelimit-Remaining": "399"}, None),  # on every response
        ({"Retry-After": "3", "Ratelimit-Reset": "60"}, 3.0),
    ],
    ids=["ratelimit-reset-ignored", "retry-after-honoured"],
)
def test_a_5xx_waits_for_retry_after_only(headers: dict[str, str], expected: float | None) -> None:
    """Render sends Ratelimit-Reset (the end of the window, up to an hour away) on every
    response: on a 503 it is no reason to wait; only Retry-After is."""
    fake_time, answers = FakeTime(), iter([503, 200])

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), headers=headers, json=[])

    client = RenderClient(
        token=FAKE_RENDER_KEY,
        base_url="http://render.test/v1",
        transport=httpx.MockTransport(answer),
        sleep=fake_time.sleep,
    )
    assert client.get("/postgres") == []
    (slept,) = fake_time.sleeps
    if expected is None:
        assert slept <= 0.5  # the first backoff step
    else:
        assert slept == expected
