"""The API client base: retries by policy, rate-limit waits, error mapping, paging.

Client unit tests use httpx.MockTransport with an injected sleep and clock (no real waiting).
"""

from __future__ import annotations

import json

import httpx
import pytest

from authkit_setup.errors import ApiConnectionError, BadResponseError, CredentialsError, ServerError
from authkit_setup.http import ApiClient, RateBucket, paginate_cursor, retry_after


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.notices: list[tuple[float, str]] = []
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def client(handler: httpx.MockTransport, rec: Recorder, **kwargs: object) -> ApiClient:
    return ApiClient(
        base_url="http://api.test/v1",
        token="rnd_secret_token_value",
        transport=handler,
        sleep=rec.sleep,
        clock=rec.clock,
        on_wait=lambda s, r: rec.notices.append((s, r)),
        **kwargs,  # type: ignore[arg-type]
    )


def test_429_honours_ratelimit_reset_and_says_so() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(
                429, headers={"Ratelimit-Reset": "7"}, json={"message": "slow down"}
            )
        return httpx.Response(200, json={"ok": True})

    rec = Recorder()
    assert client(httpx.MockTransport(handler), rec).get("/x") == {"ok": True}
    assert 7 <= rec.sleeps[0] < 7.5
    assert rec.notices and rec.notices[0][0] >= 7


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [("Retry-After", "3", 3), ("Ratelimit-Reset", "12", 12), ("X-RateLimit-Reset", "5", 5)],
)
def test_retry_after_headers(header: str, value: str, expected: float) -> None:
    response = httpx.Response(429, headers={header: value})
    assert retry_after(response) == expected


def test_epoch_reset_is_understood() -> None:
    import time

    response = httpx.Response(429, headers={"Ratelimit-Reset": str(int(time.time()) + 30)})
    wait = retry_after(response)
    assert wait is not None and 25 <= wait <= 31


def test_post_is_not_retried_on_5xx_but_get_is() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(503, json={"message": "down"})

    rec = Recorder()
    api = client(httpx.MockTransport(handler), rec, max_retries=2)
    with pytest.raises(ServerError):
        api.request("POST", "/postgres", json_body={})
    assert calls == ["POST"]
    calls.clear()
    with pytest.raises(ServerError):
        api.get("/postgres")
    assert calls == ["GET", "GET", "GET"]


def test_connection_errors_become_one_line_errors_without_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("boom rnd_secret_token_value")

    rec = Recorder()
    with pytest.raises(ApiConnectionError) as info:
        client(httpx.MockTransport(handler), rec, max_retries=1).get("/x")
    assert "rnd_secret_token_value" not in str(info.value)


def test_401_is_a_credentials_error() -> None:
    rec = Recorder()
    api = client(
        httpx.MockTransport(lambda r: httpx.Response(401, json={"message": "unauthorized"})), rec
    )
    with pytest.raises(CredentialsError) as info:
        api.get("/users")
    assert "rejected the API key" in str(info.value)


@pytest.mark.parametrize("body", [b"", b"{broken"])
def test_bad_bodies(body: bytes) -> None:
    rec = Recorder()
    api = client(httpx.MockTransport(lambda r: httpx.Response(200, content=body)), rec)
    with pytest.raises(BadResponseError):
        api.get("/x")


@pytest.mark.parametrize("body", [b"", b"{broken"])
def test_a_bad_body_is_read_again_but_a_create_is_not_resent(body: bytes) -> None:
    rec = Recorder()
    answers = iter([body, b'{"ok": true}'])
    api = client(httpx.MockTransport(lambda r: httpx.Response(200, content=next(answers))), rec)
    assert api.get("/x") == {"ok": True}
    assert len(rec.sleeps) == 1
    answers = iter([body, b'{"ok": true}'])
    with pytest.raises(BadResponseError):
        api.create("/x", {"name": "n"}, "created thing")


@pytest.mark.parametrize("body", ['{"message": "m1"}', '"m1"', '{"error": "m1"}', "m1"])
def test_error_bodies_in_every_shape(body: str) -> None:
    rec = Recorder()
    api = client(httpx.MockTransport(lambda r: httpx.Response(400, content=body.encode())), rec)
    with pytest.raises(Exception, match="m1"):
        api.get("/x")


def test_client_side_bucket_waits_instead_of_hammering() -> None:
    rec = Recorder()

    class Limited(ApiClient):
        def bucket_for(self, method: str, path: str) -> str | None:
            return "get"

    api = Limited(
        base_url="http://api.test",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})),
        sleep=rec.sleep,
        clock=rec.clock,
        on_wait=lambda s, r: rec.notices.append((s, r)),
        buckets={"get": RateBucket(2, 60.0)},
    )
    for _ in range(3):
        api.get("/x")
    assert rec.sleeps == [60.0]
    assert rec.notices == [(60.0, "API limit for get calls")]


def test_cursor_paging_follows_the_last_cursor_and_stops() -> None:
    items = [{"envVar": {"key": f"K{i}", "value": "v"}, "cursor": f"c{i}"} for i in range(250)]

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        start = 0 if cursor is None else int(cursor[1:]) + 1
        return httpx.Response(200, content=json.dumps(items[start : start + 100]).encode())

    rec = Recorder()
    api = client(httpx.MockTransport(handler), rec)
    keys = [e["key"] for e in paginate_cursor(api, "/env-vars", item_key="envVar")]
    assert len(keys) == 250 and keys[-1] == "K249"
