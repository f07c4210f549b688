"""Fast unit tests of the trust-critical modules (masking, .env editing, the HTTP retry
policy, env-var writing, verification and its honest "not verifiable"), written so that the
mutants scripts/mutation.py makes are noticed. No servers: the HTTP client runs over respx
routes (an injected `httpx.MockTransport(router.handler)`) with an injected sleep and clock.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import random
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import respx

from authkit_setup import envfile, http
from authkit_setup import secrets as masking
from authkit_setup.check import urls as verify
from authkit_setup.diagnostics.model import CheckResult, Rung
from authkit_setup.errors import (
    ApiConnectionError,
    ApiError,
    BadResponseError,
    CredentialsError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UsageError,
)
from authkit_setup.kinds import Kind
from authkit_setup.targets import base as env_base
from authkit_setup.targets.render_service import ServiceEnv

BASE = "https://api.test/v1"
TOKEN = "tok_unit_secret_value"


class Recorder:
    """Injected sleep, clock and wait notices: nothing really waits."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.notices: list[tuple[float, str]] = []
        self.now = 100.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def notice(self, seconds: float, reason: str) -> None:
        self.notices.append((seconds, reason))


def make_client(
    router: respx.Router, rec: Recorder, cls: type[http.ApiClient] = http.ApiClient, **kw: Any
) -> http.ApiClient:
    return cls(
        base_url=BASE,
        token=TOKEN,
        transport=httpx.MockTransport(router.handler),
        sleep=rec.sleep,
        clock=rec.clock,
        on_wait=rec.notice,
        **kw,
    )


def answers(*responses: httpx.Response | Exception) -> Any:
    """A respx side effect answering `responses` in order."""
    return list(responses)


# -- timeouts, buckets, reset headers ---------------------------------------------------------


def test_timeout_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(http.HTTP_TIMEOUT_ENV, raising=False)
    assert http.timeout_from_env() == 30.0 and http.timeout_from_env(7.0) == 7.0
    monkeypatch.setenv(http.HTTP_TIMEOUT_ENV, "  2.5 ")
    assert http.timeout_from_env() == 2.5
    monkeypatch.setenv(http.HTTP_TIMEOUT_ENV, "   ")
    assert http.timeout_from_env(4.0) == 4.0
    for bad in ("0", "-1", "nan", "inf", "abc"):
        monkeypatch.setenv(http.HTTP_TIMEOUT_ENV, bad)
        with pytest.raises(UsageError) as caught:
            http.timeout_from_env()
        assert caught.value.message == (
            f"AUTHKIT_HTTP_TIMEOUT={bad!r} is not a positive number of seconds"
        )


def test_retries_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(http.HTTP_RETRIES_ENV, raising=False)
    assert http.retries_from_env() == 5 and http.retries_from_env(2) == 2
    for raw, retries in ((" 0 ", 0), ("7", 7), ("20", 20)):
        monkeypatch.setenv(http.HTTP_RETRIES_ENV, raw)
        assert http.retries_from_env() == retries
    monkeypatch.setenv(http.HTTP_RETRIES_ENV, "  ")
    assert http.retries_from_env(3) == 3
    for bad in ("21", "-1", "2.5", "abc", "1e3"):
        monkeypatch.setenv(http.HTTP_RETRIES_ENV, bad)
        with pytest.raises(UsageError) as caught:
            http.retries_from_env()
        assert caught.value.message == (
            f"AUTHKIT_HTTP_RETRIES={bad!r} is not a whole number from 0 to 20"
        )


def test_rate_bucket_slides() -> None:
    bucket = http.RateBucket(limit=2, window=10.0)
    assert bucket.delay(0.0) == 0.0
    bucket.take(0.0)
    assert bucket.delay(1.0) == 0.0
    bucket.take(1.0)
    assert bucket.delay(4.0) == 6.0  # the oldest stamp leaves the window at t=10
    assert bucket.delay(10.0) == 0.0  # exactly one window later it is gone
    assert list(bucket.stamps) == [1.0]


def test_parse_reset_forms() -> None:
    now = 1_700_000_000.0
    assert http._parse_reset(None, now) is None
    assert http._parse_reset("", now) is None
    assert http._parse_reset(" 7 ", now) == 7.0
    assert http._parse_reset("-3", now) == 0.0
    assert http._parse_reset(str(now + 30), now) == 30.0  # an epoch
    assert http._parse_reset(str(now - 30), now) == 0.0
    assert http._parse_reset("1000000001", 1_000_000_000.0) == 1.0  # just past the epoch line
    date = email.utils.formatdate(now + 60, usegmt=True)
    assert http._parse_reset(date, now) == 60.0
    assert http._parse_reset(email.utils.formatdate(now - 60, usegmt=True), now) == 0.0
    assert http._parse_reset("soon", now) is None


def test_retry_after_reads_headers_in_order() -> None:
    both = httpx.Response(429, headers={"Retry-After": "3", "Ratelimit-Reset": "50"})
    assert http.retry_after(both) == 3.0
    reset_only = httpx.Response(429, headers={"Ratelimit-Reset": "50"})
    assert http.retry_after(reset_only) == 50.0
    assert http.retry_after(httpx.Response(429, headers={"X-RateLimit-Reset": "9"})) == 9.0
    assert http.retry_after(reset_only, rate_limited=False) is None
    assert http.retry_after(both, rate_limited=False) == 3.0
    assert http.retry_after(httpx.Response(429)) is None


# -- error messages and the error tree ---------------------------------------------------------


def response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("GET", f"{BASE}/things/1")
    return httpx.Response(status, content=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "HTTP 502 with an empty body"),
        (b"   ", "HTTP 502 with an empty body"),
        (b'"regional db creation is deprecated"', "regional db creation is deprecated"),
        (b'{"message": "m1", "error": "e"}', "m1"),
        (b'{"error": "e2"}', "e2"),
        (b'{"detail": "d3"}', "d3"),
        (b'{"msg": "m4"}', "m4"),
        (b'{"message": 5, "error": "e5"}', "e5"),
        (b'{"other": 1}', '{"other": 1}'),
        (b"[1, 2]", "[1, 2]"),
        (b"plain text", "plain text"),
        (b"x" * 400, "x" * 300),
        (b'{"z": "' + b"y" * 400 + b'"}', ('{"z": "' + "y" * 400)[:300]),
    ],
)
def test_error_message_shapes(body: bytes, expected: str) -> None:
    assert http.error_message(response(502, body)) == expected


def test_error_from_response_maps_every_status() -> None:
    ctx = http.ErrorContext("Acme", "set ACME_KEY")
    err = http.error_from_response(response(401, b'{"message": "bad key"}'), ctx)
    assert isinstance(err, CredentialsError)
    assert err.message == "Acme rejected the API key (401: bad key)" and err.hint == "set ACME_KEY"
    err = http.error_from_response(response(403, b'"nope"'), ctx)
    assert isinstance(err, CredentialsError)
    assert err.message == "Acme refused access (403: nope)" and err.hint == "set ACME_KEY"

    err = http.error_from_response(response(404, b'"gone"', {"Render-Request-Id": "r1"}), ctx)
    assert isinstance(err, NotFoundError)
    assert err.message == "Acme API: GET /v1/things/1: not found (gone)"
    assert (err.status, err.request_id) == (404, "r1")

    err = http.error_from_response(response(429, b'"slow"', {"X-Request-Id": "r2"}), ctx)
    assert isinstance(err, RateLimitedError)
    assert err.message == "Acme API: GET /v1/things/1: rate limited (slow)"
    assert err.hint is not None and "run the same command again" in err.hint
    assert (err.status, err.request_id) == (429, "r2")

    err = http.error_from_response(response(500, b'"boom"'), ctx)
    assert isinstance(err, ServerError)
    assert err.message == "Acme API: GET /v1/things/1: server error 500 (boom)"
    assert err.hint is not None and "safe to re-run" in err.hint
    assert (err.status, err.request_id) == (500, None)

    err = http.error_from_response(response(409, b'"taken"'), ctx)
    assert type(err) is ApiError
    assert err.message == "Acme API: GET /v1/things/1: 409 taken" and err.status == 409
    assert err.detail == "taken"  # the server's own words, quoted by refusal explanations
    err = http.error_from_response(response(499, b'"x"'), ctx)
    assert type(err) is ApiError


# -- the client: headers, secrets, the retry policy --------------------------------------------


def test_client_sends_auth_and_identifies_itself() -> None:
    masking.forget()
    router = respx.Router(base_url=BASE)
    route = router.get("/me").respond(200, json={"ok": True})
    rec = Recorder()
    client = make_client(router, rec)
    assert client.get("/me") == {"ok": True}
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"].startswith("authkit-setup/")
    assert masking.redact(f"key={TOKEN}!") == "key=****!"  # the token is a registered secret
    assert client.request_count == 1 and rec.sleeps == []
    assert (client.ctx.provider, client.ctx.credentials_hint) == ("API", "check the API key")


def test_basic_auth_password_is_a_secret() -> None:
    masking.forget()
    router = respx.Router(base_url=BASE)
    route = router.get("/me").respond(200, json=[])
    client = http.ApiClient(
        base_url=BASE,
        auth=("me@example.com", "basic-pass-123"),
        transport=httpx.MockTransport(router.handler),
    )
    assert client.get("/me") == []
    assert route.calls.last.request.headers["Authorization"].startswith("Basic ")
    assert masking.redact("basic-pass-123") == "****"
    assert masking.redact("me@example.com") == "me@example.com"


def test_get_is_retried_on_5xx_with_backoff_then_gives_up() -> None:
    router = respx.Router(base_url=BASE)
    route = router.get("/flaky").respond(503)
    rec = Recorder()
    client = make_client(router, rec, max_retries=3)
    with pytest.raises(ServerError):
        client.get("/flaky")
    assert route.call_count == 4  # the first try and three retries
    assert len(rec.sleeps) == 3
    for attempt, slept in enumerate(rec.sleeps):
        assert 0.5 * 2**attempt * 0.5 <= slept <= 0.5 * 2**attempt
    assert rec.notices == []  # backoff after a 5xx is quiet


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_every_retry_status_is_retried_for_reads_only(status: int) -> None:
    router = respx.Router(base_url=BASE)
    get = router.get("/x").mock(
        side_effect=answers(httpx.Response(status), httpx.Response(200, json=1))
    )
    post = router.post("/x").respond(status)
    rec = Recorder()
    client = make_client(router, rec)
    assert client.get("/x") == 1 and get.call_count == 2
    with pytest.raises(ServerError):
        client.request("POST", "/x", json_body={})
    assert post.call_count == 1  # a create is never resent blindly


def test_a_4xx_other_than_429_is_not_retried() -> None:
    router = respx.Router(base_url=BASE)
    route = router.get("/x").respond(400, json={"message": "bad"})
    rec = Recorder()
    with pytest.raises(ApiError, match="400 bad"):
        make_client(router, rec).get("/x")
    assert route.call_count == 1 and rec.sleeps == []


def test_idempotent_flag_overrides_the_method() -> None:
    router = respx.Router(base_url=BASE)
    post = router.post("/x").mock(
        side_effect=answers(httpx.Response(502), httpx.Response(200, json=2))
    )
    put = router.put("/x").respond(502)
    rec = Recorder()
    client = make_client(router, rec)
    assert client.request("post", "/x", json_body={}, idempotent=True) == 2
    assert post.call_count == 2
    with pytest.raises(ServerError):
        client.request("PUT", "/x", idempotent=False)
    assert put.call_count == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
def test_idempotent_methods(method: str) -> None:
    assert method in http.IDEMPOTENT
    assert "POST" not in http.IDEMPOTENT
    router = respx.Router(base_url=BASE)
    route = router.route(method=method, path="/x").mock(
        side_effect=answers(httpx.Response(500), httpx.Response(204))
    )
    assert make_client(router, Recorder()).request(method, "/x") is None
    assert route.call_count == 2


def test_429_waits_for_the_header_says_why_and_retries_a_post() -> None:
    router = respx.Router(base_url=BASE)
    route = router.post("/things").mock(
        side_effect=answers(
            httpx.Response(429, headers={"Retry-After": "5"}), httpx.Response(201, json={"id": 1})
        )
    )
    rec = Recorder()
    assert make_client(router, rec).create("/things", {"name": "a"}, "thing") == {"id": 1}
    assert route.call_count == 2
    (slept,) = rec.sleeps
    assert 5.0 <= slept <= 5.25
    assert rec.notices == [(slept, "API rate limit (429)")]


def test_429_without_a_header_backs_off_and_a_long_wait_is_capped() -> None:
    router = respx.Router(base_url=BASE)
    router.get("/a").mock(side_effect=answers(httpx.Response(429), httpx.Response(200, json=0)))
    router.get("/b").mock(
        side_effect=answers(
            httpx.Response(429, headers={"Retry-After": "100000"}), httpx.Response(200, json=0)
        )
    )
    rec = Recorder()
    client = make_client(router, rec)
    client.get("/a")
    assert 0.25 <= rec.sleeps[0] <= 0.5 and rec.notices == []  # under a second: no notice
    client.get("/b")
    assert rec.sleeps[1] == http.MAX_SINGLE_WAIT == 120.0
    assert rec.notices == [(120.0, "API rate limit (429)")]


def test_429_forever_ends_in_a_rate_limited_error() -> None:
    router = respx.Router(base_url=BASE)
    route = router.get("/x").respond(429, json={"message": "later"})
    rec = Recorder()
    with pytest.raises(RateLimitedError, match="rate limited"):
        make_client(router, rec, max_retries=2).get("/x")
    assert route.call_count == 3 and len(rec.sleeps) == 2


class LockingClient(http.ApiClient):
    provider = "Locky"
    retry_any_method = frozenset({429, 423})


def test_a_provider_busy_status_is_retried_for_every_method() -> None:
    router = respx.Router(base_url=BASE)
    route = router.post("/x").mock(
        side_effect=answers(
            httpx.Response(423, headers={"Retry-After": "2"}), httpx.Response(200, json=3)
        )
    )
    rec = Recorder()
    assert make_client(router, rec, LockingClient).request("POST", "/x") == 3
    assert route.call_count == 2
    assert rec.notices == [(rec.sleeps[0], "Locky busy signal (423)")]
    base = respx.Router(base_url=BASE)
    base.post("/x").respond(423)
    with pytest.raises(ApiError):  # the base client does not know 423
        make_client(base, Recorder()).request("POST", "/x")


def get_after(*responses: httpx.Response, **client: Any) -> tuple[Any, Recorder]:
    """GET /x from a client whose server gives `responses` in turn: (the body, the recorder)."""
    router = respx.Router(base_url=BASE)
    router.get("/x").mock(side_effect=answers(*responses))
    rec = Recorder()
    return make_client(router, rec, **client).get("/x"), rec


def test_a_5xx_honours_retry_after_but_not_ratelimit_reset() -> None:
    body, rec = get_after(
        httpx.Response(503, headers={"Retry-After": "4"}),
        httpx.Response(503, headers={"Retry-After": "999"}),
        httpx.Response(503, headers={"Ratelimit-Reset": "60"}),
        httpx.Response(200, json=4),
    )
    assert body == 4
    assert rec.sleeps[0] == 4.0
    assert rec.sleeps[1] == 120.0
    assert 1.0 <= rec.sleeps[2] <= 2.0  # the third backoff step, not 60 s


def test_connection_errors_are_retried_for_reads_and_named_without_secrets() -> None:
    router = respx.Router(base_url=BASE)
    get = router.get("/x").mock(
        side_effect=answers(httpx.ConnectError("refused"), httpx.Response(200, json=5))
    )
    post = router.post("/x").mock(side_effect=httpx.ConnectError(f"refused {TOKEN}"))
    rec = Recorder()
    client = make_client(router, rec)
    assert client.get("/x") == 5 and get.call_count == 2 and len(rec.sleeps) == 1
    with pytest.raises(ApiConnectionError) as caught:
        client.request("POST", "/x")
    assert post.call_count == 1
    # A create is sent once (no "after N tries"), and the error names the address, not the text.
    assert caught.value.message == "API API at api.test:443 refused the connection: POST /x"
    assert caught.value.hint is not None and "safe to repeat" in caught.value.hint


def test_a_blank_transport_error_is_named_by_its_type() -> None:
    router = respx.Router(base_url=BASE)
    router.post("/x").mock(side_effect=httpx.ConnectError(""))
    with pytest.raises(ApiConnectionError) as caught:
        make_client(router, Recorder()).request("POST", "/x")
    assert (
        caught.value.message
        == "API API at api.test:443 could not be reached (ConnectError): POST /x"
    )


def test_an_unrecognised_transport_error_is_quoted_masked() -> None:
    router = respx.Router(base_url=BASE)
    router.post("/x").mock(side_effect=httpx.ConnectError(f"boom {TOKEN}"))
    with pytest.raises(ApiConnectionError) as caught:
        make_client(router, Recorder()).request("POST", "/x")
    assert (
        caught.value.message == "API API at api.test:443 could not be reached (boom ****): POST /x"
    )


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (httpx.ConnectTimeout("timed out"), "did not accept the connection in time"),
        (httpx.ReadTimeout("timed out"), "did not answer in time"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "refused the connection"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "could not be found (DNS)"),
        (
            httpx.ConnectError("[Errno 8] nodename nor servname provided, or not known"),
            "could not be found (DNS)",
        ),
        (
            httpx.ConnectError("[Errno -3] Temporary failure in name resolution"),
            "could not be found (DNS)",
        ),
        (httpx.ConnectError("[Errno 101] Network is unreachable"), "is unreachable from here"),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            "dropped the connection",
        ),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), "dropped the connection"),
        (httpx.WriteError("[Errno 32] Broken pipe"), "dropped the connection"),
        (
            httpx.ConnectError("[SSL] handshake failure"),
            "could not be reached ([SSL] handshake failure)",
        ),
    ],
)
def test_transport_errors_in_words(exc: httpx.TransportError, words: str) -> None:
    assert http.describe_transport_error(exc) == words


def test_every_retry_says_what_failed_and_when_the_next_try_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(random, "random", lambda: 1.0)  # no jitter: backoff 0.5, 1, 2 s
    router = respx.Router(base_url=BASE)
    router.get("/x").mock(
        side_effect=answers(
            httpx.ConnectError("[Errno 111] Connection refused"),
            httpx.Response(503),
            httpx.Response(200, content=b""),
            httpx.Response(200, json=6),
        )
    )
    rec = Recorder()
    lines: list[str] = []
    client = make_client(router, rec, max_retries=3, on_retry=lines.append)
    assert client.get("/x") == 6
    assert rec.sleeps == [0.5, 1.0, 2.0]
    assert lines == [
        "API API at api.test:443 refused the connection; retry 1 of 3 in 0.5 s",
        "API API at api.test:443 answered 503; retry 2 of 3 in 1 s",
        "API API at api.test:443 sent an unreadable answer; retry 3 of 3 in 2 s",
    ]


def test_a_retry_notice_shows_the_server_asked_wait() -> None:
    lines: list[str] = []
    body, rec = get_after(
        httpx.Response(502, headers={"Retry-After": "0.4"}),
        httpx.Response(502, headers={"Retry-After": "1"}),
        httpx.Response(502, headers={"Retry-After": "1.5"}),
        httpx.Response(200, json=7),
        on_retry=lines.append,
    )
    assert body == 7
    assert rec.sleeps == [0.4, 1.0, 1.5]
    assert [line.rsplit(" in ", 1)[1] for line in lines] == ["0.4 s", "1 s", "2 s"]


def test_a_connection_error_names_where_the_address_came_from() -> None:
    router = respx.Router(base_url=BASE)
    router.post("/x").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    client = make_client(router, Recorder(), base_url_source="set by ACME_API_URL")
    with pytest.raises(ApiConnectionError) as caught:
        client.request("POST", "/x")
    assert caught.value.message == (
        "API API at api.test:443 (set by ACME_API_URL) refused the connection: POST /x"
    )


def test_timeouts_say_timed_out() -> None:
    router = respx.Router(base_url=BASE)
    route = router.get("/x").mock(side_effect=httpx.ReadTimeout("slow"))
    rec = Recorder()
    with pytest.raises(ApiConnectionError) as caught:
        make_client(router, rec, max_retries=1).get("/x")
    assert route.call_count == 2
    assert (
        caught.value.message
        == "API API at api.test:443 did not answer in time after 2 tries: GET /x"
    )
    assert caught.value.hint is not None and "run the same command again" in caught.value.hint


def test_an_unbuildable_url_is_a_usage_error() -> None:
    router = respx.Router(base_url=BASE)
    with pytest.raises(UsageError, match="cannot build the request URL"):
        make_client(router, Recorder()).get("/x", {"name": "a" * 70000})


@pytest.mark.parametrize(
    ("status", "body", "expect_json", "expected"),
    [
        (204, b"", True, None),
        (201, b"  ", True, None),
        (202, b"", False, None),
        (200, b"", False, None),
        (200, b"hello", False, "hello"),
        (200, b'{"a": 1}', False, {"a": 1}),
        (200, b'{"a": 1}', True, {"a": 1}),
    ],
)
def test_decode(status: int, body: bytes, expect_json: bool, expected: Any) -> None:
    router = respx.Router(base_url=BASE)
    router.get("/x").respond(status, content=body)
    assert make_client(router, Recorder()).request("GET", "/x", expect_json=expect_json) == expected


@pytest.mark.parametrize(
    ("body", "says"), [(b"", "an empty body where JSON was expected"), (b"{", "malformed JSON")]
)
def test_unreadable_bodies_are_read_again_then_reported(body: bytes, says: str) -> None:
    router = respx.Router(base_url=BASE)
    route = router.get("/x").respond(200, content=body)
    rec = Recorder()
    with pytest.raises(BadResponseError) as caught:
        make_client(router, rec, max_retries=2).get("/x")
    assert route.call_count == 3 and len(rec.sleeps) == 2
    assert caught.value.message == f"API API: GET /x returned {says}"
    post = router.post("/x").respond(200, content=body)
    with pytest.raises(BadResponseError):
        make_client(router, rec).request("POST", "/x")
    assert post.call_count == 1


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    client = make_client(respx.Router(base_url=BASE), Recorder())
    for attempt in range(12):
        base = min(30.0, 0.5 * 2**attempt)
        for _ in range(20):
            assert base / 2 <= client._backoff(attempt) <= base


def test_client_side_bucket_waits_and_says_so() -> None:
    class Limited(http.ApiClient):
        provider = "Lim"
        rate_limits = {"create": (1, 60.0)}

        def bucket_for(self, method: str, path: str) -> str | None:
            return "create" if method == "POST" else None

    router = respx.Router(base_url=BASE)
    router.post("/x").respond(201, json={})
    router.get("/x").respond(200, json={})
    rec = Recorder()
    client = make_client(router, rec, Limited)
    client.request("POST", "/x")
    client.get("/x")
    assert rec.sleeps == []
    rec.now += 20.0
    client.request("POST", "/x")
    assert rec.sleeps == [40.0]
    assert rec.notices == [(40.0, "Lim limit for create calls")]
    extra = make_client(router, rec, buckets={"create": http.RateBucket(5, 1.0)})
    assert extra.bucket_for("POST", "/x") is None


def test_shapes_and_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    router = respx.Router(base_url=BASE)
    router.get("/obj").respond(200, json={"a": 1})
    router.get("/list").respond(200, json=[{"a": 1}, 2, {"b": 3}])
    router.delete("/gone").respond(404, json={"message": "no"})
    router.delete("/broken").respond(400, json={"message": "no"})
    client = make_client(router, Recorder())
    assert client.get_object("/obj", "thing") == {"a": 1}
    with pytest.raises(BadResponseError, match="unexpected API response for things: expected list"):
        http.expect_type({}, list, "things")
    with pytest.raises(BadResponseError, match="expected dict"):
        client.get_object("/list", "thing")
    assert client.get_objects("/list", "things") == [{"a": 1}, {"b": 3}]
    client.delete_if_present("/gone")
    with pytest.raises(ApiError):
        client.delete_if_present("/broken")
    assert http.required_fields({"a": 1, "b": "x"}, "a", "b", what="W") == ["1", "x"]
    with pytest.raises(BadResponseError) as caught:
        http.required_fields({"a": 1}, "a", "c", what="Acme returned a thing")
    assert caught.value.message == "Acme returned a thing without 'c'"
    # API base URLs are checked where they are read (settings.api_url; http had an unused twin).
    from authkit_setup.settings import api_url

    for good in ("http://x", "https://x"):
        monkeypatch.setenv("ACME_API_URL", good + "/")
        assert api_url("ACME_API_URL", "https://default") == good
    monkeypatch.setenv("ACME_API_URL", "ftp://x")
    with pytest.raises(UsageError, match="is not an http"):
        api_url("ACME_API_URL", "https://default")


def test_paginate_cursor() -> None:
    router = respx.Router(base_url=BASE)
    pages = {
        None: [{"item": {"n": 1}, "cursor": "c1"}, {"item": {"n": 2}, "cursor": "c2"}],
        "c2": [{"item": {"n": 3}, "cursor": "c3"}, {"item": {"n": 4}, "cursor": "c4"}],
        "c4": [],
    }
    route = router.get("/items").mock(
        side_effect=lambda request: httpx.Response(
            200, json=pages[request.url.params.get("cursor")]
        )
    )
    client = make_client(router, Recorder())
    found = list(http.paginate_cursor(client, "/items", item_key="item", params={"q": 1}, limit=2))
    assert [f["n"] for f in found] == [1, 2, 3, 4]
    assert [c.request.url.params.get("limit") for c in route.calls] == ["2", "2", "2"]
    assert route.calls[0].request.url.params.get("q") == "1"
    # a short page ends it without another call
    assert [f["n"] for f in http.paginate_cursor(client, "/items", item_key="item", limit=3)] == [
        1,
        2,
    ]
    # a cursor seen before ends it (a server that repeats itself cannot loop us forever)
    pages["c2"] = [{"item": {"n": 3}, "cursor": "c2"}, {"item": {"n": 4}, "cursor": "c2"}]
    assert [f["n"] for f in http.paginate_cursor(client, "/items", item_key="item", limit=2)] == [
        1,
        2,
        3,
        4,
    ]
    pages[None] = [{"other": {}}]
    with pytest.raises(BadResponseError, match="missing 'item'"):
        list(http.paginate_cursor(client, "/items", item_key="item"))
    pages[None] = [{"item": {"n": 1}}, {"item": {"n": 2}}]  # no cursor: stop
    assert len(list(http.paginate_cursor(client, "/items", item_key="item", limit=2))) == 2


# -- masking ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p4ss@h:5432/db", "postgresql://u:****@h:5432/db"),
        ("postgresql://u:p4ss@h/db?x=1#f", "postgresql://u:****@h/db?x=1#f"),
        ("postgresql://u:@h/db", "postgresql://u:@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("redis://s3cret@h:6379", "redis://****@h:6379"),
        ("rediss://s3cret@h:6379", "rediss://****@h:6379"),
        ("REDIS://s3cret@h", "REDIS://****@h"),
        ("http://user@h/x", "http://user@h/x"),
        ("redis://:pw12@h", "redis://:****@h"),
        ("postgresql://u:a@b@h/db", "postgresql://u:****@h/db"),
        ("see postgresql://u:pw99@h/db.", "see postgresql://u:****@h/db."),
        ("x='postgresql://u:pw99@h/db' y", "x='postgresql://u:****@h/db' y"),
        ("DB_postgresql://u:pw99@h/d", "DB_postgresql://u:****@h/d"),
        ("a+b.c-d://u:pw99@h", "a+b.c-d://u:****@h"),
        # Issue 13: the userinfo runs to the URL's last '@' (a raw '/', '?' or '#' may be in a
        # password), so a later '@' widens the mask rather than leaking a password.
        ("postgresql://u:pw99@h/a@b", "postgresql://u:****@b"),
        ("postgresql://u:pw99@h?a@b", "postgresql://u:****@b"),
        ("postgresql://u:pw99@h#a@b", "postgresql://u:****@b"),
        ("no url here", "no url here"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert masking.mask_url(url) == masked


def test_register_secret_keeps_every_form_and_ignores_short_ones() -> None:
    masking.forget()
    masking.register(None)
    masking.register("")
    masking.register("abc")  # too short to mask safely
    assert masking.redact("abc") == "abc"
    masking.register("p@ss/word")
    assert masking.redact("p@ss/word") == "****"
    assert masking.redact("p%40ss%2Fword") == "****"
    assert masking.redact("p%40ss/word") == "****"
    masking.register("a%2Fbcdefgh")  # given encoded, the decoded form is known too
    assert masking.redact("a/bcdefgh") == "****"
    masking.forget()
    assert masking.redact("p@ss/word") == "p@ss/word"
    # Issue 13: free text only for 8+ characters that are not a word the tool prints.
    masking.register("abcd")
    assert masking.redact("xabcdx") == "xabcdx"
    masking.register("abcd1234")
    assert masking.redact("xabcd1234x") == "x****x"
    masking.register("postgres")
    assert masking.redact("postgresql://h/db") == "postgresql://h/db"


def test_register_secret_skips_short_encoded_forms() -> None:
    masking.forget()
    # Issue 13 raised the free-text floor from 4 to 8 characters; the shapes are the same.
    masking.register("%41bcdefg%")  # unquote gives "Abcdefg%": eight characters, kept
    assert masking.redact("Abcdefg%") == "****"
    masking.forget()
    masking.register("%41%42%43%44")  # its decoded form "ABCD" is too short to mask
    assert masking.redact("ABCD") == "ABCD" and masking.redact("%41%42%43%44") == "****"


def test_registering_a_url_registers_its_password_for_free_text() -> None:
    # Issue 13: one way in. mask_url is pure now; register(url) is what learns the password.
    masking.forget()
    masking.register("postgresql://u:hunter2hunter@h/db")
    assert masking.redact("driver said: hunter2hunter") == "driver said: ****"
    masking.mask_url("postgresql://u:hunter3hunter@h/db")
    assert masking.redact("hunter3hunter") == "hunter3hunter"
    masking.register("postgresql://u:@h/db")
    assert masking.redact("u: h") == "u: h"


def test_redact_masks_query_pairs_and_longest_secret_first() -> None:
    masking.forget()
    # Issue 13: outside a URL query, key=value is conninfo, whose value runs to whitespace.
    text = "password=abc&x=1 PWD=zz token=t0k api_key=k1 apikey=k2 passwd=q other=v"
    assert masking.redact(text) == (
        "password=**** PWD=**** token=**** api_key=**** apikey=**** passwd=**** other=v"
    )
    assert masking.redact("h/db?password=abc&x=1") == "h/db?password=****&x=1"
    # Issue 13: a key that ends in a secret word is one (PGPASSWORD=, DB_PASSWORD=); one that
    # only starts with it is not.
    assert masking.redact("PGPASSWORD=abc") == "PGPASSWORD=****"
    assert masking.redact("password_hint=abc") == "password_hint=abc"
    masking.register("secret")
    masking.register("secret-longer")
    assert masking.redact("[secret-longer]") == "[****]"
    assert masking.MASK == "****"


# -- .env editing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain", "plain"),
        ("", ""),
        (
            "postgresql://u:p@h:5432/db?sslmode=require&x=1",
            "postgresql://u:p@h:5432/db?sslmode=require&x=1",
        ),
        ("a-b_c.d~e[f]!g*h+i,j%k", "a-b_c.d~e[f]!g*h+i,j%k"),
        ("has space", "'has space'"),
        ('say "hi"', "'say \"hi\"'"),
        ("it's", '"it\'s"'),
        ("back\\slash", '"back\\\\slash"'),
        ('it\'s "x"', '"it\'s \\"x\\""'),
        ("$HOME", "'$HOME'"),
        ("#hash", "'#hash'"),
    ],
)
def test_quote_value(value: str, written: str, tmp_path: Path) -> None:
    assert envfile.quote_value(value) == written
    from dotenv import dotenv_values

    path = tmp_path / ".env"
    path.write_text(f"K={written}\n")
    assert dotenv_values(path)["K"] == value


@pytest.mark.parametrize("value", ["a\nb", "a\rb"])
def test_quote_value_refuses_line_breaks(value: str) -> None:
    with pytest.raises(UsageError, match="line breaks"):
        envfile.quote_value(value)


def test_update_env_file_actions_and_layout(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(
        b"# top\n"
        b"  export KEEP='x y'\n"
        b"export DATABASE_URL=old\n"
        b"\n"
        b'MULTI="line one\n'
        b'line \\"two\\"\n'
        b'end"\n'
        b"SINGLE='a\n"
        b"b'\n"
        b"DUP=1\n"
        b"DUP=2\n"
        b"SAME=same\n"
        b"GONE=bye\n"
        b"  INDENTED=old\n"
        b"LAST=no-newline"
    )
    path.chmod(0o644)
    actions = envfile.update_env_file(
        path,
        {
            "DATABASE_URL": "new",
            "MULTI": "one line",
            "SINGLE": "s",
            "DUP": "3",
            "SAME": "same",
            "INDENTED": "new",
            "ADDED": "a b",
        },
        remove=["GONE", "NEVER"],
    )
    assert actions == {
        "DATABASE_URL": "updated",
        "MULTI": "updated",
        "SINGLE": "updated",
        "DUP": "updated",
        "SAME": "unchanged",
        "INDENTED": "updated",
        "ADDED": "created",
        "GONE": "removed",
        "NEVER": "absent",
    }
    assert path.read_bytes() == (
        b"# top\n"
        b"  export KEEP='x y'\n"
        b"export DATABASE_URL=new\n"
        b"\n"
        b"MULTI='one line'\n"
        b"SINGLE=s\n"
        b"DUP=3\n"
        b"SAME=same\n"
        b"  INDENTED=new\n"
        b"LAST=no-newline\n"
        b"ADDED='a b'\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_update_env_file_keeps_crlf(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\r\nB=2\r\n")
    assert envfile.update_env_file(path, {"A": "9", "C": "3"}) == {"A": "updated", "C": "created"}
    assert path.read_bytes() == b"A=9\r\nB=2\r\nC=3\r\n"
    path.write_bytes(b"A=1\r\nB=2")  # the last line has no ending: the old line's is used
    envfile.update_env_file(path, {"B": "5"})
    assert path.read_bytes() == b"A=1\r\nB=5\r\n"


def test_update_env_file_creates_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / ".env"
    assert envfile.update_env_file(path, {"A": "1"}) == {"A": "created"}
    assert path.read_bytes() == b"A=1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [".env"]  # no temp file left behind


def test_update_env_file_nothing_to_do_writes_nothing_but_fixes_the_mode(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\n")
    path.chmod(0o644)
    before = path.stat().st_ino
    assert envfile.update_env_file(path, {"A": "1"}, remove=["B"]) == {
        "A": "unchanged",
        "B": "absent",
    }
    assert path.stat().st_ino == before  # not replaced
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    missing = tmp_path / "missing.env"
    assert envfile.update_env_file(missing, {}, remove=["X"]) == {"X": "absent"}
    assert missing.read_bytes() == b""


def test_update_env_file_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.env"
    real.write_bytes(b"A=1\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    envfile.update_env_file(link, {"A": "2"})
    assert link.is_symlink() and real.read_bytes() == b"A=2\n"


def test_update_env_file_refuses_a_folder_and_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        envfile.update_env_file(tmp_path, {"A": "1"})
    assert caught.value.message == f"{tmp_path} is a directory, expected a .env file"
    locked = tmp_path / "locked.env"
    locked.write_bytes(b"A=1\n")
    real_read = Path.read_bytes

    def refuse(self: Path) -> bytes:
        if self.name == "locked.env":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "read_bytes", refuse)
        with pytest.raises(UsageError) as caught:
            envfile.update_env_file(locked, {"A": "2"})
    assert caught.value.message == f"{locked}: cannot be read (Permission denied)"


def test_write_private_file_cleans_up_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    envfile.write_private_file(path, b"one")
    assert path.read_bytes() == b"one" and stat.S_IMODE(path.stat().st_mode) == 0o600

    def broken_replace(src: str, dst: object) -> None:
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", broken_replace)
        with pytest.raises(OSError, match="disk full"):
            envfile.write_private_file(path, b"two")
    assert path.read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_quoted_values_that_close_on_their_line(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b'A="x \\" y"\nB=\'z\'\nC=" "\nD=\nE="a\\\\"\nF=1\n')
    envfile.update_env_file(path, {"F": "2", "D": "d"})
    assert path.read_bytes() == b'A="x \\" y"\nB=\'z\'\nC=" "\nD=d\nE="a\\\\"\nF=2\n'


def test_an_unclosed_single_quote_with_backslashes(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A='x\\\nstill \\' A'\nB=1\n")
    envfile.update_env_file(path, {"B": "2"})
    assert path.read_bytes() == b"A='x\\\nstill \\' A'\nB=2\n"


# -- env-var writing (targets/render_service.py) -------------------------------------------------------------


class RecordingOut:
    """The parts of Output the flow steps use, recorded."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.lines: list[tuple[str, str]] = []
        self.results: list[Any] = []

    def step(self, message: str) -> None:
        self.lines.append(("step", message))

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def print(self, text: str = "", *, role: str | None = None, span: int | None = None) -> None:
        self.lines.append(("print", text))  # the text, as a pipe gets it (colour is a terminal's)

    def result(self, document: Any) -> None:
        self.results.append(document)

    @contextlib.contextmanager
    def spinner(self, title: str, *, after: float = 0.0) -> Iterator[None]:
        yield  # a terminal's; nothing is printed for it


class RecordingRender:
    def __init__(self) -> None:
        self.puts: list[tuple[str, str, str]] = []

    def put_env_var(self, service_id: str, key: str, value: str) -> None:
        self.puts.append((service_id, key, value))

    def env_var(self, service_id: str, key: str) -> str | None:
        raise AssertionError(f"{key} was read again although the plan had read it")


def test_predict() -> None:
    assert env_base.predict(None, "x") == "created"
    assert env_base.predict(None, None) == "created"
    assert env_base.predict("x", "x") == "unchanged"
    assert env_base.predict("x", "y") == "updated"
    assert env_base.predict("", None) == "updated"


def test_write_service_env_puts_only_what_changes_and_masks_what_it_says() -> None:
    masking.forget()
    client, out = RecordingRender(), RecordingOut()
    desired = {
        "DATABASE_URL": "postgresql://u:pw-one@h/db",
        "REDIS_URL": "redis://:pw-two@h:6379",
        "SAME": "v",
    }
    target = ServiceEnv(cast(Any, client), service_id="srv-1", service_name="my-api")
    changes = target.write(
        desired, {"DATABASE_URL": None, "REDIS_URL": "redis://old", "SAME": "v"}, cast(Any, out)
    )
    assert client.puts == [
        ("srv-1", "DATABASE_URL", "postgresql://u:pw-one@h/db"),
        ("srv-1", "REDIS_URL", "redis://:pw-two@h:6379"),
    ]
    assert [c.to_json() for c in changes] == [
        {"key": "DATABASE_URL", "action": "created"},
        {"key": "REDIS_URL", "action": "updated"},
        {"key": "SAME", "action": "unchanged"},
    ]
    assert out.lines == [
        ("step", "DATABASE_URL: created (postgresql://u:****@h/db)"),
        ("step", "REDIS_URL: updated (redis://:****@h:6379)"),
        ("step", "SAME: unchanged (v)"),
    ]


# -- verification and its honest "not verifiable" (check/urls.py) ----------------------------


def result(target: str, *, ok: bool = True, skipped: bool = False) -> CheckResult:
    r = CheckResult(cast(Any, target), f"{target}://u:pw-x@h/0")
    r.rungs.append(Rung("url", True, 1.4, "fine"))
    if not ok:
        r.rungs.append(Rung("tcp", False, 2.6, "refused"))
        r.failed_rung = "tcp"
        r.error_code, r.error_message, r.hint = "tcp_refused", "refused", "start it"
    if skipped:
        r.skipped, r.reason = True, "allow list is empty"
    r.warn("w1")
    return r


def test_render_checks_never_reports_a_skipped_store_as_passed() -> None:
    out = RecordingOut()
    results = [result("postgres"), result("redis", skipped=True)]
    verify.render_checks(cast(Any, out), results)
    (doc,) = out.results
    assert doc["ok"] is True  # a skipped store does not fail the run...
    assert [c["ok"] for c in doc["checks"]] == [True, False]  # ...and is never "ok"
    printed = [text for kind, text in out.lines if kind == "print"]
    assert printed[-1] == "Not everything could be checked from here (see above)."
    assert "  - not checked: allow list is empty" in printed
    assert "All checks passed." not in printed


def test_render_checks_counts_failures_and_prints_each_rung() -> None:
    out = RecordingOut()
    verify.render_checks(cast(Any, out), [result("postgres", ok=False), result("redis")])
    assert out.results[0]["ok"] is False
    printed = [text for kind, text in out.lines if kind == "print"]
    assert printed == [
        "PostgreSQL  postgres://u:pw-x@h/0",
        "  ✓ url       fine  (1 ms)",
        "  ✗ tcp       refused  (3 ms)",
        "    fix: start it",
        "  ! w1",
        "",
        "Redis  redis://u:pw-x@h/0",
        "  ✓ url       fine  (1 ms)",
        "  ! w1",
        "",
        "1 of 2 failed.",
    ]
    out = RecordingOut()
    verify.render_checks(cast(Any, out), [result("redis")])
    assert out.lines[-1] == ("print", "All checks passed.") and out.results[0]["ok"] is True
    out = RecordingOut(json_mode=True)
    verify.render_checks(cast(Any, out), [result("redis", ok=False)])
    assert out.lines == [] and out.results[0]["ok"] is False


def test_checks_json_passes_with_skip() -> None:
    checked = result("redis")
    assert "skipped" not in verify.checks_json([checked])[0]
    assert verify.checks_json([checked], with_skip=True)[0]["skipped"] is False
    skipped = result("redis", skipped=True)
    assert verify.checks_json([skipped])[0]["reason"] == "allow list is empty"


def test_check_urls_finds_the_urls_and_says_where_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checks_seen: list[tuple[dict[str, str], float]]
) -> None:
    seen = checks_seen
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://env-host")
    env_file = tmp_path / "app.env"
    env_file.write_text("DATABASE_URL=postgresql://file-host/db\n")
    out = RecordingOut()
    assert (
        verify.check_urls(
            cast(Any, out), database_url=None, redis_url=None, env_file=env_file, timeout=2.0
        )
        == []
    )
    assert seen == [({"postgres": "postgresql://file-host/db", "redis": "redis://env-host"}, 2.0)]
    assert out.lines == [
        ("info", f"DATABASE_URL from {env_file}"),
        ("info", "REDIS_URL from the environment"),
    ]
    out = RecordingOut()
    verify.check_urls(
        cast(Any, out),
        database_url="postgresql://flag/db",
        redis_url=None,
        env_file=Path(".env"),  # the default may be missing (the test runs in tmp_path)
    )
    assert seen[-1] == ({"postgres": "postgresql://flag/db", "redis": "redis://env-host"}, 5.0)
    assert out.lines[0] == ("info", "DATABASE_URL from the command line")


def test_check_urls_refuses_bad_combinations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    out = cast(Any, RecordingOut())
    for timeout in (0.0, -1.0):
        with pytest.raises(UsageError, match="--timeout must be a positive number of seconds"):
            verify.check_urls(
                out, database_url="x", redis_url=None, env_file=Path(".env"), timeout=timeout
            )
    with pytest.raises(UsageError, match="do not also pass --database-url/--redis-url"):
        verify.check_urls(out, database_url="x", redis_url=None, env_file=Path(".env"), service="s")
    with pytest.raises(UsageError, match="do not also pass"):
        verify.check_urls(out, database_url=None, redis_url="x", env_file=Path(".env"), service="s")
    with pytest.raises(UsageError) as caught:
        verify.check_urls(out, database_url=None, redis_url=None, env_file=Path(".env"))
    assert caught.value.message == (
        "nothing to check: pass --database-url/--redis-url, set DATABASE_URL/REDIS_URL, "
        "or put them in .env"
    )
    with pytest.raises(UsageError, match="no such file"):  # a named env file must exist
        verify.check_urls(out, database_url=None, redis_url=None, env_file=Path("other.env"))


def test_check_urls_with_a_service_asks_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    from authkit_setup.check import service as service_check

    calls: list[dict[str, Any]] = []

    def fake_check_service(out: Any, **kwargs: Any) -> list[CheckResult]:
        calls.append(kwargs)
        return [result("postgres")]

    monkeypatch.setattr(service_check, "check_service", fake_check_service)
    got = verify.check_urls(
        cast(Any, RecordingOut()),
        database_url=None,
        redis_url=None,
        env_file=Path("x.env"),
        service="srv",
        workspace="ws",
        api_key="k",
        timeout=3.0,
    )
    assert [r.target for r in got] == ["postgres"]
    assert calls == [
        {
            "service": "srv",
            "workspace": "ws",
            "api_key": "k",
            "env_file": Path("x.env"),
            "timeout": 3.0,
        }
    ]


def test_describe_names_the_source() -> None:
    assert verify._describe("flag", Path("a.env")) == "the command line"
    assert verify._describe("env", Path("a.env")) == "the environment"
    assert verify._describe("env-file", Path("a.env")) == "a.env"
    assert verify._describe("default", Path("a.env")) == "default"
    assert {kind.value: kind.display_name for kind in Kind} == {
        "postgres": "PostgreSQL",
        "redis": "Redis",
    }


def test_time_is_not_patched() -> None:
    """These tests inject sleep and clock; none of them may really wait."""
    started = time.monotonic()
    router = respx.Router(base_url=BASE)
    router.get("/x").mock(
        side_effect=answers(
            httpx.Response(429, headers={"Retry-After": "30"}), httpx.Response(200, json=1)
        )
    )
    assert make_client(router, Recorder()).get("/x") == 1
    assert time.monotonic() - started < 5


# -- second round: each test below kills mutants the first round let through -------------------


def test_small_positive_timeouts_and_the_epoch_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(http.HTTP_TIMEOUT_ENV, "0.5")
    assert http.timeout_from_env() == 0.5
    # exactly 1e9 is still "seconds from now" (only larger numbers are epochs)
    assert http._parse_reset("1000000000", 1_700_000_000.0) == 1e9


def test_error_tree_carries_request_ids_and_exact_hints() -> None:
    ctx = http.ErrorContext("Acme", "h")
    ids = {"Render-Request-Id": "rq"}
    err = http.error_from_response(response(429, b'"x"', ids), ctx)
    assert err.hint == "wait a minute and run the same command again; it resumes where it stopped"
    err = http.error_from_response(response(503, b'"x"', ids), ctx)
    assert isinstance(err, ServerError) and err.request_id == "rq"
    assert err.hint == (
        "the provider had a problem; run the same command again, it is safe to re-run"
    )
    err = http.error_from_response(response(409, b'"x"', ids), ctx)
    assert isinstance(err, ApiError) and err.request_id == "rq"


def test_client_defaults() -> None:
    client = http.ApiClient(base_url=BASE)
    assert client.max_retries == 5
    assert client._http.timeout == httpx.Timeout(30.0, connect=10.0)
    quick = http.ApiClient(base_url=BASE, timeout=4.0)
    assert quick._http.timeout == httpx.Timeout(4.0, connect=4.0)
    slow = http.ApiClient(base_url=BASE, timeout=60.0)
    assert slow._http.timeout == httpx.Timeout(60.0, connect=10.0)


def test_retries_count_requests_and_back_off_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.5)  # jitter factor 0.75
    router = respx.Router(base_url=BASE)
    route = router.put("/x").mock(
        side_effect=answers(
            httpx.Response(500),
            httpx.Response(500),
            httpx.Response(500),
            httpx.Response(200, json=1),
        )
    )
    rec = Recorder()
    client = make_client(router, rec)
    assert client.request("PUT", "/x", json_body={"k": "v"}) == 1
    assert rec.sleeps == [0.375, 0.75, 1.5]
    assert client.request_count == 4
    assert [c.request.content for c in route.calls] == [b'{"k":"v"}'] * 4
    monkeypatch.setattr(random, "random", lambda: 0.999999)
    assert client._backoff(3) == pytest.approx(4.0, rel=1e-5)
    assert client._backoff(20) == pytest.approx(30.0, rel=1e-5)


def test_default_max_retries_is_five() -> None:
    router = respx.Router(base_url=BASE)
    route = router.get("/x").respond(502)
    with pytest.raises(ServerError):
        http.ApiClient(
            base_url=BASE, transport=httpx.MockTransport(router.handler), sleep=lambda s: None
        ).get("/x")
    assert route.call_count == 6


def test_throttle_sees_the_path_and_waits_under_a_second() -> None:
    class Limited(http.ApiClient):
        rate_limits = {"one": (1, 10.0)}

        def bucket_for(self, method: str, path: str) -> str | None:
            return "one" if path == "/limited" else None

    router = respx.Router(base_url=BASE)
    router.get("/limited").respond(200, json=0)
    rec = Recorder()
    client = make_client(router, rec, Limited)
    client.get("/limited")
    rec.now += 9.5
    client.get("/limited")
    assert rec.sleeps == [0.5] and rec.notices == []  # under a second: waited, not announced
    rec.now += 9.0
    client.get("/limited")
    assert rec.sleeps == [0.5, 1.0] and rec.notices == [(1.0, "API limit for one calls")]
    rec.now += 8.5
    client.get("/limited")
    assert rec.notices[-1] == (1.5, "API limit for one calls")


def test_exact_hints_of_transport_and_body_errors() -> None:
    router = respx.Router(base_url=BASE)
    router.post("/drop").mock(side_effect=httpx.ConnectError("x"))
    router.post("/slow").mock(side_effect=httpx.ReadTimeout("x"))
    router.post("/empty").respond(200, content=b"")
    router.post("/bad").respond(200, content=b"{")
    client = make_client(router, Recorder())
    hints = {}
    for path in ("/drop", "/slow", "/empty", "/bad"):
        with pytest.raises((ApiConnectionError, BadResponseError)) as caught:
            client.request("POST", path)
        hints[path] = caught.value.hint
    assert hints == {
        "/drop": "check the network and the address above; the run is safe to repeat",
        "/slow": "the network or the provider is slow; raise AUTHKIT_HTTP_TIMEOUT or run the same command again",
        "/empty": "run the same command again; it is safe to re-run",
        "/bad": "run the same command again; it is safe to re-run",
    }
    with pytest.raises(UsageError) as usage:
        client.get("/x", {"name": "a" * 70000})
    assert usage.value.hint == "check the names and IDs passed on the command line (too long?)"


def test_shapes_name_what_they_expected_and_pass_params_and_bodies() -> None:
    router = respx.Router(base_url=BASE)
    obj = router.get("/obj").respond(200, json=[])
    router.get("/list").respond(200, json={})
    router.get("/page").respond(200, json={})
    made = router.post("/things").respond(201, json=[1])
    router.delete("/empty").respond(200, content=b"")
    client = make_client(router, Recorder())
    with pytest.raises(BadResponseError) as caught:
        client.get_object("/obj", "a project", {"q": "1"})
    assert caught.value.message == "unexpected API response for a project: expected dict"
    assert obj.calls.last.request.url.params["q"] == "1"
    with pytest.raises(BadResponseError) as caught:
        client.get_objects("/list", "the projects")
    assert caught.value.message == "unexpected API response for the projects: expected list"
    with pytest.raises(BadResponseError) as caught:
        client.create("/things", {"name": "n"}, "a thing")
    assert caught.value.message == "unexpected API response for a thing: expected dict"
    assert made.calls.last.request.content == b'{"name":"n"}'
    with pytest.raises(BadResponseError) as caught:
        list(http.paginate_cursor(client, "/page", item_key="item"))
    assert caught.value.message == "unexpected API response for /page: expected list"
    client.delete_if_present("/empty")  # a 200 with no body is a fine answer to a DELETE


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw99@h/a@b/c", "postgresql://u:****@b/c"),  # issue 13: last '@'
        ("postgresql://u:pw99@h?x=a@b?y", "postgresql://u:****@b?y"),
        ("postgresql://h:5432/db", "postgresql://h:5432/db"),
        ("postgresql://u:p:w@h/db", "postgresql://u:****@h/db"),
    ],
)
def test_mask_url_edges(url: str, masked: str) -> None:
    assert masking.mask_url(url) == masked


def test_redact_replaces_the_longer_secret_before_a_shorter_one_inside_it() -> None:
    masking.forget()
    masking.register("zzzzzzzz1")  # 8+ characters (issue 13's free-text floor)
    masking.register("a-zzzzzzzz1")  # sorts before "zzzzzzzz1" by text, after it by length
    assert masking.redact("<a-zzzzzzzz1>") == "<****>"


def test_env_file_messages_and_odd_bytes(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        envfile.quote_value("a\nb")
    assert caught.value.message == "values with line breaks cannot be written to a .env file"
    path = tmp_path / ".env"
    path.write_bytes(b"# caf\xe9 (latin-1)\nA=1\n")  # not UTF-8: read with replacement, kept
    assert envfile.update_env_file(path, {"A": "2"}) == {"A": "updated"}
    assert path.read_bytes() == b"# caf\xe9 (latin-1)\nA=2\n"


def test_line_endings_are_kept_per_line(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\r\nB=2\n")  # mixed: the changed line keeps its own ending
    envfile.update_env_file(path, {"B": "9"})
    assert path.read_bytes() == b"A=1\r\nB=9\n"
    path.write_bytes(b"A=1\r")  # a bare CR ends the last line: nothing is added before B
    envfile.update_env_file(path, {"B": "2"})
    assert path.read_bytes() == b"A=1\rB=2\n"


@pytest.mark.parametrize(
    ("text", "is_key"),
    [
        (b'A="x" # note\nB=1\n', True),  # the quote closes before a comment
        (b"A='a\\'\nB=1\n", True),  # no escapes inside single quotes: closed
        (b'A="a\\"\nB=1\n"\n', False),  # \" is escaped: still open, B is inside the value
        (b'A="x\n"\nB=1\n', True),  # the closing quote starts its line
        (b'A="x\n\\""\nB=1\n', True),  # an escaped quote, then the closing one
        (b'A="x\nq\\"r"\nB=1\n', True),  # the quote after an escape still closes
        (b'A="x\n\\"\nB=1\n"\n', False),  # only an escaped quote: still open
    ],
)
def test_where_a_quoted_value_ends(tmp_path: Path, text: bytes, is_key: bool) -> None:
    path = tmp_path / ".env"
    path.write_bytes(text)
    action = envfile.update_env_file(path, {"B": "new"})["B"]
    assert action == ("updated" if is_key else "created")


def test_write_private_file_uses_a_hidden_temp_file_next_to_the_target(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "secret.env"
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: Any) -> None:
        seen.append(src)
        real_replace(src, dst)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", spy)
        envfile.write_private_file(target, b"x")
    (tmp,) = seen
    assert Path(tmp).parent == target.parent
    assert Path(tmp).name.startswith(".secret.env.") and tmp.endswith(".tmp")
    assert target.read_bytes() == b"x"


def test_check_urls_boundaries_and_exact_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checks_seen: list[tuple[dict[str, str], float]]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    out = cast(Any, RecordingOut())
    verify.check_urls(
        out, database_url=None, redis_url="redis://flag", env_file=Path(".env"), timeout=0.5
    )
    assert checks_seen == [({"redis": "redis://flag"}, 0.5)]
    with pytest.raises(UsageError) as caught:
        verify.check_urls(out, database_url=None, redis_url=None, env_file=Path(".env"), timeout=0)
    assert caught.value.message == "--timeout must be a positive number of seconds"
    with pytest.raises(UsageError) as caught:
        verify.check_urls(out, database_url="x", redis_url=None, env_file=Path(".env"), service="s")
    assert caught.value.message == (
        "--service reads the URLs from the service: do not also pass --database-url/--redis-url"
    )


def test_check_urls_hands_its_output_to_the_service_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from authkit_setup.check import service as service_check

    outs: list[Any] = []

    def fake_check_service(out: Any, **kwargs: Any) -> list[CheckResult]:
        outs.append(out)
        return []

    monkeypatch.setattr(service_check, "check_service", fake_check_service)
    out = RecordingOut()
    verify.check_urls(
        cast(Any, out), database_url=None, redis_url=None, env_file=Path(".env"), service="s"
    )
    assert outs == [out]


def test_connection_retries_back_off_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.5)  # jitter factor 0.75
    router = respx.Router(base_url=BASE)
    route = router.get("/x").mock(
        side_effect=answers(
            httpx.ConnectError("a"),
            httpx.ConnectError("b"),
            httpx.ConnectError("c"),
            httpx.Response(200, json=1),
        )
    )
    rec = Recorder()
    assert make_client(router, rec).get("/x") == 1
    assert rec.sleeps == [0.375, 0.75, 1.5] and route.call_count == 4
    failing = respx.Router(base_url=BASE)
    dropped = failing.get("/x").mock(side_effect=httpx.ConnectError("down"))
    with pytest.raises(ApiConnectionError):
        make_client(failing, Recorder(), max_retries=3).get("/x")
    assert dropped.call_count == 4
