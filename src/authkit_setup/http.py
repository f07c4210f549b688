"""One API client base for every provider: auth, timeouts, retries by policy, errors, paging.

Retry policy (one place, see `ApiClient.request`):
- 429 (and a provider's `retry_any_method` statuses, e.g. Neon's 423 Locked) is retried for every
  method: the server refused the request, nothing was applied. The wait
  honours `Retry-After`, then `Ratelimit-Reset` / `X-RateLimit-Reset` (seconds, or an epoch).
- 5xx, timeouts, dropped connections and unreadable 2xx bodies (malformed JSON, empty) are
  retried only for idempotent calls (GET, PUT, DELETE, PATCH). A POST that creates something is
  never retried blindly: the caller looks the name up first (see `pipeline/provision.py`), so
  neither a retry nor a re-run can make a duplicate.

Each call may take `AUTHKIT_HTTP_TIMEOUT` seconds (default 30): raise it on a slow network;
the fault tests lower it to exercise timeouts quickly. `AUTHKIT_HTTP_RETRIES` (default 5) is how
often a failed call is tried again; every retry says on stderr what failed and when the next try
is, and the final error names the API's address and the variable that set it.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Required, Self, TypedDict

import httpx

from authkit_setup import __version__
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
from authkit_setup.secrets import redact, register

HTTP_TIMEOUT_ENV = "AUTHKIT_HTTP_TIMEOUT"
HTTP_RETRIES_ENV = "AUTHKIT_HTTP_RETRIES"
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 5
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "PATCH", "HEAD"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_SINGLE_WAIT = 120.0

Sleep = Callable[[float], None]
Clock = Callable[[], float]
WaitNotice = Callable[[float, str], None]
RetryNotice = Callable[[str], None]  # one line for stderr: what failed and what happens next


def timeout_from_env(default: float = DEFAULT_TIMEOUT) -> float:
    """Seconds each API call may take: $AUTHKIT_HTTP_TIMEOUT when set, else `default`."""
    raw = os.environ.get(HTTP_TIMEOUT_ENV, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"{HTTP_TIMEOUT_ENV}={raw!r} is not a positive number of seconds")
    return seconds


def retries_from_env(default: int = DEFAULT_RETRIES) -> int:
    """How often a failed idempotent call is tried again: $AUTHKIT_HTTP_RETRIES (0 = fail fast)."""
    raw = os.environ.get(HTTP_RETRIES_ENV, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 20:
        raise UsageError(f"{HTTP_RETRIES_ENV}={raw!r} is not a whole number from 0 to 20")
    return int(raw)


@dataclass
class RateBucket:
    """A client-side sliding-window limit, so we wait instead of hammering the server."""

    limit: int
    window: float
    stamps: deque[float] = field(default_factory=deque)

    def delay(self, now: float) -> float:
        while self.stamps and now - self.stamps[0] >= self.window:
            self.stamps.popleft()
        if len(self.stamps) < self.limit:
            return 0.0
        return self.window - (now - self.stamps[0])

    def take(self, now: float) -> None:
        self.stamps.append(now)


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What a provider adds to generic HTTP errors: its name and where to fix credentials."""

    provider: str
    credentials_hint: str


def _parse_reset(value: str | None, now_epoch: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if "," in value else None
        return max(0.0, parsed.timestamp() - now_epoch) if parsed else None
    # Render documents epoch seconds but sends seconds-until-reset; accept both.
    return max(0.0, number - now_epoch) if number > 1e9 else max(0.0, number)


def retry_after(response: httpx.Response, *, rate_limited: bool = True) -> float | None:
    """Seconds the server asks us to wait, from the first header that says so.

    Render sends `Ratelimit-Reset` on every response: the end of the current rate-limit window,
    up to a minute (or an hour for creates) away. It is a wait only on a 429; for anything else
    (`rate_limited=False`, e.g. a 503) only `Retry-After` asks us to wait.
    """
    now = time.time()
    headers = ("retry-after", "ratelimit-reset", "x-ratelimit-reset") if rate_limited else ()
    for header in headers or ("retry-after",):
        seconds = _parse_reset(response.headers.get(header), now)
        if seconds is not None:
            return seconds
    return None


def error_message(response: httpx.Response) -> str:
    """The server's own words: `{"message"}`, `{"error"}`, a JSON string, or raw text."""
    text = response.text.strip()
    if not text:
        return f"HTTP {response.status_code} with an empty body"
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(body, str):
        return body
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail", "msg"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return text[:300]


def error_from_response(response: httpx.Response, ctx: ErrorContext) -> ApiError | CredentialsError:
    """Map an HTTP error status to the error tree, in one place."""
    status = response.status_code
    message = error_message(response)
    request_id = response.headers.get("render-request-id") or response.headers.get("x-request-id")
    where = f"{ctx.provider} API: {response.request.method} {response.request.url.path}"
    if status in (401, 403):
        verb = "rejected the API key" if status == 401 else "refused access"
        return CredentialsError(
            f"{ctx.provider} {verb} ({status}: {message})", hint=ctx.credentials_hint
        )
    if status == 404:
        return NotFoundError(
            f"{where}: not found ({message})", status=status, request_id=request_id
        )
    if status == 429:
        return RateLimitedError(
            f"{where}: rate limited ({message})",
            hint="wait a minute and run the same command again; it resumes where it stopped",
            status=status,
            request_id=request_id,
        )
    if status >= 500:
        return ServerError(
            f"{where}: server error {status} ({message})",
            hint="the provider had a problem; run the same command again, it is safe to re-run",
            status=status,
            request_id=request_id,
        )
    return ApiError(
        f"{where}: {status} {message}", status=status, request_id=request_id, detail=message
    )


class ClientOptions(TypedDict, total=False):
    """What every client takes besides its credentials (see `ApiClient.__init__`)."""

    base_url: Required[str]
    base_url_source: str | None
    timeout: float
    transport: httpx.BaseTransport | None
    max_retries: int
    sleep: Sleep
    clock: Clock
    on_wait: WaitNotice | None
    on_retry: RetryNotice | None
    buckets: Mapping[str, RateBucket] | None


def describe_transport_error(exc: httpx.TransportError) -> str:
    """What a dropped call looked like, in words: "refused the connection", "did not answer"."""
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "did not accept the connection in time"
    if isinstance(exc, httpx.TimeoutException):
        return "did not answer in time"
    if "refused" in text:
        return "refused the connection"
    if (
        "name or service not known" in text
        or "nodename nor servname" in text
        or ("temporary failure in name resolution" in text)
    ):
        return "could not be found (DNS)"
    if "unreachable" in text:
        return "is unreachable from here"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "dropped the connection"
    return f"could not be reached ({redact(str(exc)) or type(exc).__name__})"


class ApiClient:
    """Base client over `httpx.Client(transport=...)`. Providers subclass it, set the class
    attributes below and add endpoints; a bearer-token provider needs no constructor of its own."""

    provider = "API"
    credentials_hint = "check the API key"
    # Statuses that mean "refused, nothing applied, try again later" for every method, like 429
    # (providers add theirs: Neon answers 423 while a conflicting operation runs).
    retry_any_method: frozenset[int] = frozenset({429})
    # Client-side limits, bucket name -> (calls, per seconds); `bucket_for` names a call's bucket.
    rate_limits: ClassVar[Mapping[str, tuple[int, float]]] = {}

    def __init__(
        self,
        *,
        base_url: str,
        base_url_source: str | None = None,
        token: str | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 5,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        on_wait: WaitNotice | None = None,
        on_retry: RetryNotice | None = None,
        buckets: Mapping[str, RateBucket] | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": f"authkit-setup/{__version__}"}
        if token:
            register(token)
            headers["Authorization"] = f"Bearer {token}"
        if auth:
            register(auth[1])
        self._http = httpx.Client(
            base_url=base_url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )
        self.max_retries = max_retries
        self._sleep = sleep
        self._clock = clock
        self._on_wait = on_wait
        self._on_retry = on_retry
        # Where the address came from, for error messages: "set by RENDER_API_URL", "the default".
        self.base_url_source = base_url_source
        self._buckets = {name: RateBucket(*limit) for name, limit in self.rate_limits.items()}
        self._buckets.update(buckets or {})
        self._bucket_lock = threading.Lock()
        self.request_count = 0
        self.ctx = ErrorContext(self.provider, self.credentials_hint)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rate limiting ------------------------------------------------------------------
    def bucket_for(self, method: str, path: str) -> str | None:
        """Name of the client-side bucket a call counts against (providers override)."""
        return None

    def _throttle(self, method: str, path: str) -> None:
        name = self.bucket_for(method, path)
        bucket = self._buckets.get(name) if name else None
        if bucket is None:
            return
        while True:
            with self._bucket_lock:
                wait = bucket.delay(self._clock())
                if wait <= 0:
                    bucket.take(self._clock())
                    return
            self._notify_wait(wait, f"{self.provider} limit for {name} calls")
            self._sleep(wait)

    def _notify_wait(self, seconds: float, reason: str) -> None:
        if self._on_wait is not None and seconds >= 1.0:
            self._on_wait(seconds, reason)

    # -- requests -----------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        return float(min(30.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
        expect_json: bool = True,
    ) -> Any:
        """Send one call with the retry policy; return the decoded JSON body (or None)."""
        method = method.upper()
        retryable_failure = method in IDEMPOTENT if idempotent is None else idempotent
        attempt = 0
        while True:
            self._throttle(method, path)
            self.request_count += 1
            try:
                response = self._http.request(method, path, params=params, json=json_body)
            except httpx.InvalidURL as exc:  # e.g. a 100 kB --service name in the query
                raise UsageError(
                    f"{self.provider} API: {method} {path}: cannot build the request URL ({exc})",
                    hint="check the names and IDs passed on the command line (too long?)",
                ) from None
            except httpx.TransportError as exc:  # timeouts included
                if retryable_failure and attempt < self.max_retries:
                    wait = self._backoff(attempt)
                    self._notify_retry(
                        f"{self.where} {describe_transport_error(exc)}", attempt, wait
                    )
                    self._sleep(wait)
                    attempt += 1
                    continue
                raise self._connection_error(method, path, exc, attempt + 1) from None

            status = response.status_code
            if status in self.retry_any_method and attempt < self.max_retries:
                asked = retry_after(response)
                wait = self._backoff(attempt) if asked is None else asked + random.random() * 0.25
                wait = min(wait, MAX_SINGLE_WAIT)
                reason = "rate limit" if status == 429 else "busy signal"
                self._notify_wait(wait, f"{self.provider} {reason} ({status})")
                self._sleep(wait)
                attempt += 1
                continue
            if status in RETRY_STATUSES and retryable_failure and attempt < self.max_retries:
                asked = retry_after(response, rate_limited=False)
                wait = min(asked, MAX_SINGLE_WAIT) if asked is not None else self._backoff(attempt)
                self._notify_retry(f"{self.where} answered {status}", attempt, wait)
                self._sleep(wait)
                attempt += 1
                continue
            if status >= 400:
                raise error_from_response(response, self.ctx)
            try:
                return self._decode(response, method, path, expect_json)
            except BadResponseError:
                # A truncated or empty answer to a read is a transport hiccup: read again. (A
                # create is not resent: pipeline/provision.py looks the name up instead.)
                if not (retryable_failure and attempt < self.max_retries):
                    raise
                wait = self._backoff(attempt)
                self._notify_retry(f"{self.where} sent an unreadable answer", attempt, wait)
                self._sleep(wait)
                attempt += 1

    @property
    def address(self) -> str:
        """host:port of the API, as a person would look for it (no path, no credentials)."""
        url = self._http.base_url
        port = url.port or (443 if url.scheme == "https" else 80)
        return f"{url.host}:{port}"

    @property
    def where(self) -> str:
        return f"{self.provider} API at {self.address}"

    def _notify_retry(self, what: str, attempt: int, wait: float) -> None:
        if self._on_retry is not None:
            shown = f"{wait:.0f} s" if wait >= 1 else f"{wait:.1f} s"
            self._on_retry(f"{what}; retry {attempt + 1} of {self.max_retries} in {shown}")

    def _connection_error(
        self, method: str, path: str, exc: httpx.TransportError, sent: int
    ) -> ApiConnectionError:
        source = f" ({self.base_url_source})" if self.base_url_source else ""
        tries = f" after {sent} tries" if sent > 1 else ""
        what = describe_transport_error(exc)
        if isinstance(exc, httpx.TimeoutException):
            return ApiConnectionError(
                f"{self.where}{source} {what}{tries}: {method} {path}",
                hint="the network or the provider is slow; raise AUTHKIT_HTTP_TIMEOUT or run "
                "the same command again",
            )
        return ApiConnectionError(
            f"{self.where}{source} {what}{tries}: {method} {path}",
            hint="check the network and the address above; the run is safe to repeat",
        )

    def _decode(self, response: httpx.Response, method: str, path: str, expect_json: bool) -> Any:
        if not response.content.strip():
            if expect_json and response.status_code == 200:
                raise BadResponseError(
                    f"{self.provider} API: {method} {path} returned an empty body where JSON was expected",
                    hint="run the same command again; it is safe to re-run",
                )
            return None
        try:
            return response.json()
        except ValueError:
            if not expect_json:
                return response.text
            raise BadResponseError(
                f"{self.provider} API: {method} {path} returned malformed JSON",
                hint="run the same command again; it is safe to re-run",
            ) from None

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    # -- the shapes every provider's endpoints share ------------------------------------------
    def get_object(
        self, path: str, what: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """GET a JSON object (`what` names it in the error when the body is something else)."""
        return dict(expect_type(self.get(path, params), dict, what))

    def get_objects(self, path: str, what: str) -> list[dict[str, Any]]:
        """GET a JSON array (not paged) and keep its objects."""
        return [dict(e) for e in expect_type(self.get(path), list, what) if isinstance(e, dict)]

    def create(self, path: str, body: Any, what: str) -> dict[str, Any]:
        """POST a create. Never retried on 5xx/timeouts: pipeline/provision.py looks the name up
        first, so neither a retry nor a re-run can make a duplicate."""
        answer = self.request("POST", path, json_body=body, idempotent=False)
        return dict(expect_type(answer, dict, what))

    def delete_if_present(self, path: str, *, expect_json: bool = False) -> None:
        """DELETE `path`; a 404 means it is gone already, which is what was wanted."""
        try:
            self.request("DELETE", path, expect_json=expect_json)
        except NotFoundError:
            pass


def expect_type(value: Any, kind: type, what: str) -> Any:
    """Defensive parsing of API bodies: a clear error instead of a KeyError deep inside."""
    if not isinstance(value, kind):
        raise BadResponseError(f"unexpected API response for {what}: expected {kind.__name__}")
    return value


def required_fields(body: Mapping[str, Any], *keys: str, what: str) -> list[str]:
    """The values of `keys` in an API body, as strings; a missing one is a BadResponseError
    (`what` is the start of its message: "Neon returned a project")."""
    try:
        return [str(body[key]) for key in keys]
    except KeyError as missing:
        raise BadResponseError(f"{what} without {missing}") from None


def paginate_cursor(
    client: ApiClient,
    path: str,
    *,
    item_key: str,
    params: Mapping[str, Any] | None = None,
    limit: int = 100,
) -> Iterator[dict[str, Any]]:
    """Render-style cursor paging: `[{item_key: {...}, "cursor": "..."}]` until an empty page."""
    query: dict[str, Any] = dict(params or {})
    query["limit"] = limit
    seen: set[str] = set()
    while True:
        page = expect_type(client.get(path, query), list, path)
        if not page:
            return
        cursor = None
        for entry in page:
            if not isinstance(entry, Mapping) or not isinstance(entry.get(item_key), Mapping):
                raise BadResponseError(f"unexpected API response for {path}: missing {item_key!r}")
            cursor = entry.get("cursor")
            yield dict(entry[item_key])
        if len(page) < limit or not isinstance(cursor, str) or cursor in seen:
            return
        seen.add(cursor)
        query["cursor"] = cursor
