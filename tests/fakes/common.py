"""Shared plumbing for the Neon, Supabase and Upstash API fakes (``neon_api``, ``supabase_api``,
``upstash_api``): a stdlib HTTP server on 127.0.0.1 in a background thread, routing, fault
injection, a request log, fixed-window rate limiting, a manual clock and the store backend.

Everything here is provider-neutral; a fake subclasses :class:`FakeApiServer`, marks its
handlers with :func:`serves` and supplies what its API does differently: auth, error body, rate
limit, headers added to injected faults and the stores behind its records (hooks of
:class:`FakeApiServer`). :class:`BearerKeys` supplies the auth of the fakes that take Bearer
keys (the Render fake uses it too, with :class:`ServedFake`'s server, faults and request log).

Conventions shared by the three fakes:

- ``fake.base_url`` is what a client uses as its API base (``…/api/v2`` for Neon, the bare
  origin for Supabase whose paths start ``/v1``, ``…/v2`` for Upstash).
- Paths in the request log and in :meth:`FakeApiServer.inject` are relative to ``base_url``
  (``/projects`` for Neon, ``/v1/projects`` for Supabase, ``/redis/database`` for Upstash),
  without the query string.
- Every request is handled under one lock per fake (state is consistent and thread-safe; a
  slow backend call therefore blocks the whole fake for that time).
- Reachable mode (``fake.reachable``): the fields a client connects with carry
  ``connect_host``/``connect_port`` or the backend's host/port instead of realistic provider
  host names. On by default when ``connect_host`` is given or a backend other than
  :class:`NullBackend` is passed; force either way with ``reachable=``. Each fake's module
  docstring lists exactly which fields change.
- Time: any ``Callable[[], float]`` (default ``time.monotonic``); :class:`ManualClock` moves
  only when told to. Status transitions and rate-limit windows follow that clock; timestamps
  in JSON are "wall time at construction + clock elapsed". :class:`Fault.slow` sleeps in REAL
  time (it exists to trigger client timeouts).
"""

from __future__ import annotations

import json
import math
import random
import re
import secrets
import socket
import socketserver
import string
import sys
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import (
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    Self,
    TypedDict,
    TypeVar,
    cast,
    overload,
)
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "ApiRequest",
    "forget_handed_out",
    "hand_out",
    "handed_out_secrets",
    "ApiResponse",
    "BearerKeys",
    "Clock",
    "ClosesOnExit",
    "FakeApiServer",
    "FakeOptions",
    "Fault",
    "FaultKind",
    "HttpError",
    "InjectedFault",
    "ManualClock",
    "NullBackend",
    "PgCredentials",
    "RateDecision",
    "Record",
    "RecordedRequest",
    "RedisCredentials",
    "RequestLog",
    "StoreBackend",
    "drop_after",
    "drop_before",
    "empty_body",
    "malformed_json",
    "served",
    "serves",
    "slow",
    "status",
    "url_host",
]

LOOPBACK = "127.0.0.1"
JSON_TYPE = "application/json; charset=utf-8"
_PASSWORD_ALPHABET = string.ascii_letters + string.digits

Clock = Callable[[], float]
"""Seconds on an arbitrary, monotonic scale. ``time.monotonic`` or a :class:`ManualClock`."""

ADJECTIVES = (
    "ancient", "bold", "calm", "cold", "damp", "delicate", "eager", "fancy", "gentle", "holy",
    "icy", "jolly", "late", "lively", "misty", "morning", "noisy", "old", "patient", "proud",
    "quiet", "rapid", "raspy", "royal", "shy", "silent", "steady", "sweet", "tight", "wild",
)  # fmt: skip
NOUNS = (
    "bird", "bonus", "bread", "breeze", "brook", "cake", "cell", "cloud", "dawn", "dew",
    "dream", "feather", "field", "fire", "flower", "forest", "frog", "glitter", "grass", "lake",
    "leaf", "meadow", "moon", "night", "river", "sea", "snow", "sound", "star", "stallion",
)  # fmt: skip


def url_host(host: str) -> str:
    """``host`` as it goes into a URL (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def split_prefix(path: str, prefix: str) -> tuple[str, bool]:
    """``path`` without the API ``prefix`` and whether it was under it at all."""
    if not prefix:
        return path, True
    if path == prefix or path.startswith(prefix + "/"):
        return path[len(prefix) :] or "/", True
    return path, False


def auth_scheme(authorization: str | None) -> str | None:
    """The scheme of an ``Authorization`` header (``Bearer``…), never the credentials."""
    return (authorization.split(" ", 1)[0] or None) if authorization else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of a ``Bearer`` ``Authorization`` header (stripped), None for any other."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def random_password(length: int = 32) -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


# --------------------------------------------------------------------------------------------
# Clock


class ManualClock:
    """A clock that moves only when told to. Pass it as ``clock=``.

    Thread-safe. ``sleep`` is an alias of ``advance`` for code under test that takes an
    injected ``sleep`` function, so its waiting moves the fakes' time.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def __call__(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot move the clock backwards ({seconds} s)")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))


# --------------------------------------------------------------------------------------------
# Every secret a fake hands out, for the leak checks


_handed_out: set[str] = set()
_handed_out_lock = threading.Lock()


def hand_out(*secrets_: str) -> None:
    """Record secrets a fake gives (or accepts from) a client: store passwords, tokens, API
    keys. `tests.helpers.assert_no_secret` looks for every one of them in every output, so a
    leak check cannot miss a secret because its test forgot to collect it."""
    with _handed_out_lock:
        _handed_out.update(s for s in secrets_ if s)


def handed_out_secrets() -> frozenset[str]:
    """Every secret recorded by :func:`hand_out` since the last :func:`forget_handed_out`."""
    with _handed_out_lock:
        return frozenset(_handed_out)


def forget_handed_out() -> None:
    with _handed_out_lock:
        _handed_out.clear()


# --------------------------------------------------------------------------------------------
# Store backends


@dataclass(frozen=True, slots=True)
class PgCredentials:
    """A real (or fabricated) PostgreSQL login: where to connect, which database, who. Every
    backend returns one of these, so making one records its password (see :func:`hand_out`)."""

    host: str
    port: int
    database: str
    user: str
    password: str

    def __post_init__(self) -> None:
        hand_out(self.password)


@dataclass(frozen=True, slots=True)
class RedisCredentials:
    """A real (or fabricated) Redis login: where to connect and the ACL user + password. Making
    one records its password (see :func:`hand_out`)."""

    host: str
    port: int
    username: str
    password: str

    def __post_init__(self) -> None:
        hand_out(self.password)


class StoreBackend(Protocol):
    """What really exists behind a fake database, so tests can connect for real.

    Same method names and dataclass fields as the Render fake's backend, plus the optional
    ``password`` of :meth:`create_postgres` (Supabase: the client chooses ``db_pass``; Neon:
    a branch's role keeps its parent's password).

    Contract:

    - ``create_postgres`` makes ``user`` able to log in to ``database`` (creating both), with
      ``password`` when given, else one it chooses. It returns what it REALLY created. A
      backend that serves several fake projects on one server should make names unique (e.g.
      add a suffix) and return the names it used: the fakes hand out the returned
      ``user``/``database``/``password``/``host``/``port``, not the requested names. When a
      ``password`` is given, the returned password must be that one.
    - ``drop_postgres`` is called with the RETURNED database and user.
    - ``create_redis`` gets a name unique per fake database (Upstash: ``upstash-<id>``). Upstash
      clients log in as ``default`` (``rediss://default:<pw>@…``) and each database has its
      own endpoint and password, so a backend serving Upstash on a shared Redis gives each
      database its own port that maps ``default`` to that database's ACL user (see
      ``tests.servers.RedisDatabaseFronts``); never add the passwords to one shared ``default``
      user, which would let any database's password open every database.
    """

    def create_postgres(
        self, database: str, user: str, password: str | None = None
    ) -> PgCredentials: ...

    def drop_postgres(self, database: str, user: str) -> None: ...

    def create_redis(self, username: str) -> RedisCredentials: ...

    def drop_redis(self, username: str) -> None: ...


class NullBackend:
    """Fabricates credentials and touches nothing (hosts end in ``.invalid``, never resolve).

    It keeps what is "live" so tests can check that deletes reach the backend: ``postgres``
    and ``redis`` list the credentials created and not dropped yet (a drop removes the
    newest matching entry). Names are returned unchanged.
    """

    default_pg_host: ClassVar[str] = "postgres.fake.invalid"
    default_redis_host: ClassVar[str] = "redis.fake.invalid"

    def __init__(
        self,
        *,
        pg_host: str | None = None,
        pg_port: int = 5432,
        redis_host: str | None = None,
        redis_port: int = 6379,
    ) -> None:
        self.pg_host = pg_host if pg_host is not None else self.default_pg_host
        self.pg_port = pg_port
        self.redis_host = redis_host if redis_host is not None else self.default_redis_host
        self.redis_port = redis_port
        self._lock = threading.Lock()
        self.postgres: list[PgCredentials] = []
        self.redis: list[RedisCredentials] = []

    def create_postgres(
        self, database: str, user: str, password: str | None = None
    ) -> PgCredentials:
        creds = PgCredentials(
            self.pg_host, self.pg_port, database, user, password or random_password()
        )
        with self._lock:
            self.postgres.append(creds)
        return creds

    def drop_postgres(self, database: str, user: str) -> None:
        with self._lock:
            for creds in reversed(self.postgres):
                if (creds.database, creds.user) == (database, user):
                    self.postgres.remove(creds)
                    return

    def create_redis(self, username: str) -> RedisCredentials:
        creds = RedisCredentials(self.redis_host, self.redis_port, username, random_password())
        with self._lock:
            self.redis.append(creds)
        return creds

    def drop_redis(self, username: str) -> None:
        with self._lock:
            for creds in reversed(self.redis):
                if creds.username == username:
                    self.redis.remove(creds)
                    return


# --------------------------------------------------------------------------------------------
# Faults

FaultKind = Literal["status", "slow", "drop_before", "drop_after", "malformed_json", "empty_body"]


@dataclass(frozen=True)
class Fault:
    """What to do to a matching request. Build with the class methods or the module functions
    of the same names (``status(429)``, ``slow(2)``, ``drop_before()``...).

    ===================  ===========================================================  =========
    kind                 what the client sees                                          applied?
    ===================  ===========================================================  =========
    ``status``           ``code`` with ``body`` (None: the provider's error body for   no
                         that code) and ``headers`` (added last; a None value removes
                         a header)
    ``slow``             the normal answer after ``seconds`` of REAL time              yes
    ``drop_before``      the connection closes, no response                           no
    ``drop_after``       the connection closes, no response                           yes
    ``malformed_json``   ``status_code`` (200) + JSON content type + ``{"broken":``    no
    ``empty_body``       ``status_code`` (200) + JSON content type + empty body        no
    ===================  ===========================================================  =========

    Bodies: ``bytes`` are sent as they are, anything else is JSON-encoded (so a ``str``
    becomes a JSON string, which is what Upstash's errors look like).
    """

    kind: FaultKind
    status_code: int = 200
    body: Any = None
    headers: Mapping[str, str | None] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def status(
        cls, code: int, body: Any = None, headers: Mapping[str, str | None] | None = None
    ) -> Self:
        return cls("status", status_code=code, body=body, headers=dict(headers or {}))

    @classmethod
    def slow(cls, seconds: float) -> Self:
        return cls("slow", seconds=seconds)

    @classmethod
    def drop_before(cls) -> Self:
        return cls("drop_before")

    @classmethod
    def drop_after(cls) -> Self:
        return cls("drop_after")

    @classmethod
    def malformed_json(cls, status: int = 200) -> Self:
        return cls("malformed_json", status_code=status, body=b'{"broken":')

    @classmethod
    def empty_body(cls, status: int = 200) -> Self:
        return cls("empty_body", status_code=status, body=b"")


def status(code: int, body: Any = None, headers: Mapping[str, str | None] | None = None) -> Fault:
    """Answer ``code`` without applying the request (see :class:`Fault`)."""
    return Fault.status(code, body, headers)


def slow(seconds: float) -> Fault:
    """Sleep ``seconds`` of real time, then handle the request normally."""
    return Fault.slow(seconds)


def drop_before() -> Fault:
    """Close the connection without a response; the request is NOT applied."""
    return Fault.drop_before()


def drop_after() -> Fault:
    """Apply the request, then close the connection without a response."""
    return Fault.drop_after()


def malformed_json(status: int = 200) -> Fault:
    """``status`` with a truncated JSON body; the request is NOT applied."""
    return Fault.malformed_json(status)


def empty_body(status: int = 200) -> Fault:
    """``status`` with an empty body and a JSON content type; the request is NOT applied."""
    return Fault.empty_body(status)


@dataclass
class InjectedFault:
    """Handle returned by ``inject``: ``fired`` counts hits, ``remaining`` what is left."""

    method: str
    pattern: re.Pattern[str]
    fault: Fault
    remaining: int | None
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.method in ("*", method) and self.pattern.fullmatch(path) is not None


# --------------------------------------------------------------------------------------------
# Request log


@dataclass
class RecordedRequest:
    """One request as the fake saw it. No header VALUES are kept (never the credentials).

    ``path``: relative to ``base_url``, percent-decoded, no query. ``query``: every value of
    every parameter. ``body``: parsed JSON, the raw text when it is not JSON, None when empty.
    ``auth_scheme``: ``"Bearer"``/``"Basic"``/None, the scheme only. ``status``: what was sent
    back (None when the connection was dropped). ``fault``: the injected fault kind, if any.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    auth_scheme: str | None = None
    status: int | None = None
    fault: str | None = None
    request_id: str = ""


class RequestLog:
    """A snapshot of the request log, oldest first: iterable, indexable, ``len``-able."""

    def __init__(self, records: Iterable[RecordedRequest], prefix: str = "") -> None:
        self._records = list(records)
        self._prefix = prefix

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> RecordedRequest: ...

    @overload
    def __getitem__(self, index: slice) -> list[RecordedRequest]: ...

    def __getitem__(self, index: int | slice) -> RecordedRequest | list[RecordedRequest]:
        return self._records[index]

    def __repr__(self) -> str:
        return f"RequestLog({[f'{r.method} {r.path} -> {r.status}' for r in self._records]})"

    def matching(
        self, method: str | None = None, path_prefix: str | None = None
    ) -> list[RecordedRequest]:
        """Requests with this method (any case) whose path starts with ``path_prefix``
        (a leading API prefix such as ``/api/v2`` or ``/v2`` is ignored)."""
        if path_prefix is not None and self._prefix and path_prefix.startswith(self._prefix):
            path_prefix = path_prefix[len(self._prefix) :] or "/"
        return [
            r
            for r in self._records
            if (method is None or r.method == method.upper())
            and (path_prefix is None or r.path.startswith(path_prefix))
        ]

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return len(self.matching(method, path_prefix))

    def last(self, method: str | None = None, path_prefix: str | None = None) -> RecordedRequest:
        found = self.matching(method, path_prefix)
        if not found:
            raise LookupError(f"no request matching {method} {path_prefix}")
        return found[-1]


# --------------------------------------------------------------------------------------------
# Requests, responses, routing


@dataclass
class ApiRequest:
    method: str
    path: str  # relative to the API prefix, percent-decoded
    query: dict[str, list[str]]
    raw_body: bytes
    authorization: str | None
    in_prefix: bool = True
    params: dict[str, str] = field(default_factory=dict)
    route: str = ""  # the matched route template, e.g. "/projects/{project_id}"
    principal: str = ""  # who is calling (set by the fake's authenticate hook)

    def one(self, name: str) -> str | None:
        """The last value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else None

    def many(self, name: str) -> list[str]:
        """All values of ``name``, also comma-separated ones (``?services=db,pooler``)."""
        return [
            part for value in self.query.get(name, []) for part in value.split(",") if part != ""
        ]

    def logged_body(self) -> Any:
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            return self.raw_body.decode("utf-8", "replace")


@dataclass
class ApiResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(code: int, payload: Any, headers: Mapping[str, str] | None = None) -> ApiResponse:
    response = ApiResponse(code, json.dumps(payload).encode(), {"Content-Type": JSON_TYPE})
    response.headers.update(headers or {})
    return response


def encode_body(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


class HttpError(Exception):
    """Raise from a route handler to answer with ``response``."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response


Handler = Callable[[ApiRequest], ApiResponse]


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


class _Routable(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def pattern(self) -> re.Pattern[str]: ...


_R = TypeVar("_R", bound=_Routable)

ROUTE_ERRORS = {404: "not found", 405: "method not allowed"}
"""The messages of the answers :func:`find_route` asks for."""


def find_route(routes: Iterable[_R], method: str, path: str) -> tuple[_R, dict[str, str]] | int:
    """The first route for ``method`` whose pattern matches the whole ``path``, with the
    path parameters; else 404 (no route has this path) or 405 (some do, not this method)."""
    missing = 404
    for route in routes:
        match = route.pattern.fullmatch(path)
        if match is None:
            continue
        missing = 405
        if route.method == method:
            return route, match.groupdict()
    return missing


def _compile_template(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(regex)


_SERVES = "_fake_serves"
_H = TypeVar("_H", bound=Callable[..., ApiResponse])


def serves(method: str, template: str) -> Callable[[_H], _H]:
    """Mark a :class:`FakeApiServer` method as the handler of ``method`` on ``template``
    (relative to the API prefix; ``{name}`` is a path parameter, see ``request.params``)."""

    def mark(handler: _H) -> _H:
        setattr(handler, _SERVES, (*getattr(handler, _SERVES, ()), (method, template)))
        return handler

    return mark


def _marked_routes(fake: object) -> list[_Route]:
    """The routes of ``fake``'s :func:`serves` methods, in the order they are defined."""
    return [
        _Route(method, template, _compile_template(template), getattr(fake, name))
        for klass in reversed(type(fake).__mro__)
        for name, member in vars(klass).items()
        for method, template in getattr(member, _SERVES, ())
    ]


# --------------------------------------------------------------------------------------------
# Rate limiting (fixed windows on the fake's clock)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # whole seconds until the window ends


@dataclass
class _Window:
    started: float
    used: int = 0


class FixedWindowLimiter:
    """Counts hits per key in fixed windows that start with the first hit."""

    def __init__(self) -> None:
        self._windows: dict[Hashable, _Window] = {}

    def _window(self, key: Hashable, seconds: float, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.started + seconds:
            window = _Window(now)
            self._windows[key] = window
        return window

    def hit(self, key: Hashable, limit: int, seconds: float, now: float) -> RateDecision:
        window = self._window(key, seconds, now)
        reset = max(0, math.ceil(window.started + seconds - now))
        if window.used >= limit:
            return RateDecision(False, limit, 0, reset)
        window.used += 1
        return RateDecision(True, limit, limit - window.used, reset)

    def peek(self, key: Hashable, limit: int, seconds: float, now: float) -> RateDecision:
        window = self._windows.get(key)
        if window is None or now >= window.started + seconds:
            return RateDecision(True, limit, limit, math.ceil(seconds))
        reset = max(0, math.ceil(window.started + seconds - now))
        return RateDecision(window.used < limit, limit, max(0, limit - window.used), reset)

    def clear(self) -> None:
        self._windows.clear()


# --------------------------------------------------------------------------------------------
# The HTTP server


class _Serves(Protocol):
    """What the HTTP plumbing needs from a fake: answer one request on ``handler``."""

    def _serve(self, handler: _HttpHandler) -> None: ...


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 120  # an idle keep-alive connection is closed after this

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without NODELAY, Nagle + delayed ACK add
        # ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open=False)

    def _dispatch(self) -> None:
        self.server.fake._serve(self)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch
    do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def write(self, response: ApiResponse) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: _Serves, host: str, port: int) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((host, port), _HttpHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket, *, open: bool) -> None:
        with self._open_lock:
            if open:
                self._open.add(connection)
            else:
                self._open.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away (e.g. it timed out during a slow fault)
        super().handle_error(request, client_address)

    def shutdown_connections(self) -> None:
        """Cut keep-alive connections too, so a closed fake really stops answering."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ClosesOnExit:
    """``with thing:`` closes ``thing`` on the way out; subclasses define :meth:`close`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ServedFake(ClosesOnExit):
    """A fake served over HTTP from a background thread: lifecycle, fault injection, the
    request log storage and the shared per-request pipeline. Subclasses call
    :meth:`_start_server` at the end of their ``__init__`` and implement ``_serve``."""

    thread_name: ClassVar[str] = "fake-api"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._in_flight = 0  # requests inside _pipeline, see wait_until_idle
        self._idle = threading.Condition()
        self.internal_errors: list[str] = []
        """Tracebacks of bugs in the fake itself (answered as 500); assert it stays empty."""
        self._faults: list[InjectedFault] = []
        self._requests: list[RecordedRequest] = []
        self._closed = True

    def _start_server(self, host: str, port: int) -> int:
        """Bind ``host:port`` (0: any free port), start serving; returns the bound port."""
        self._server = _Server(cast(_Serves, self), host, port)
        bound_port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.thread_name}:{bound_port}",
            daemon=True,
        )
        self._closed = False
        self._thread.start()
        return bound_port

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving (idempotent); also cuts keep-alive connections and slow faults.
        Backend stores are NOT dropped (see ``drop_backend_stores`` on each fake)."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._server.shutdown()
        self._server.shutdown_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- faults ------------------------------------------------------------------------------

    def _add_fault(
        self, method: str, path_regex: str, fault: Fault, times: int | None
    ) -> InjectedFault:
        injected = InjectedFault(method.upper(), re.compile(path_regex), fault, times)
        with self._lock:
            self._faults.append(injected)
        return injected

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _pipeline(
        self,
        request: ApiRequest,
        record: RecordedRequest,
        answer: Callable[[Fault | None], ApiResponse],
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse | None:
        """Log ``record``, take the first matching fault, apply ``slow``/drops, get the answer
        (``answer(fault)`` with a ``status``/``malformed_json``/``empty_body`` fault, else
        ``answer(None)``; an exception there is a bug in the fake: 500), add ``headers``, then
        the fault's header overrides. None: close the connection without a response."""
        with self._idle:
            self._in_flight += 1
        try:
            return self._pipeline_once(request, record, answer, headers)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Block until `condition()` holds (re-checked each time a request is logged or
        answered); AssertionError naming `what` after `timeout` seconds. For tests that must
        act at a moment of the client's run, instead of sleeping and hoping."""
        with self._idle:
            if not self._idle.wait_for(condition, timeout):
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def wait_until_idle(self, timeout: float) -> None:
        """Block until no request is being handled (a `slow` one the client gave up on is still
        applied when the fake wakes); AssertionError after `timeout` seconds."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                raise AssertionError(f"the fake still handles {self._in_flight} request(s)")

    def _pipeline_once(
        self,
        request: ApiRequest,
        record: RecordedRequest,
        answer: Callable[[Fault | None], ApiResponse],
        headers: Mapping[str, str] | None,
    ) -> ApiResponse | None:
        with self._lock:
            self._requests.append(record)
            fault = self._take_fault(request.method, request.path)
        with self._idle:
            self._idle.notify_all()  # a request is logged: wake wait_until
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "slow":
                self._closing.wait(fault.seconds)
            elif fault.kind == "drop_before":
                return None
        overrides: Mapping[str, str | None] = {}
        try:
            if fault is not None and fault.kind in ("status", "malformed_json", "empty_body"):
                response = answer(fault)
                overrides = fault.headers
            else:
                response = answer(None)
        except Exception as exc:  # a bug in the fake: answer 500, keep the traceback
            self.internal_errors.append(traceback.format_exc())
            response = json_response(500, {"message": f"fake internal error: {exc!r}"})
        if fault is not None and fault.kind == "drop_after":
            return None
        response.headers.update(headers or {})
        for name, value in overrides.items():
            for existing in [h for h in response.headers if h.lower() == name.lower()]:
                del response.headers[existing]
            if value is not None:
                response.headers[name] = value
        record.status = response.status
        return response

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for injected in self._faults:
            if injected.matches(method, path):
                injected.fired += 1
                if injected.remaining is not None:
                    injected.remaining -= 1
                return injected.fault
        return None


ServedT = TypeVar("ServedT", bound=ServedFake)


def served(fake: ServedT) -> Iterator[ServedT]:
    """For a pytest fixture, ``yield from served(fake)``: the test gets ``fake``; then it is
    closed, and the test fails if the fake crashed meanwhile (a bug of the fake must not pass
    for one of the tool)."""
    try:
        yield fake
    finally:
        fake.close()
        assert not fake.internal_errors, "the fake crashed:\n" + "\n".join(fake.internal_errors)


class BearerKeys(ServedFake):
    """A fake that takes its API keys as ``Authorization: Bearer <key>`` (Neon, Supabase,
    Render); a test may add or revoke a key mid-run. Call :meth:`_accept_keys` before serving.
    """

    _api_keys: set[str]

    def _accept_keys(self, keys: Iterable[str]) -> None:
        self._api_keys = set(keys)
        hand_out(*self._api_keys)

    def add_key(self, key: str) -> None:
        with self._lock:
            self._api_keys.add(key)
            hand_out(key)

    def revoke_key(self, key: str) -> None:
        """From now on requests with ``key`` get 401 (simulates a key revoked mid-run)."""
        with self._lock:
            self._api_keys.discard(key)

    def authenticate(self, request: ApiRequest) -> str | None:
        """The request's Bearer key when it is an accepted one (the caller), else None."""
        token = bearer_token(request.authorization)
        return token if token in self._api_keys else None


class FakeOptions(TypedDict, total=False):
    """The constructor options every provider fake takes on top of its own (``**options``);
    see :class:`FakeApiServer` and the module docstring."""

    clock: Clock | None
    backend: StoreBackend | None
    seed: int | None
    host: str
    port: int
    connect_host: str | None
    connect_port: int | None
    reachable: bool | None


class Record(Protocol):
    """A provider fake's main record: a Neon or Supabase project, an Upstash database."""

    name: str


RecordT = TypeVar("RecordT", bound=Record)


class FakeApiServer(ServedFake, Generic[RecordT]):
    """Base of the three fakes: lifecycle, request pipeline, faults, log, helpers.

    Pipeline for each request: log it -> take the first matching injected fault -> (``slow``:
    sleep; ``drop_before``: close) -> under the lock: authenticate -> route (404/405) ->
    rate limit -> handler -> (``drop_after``: close) -> send.

    A fake marks its handlers with :func:`serves`, passes its main records by id and how the
    API shows one (``records``, ``record_json``) for :meth:`record` and :meth:`records_named`,
    and lists its backend stores in :meth:`_held_stores` for :meth:`drop_backend_stores`.
    """

    prefix: ClassVar[str] = ""
    """The API path prefix on the server (``/api/v2``); ``base_url`` ends with it."""
    unauthorized_message: ClassVar[str] = "Unauthorized"
    """The message of the provider's 401 answer (in its :meth:`error` body)."""

    def __init__(
        self,
        records: Mapping[str, RecordT],
        record_json: Callable[[RecordT], dict[str, Any]],
        *,
        clock: Clock | None = None,
        backend: StoreBackend | None = None,
        seed: int | None = None,
        host: str = LOOPBACK,
        port: int = 0,
        connect_host: str | None = None,
        connect_port: int | None = None,
        reachable: bool | None = None,
    ) -> None:
        super().__init__()
        self.clock: Clock = clock if clock is not None else time.monotonic
        self._clock_epoch = self.clock()
        self._wall_epoch = datetime.now(UTC)
        self._rng = random.Random(seed)
        self.backend: StoreBackend = backend if backend is not None else NullBackend()
        self.connect_host = connect_host
        self.connect_port = connect_port
        if reachable is None:
            reachable = connect_host is not None or (
                backend is not None and not isinstance(backend, NullBackend)
            )
        self.reachable = reachable
        """Whether connection fields carry the reachable host/port (``connect_host`` /
        ``connect_port``, else the backend's) instead of realistic provider host names.
        Default: True when ``connect_host`` is given or a backend other than this module's
        :class:`NullBackend` is passed."""
        self._records = records
        self._record_json = record_json
        self._seq = 0
        self.limiter = FixedWindowLimiter()
        self._routes = _marked_routes(self)

        self.port = self._start_server(host, port)
        self.origin = f"http://{host}:{self.port}"
        self.base_url = f"{self.origin}{self.prefix}"

    # -- faults ------------------------------------------------------------------------------

    def inject(
        self, method: str, path_regex: str, fault: Fault, times: int | None = 1
    ) -> InjectedFault:
        """Apply ``fault`` to the next ``times`` (None: every) matching requests.

        ``method``: ``"GET"``… or ``"*"``. ``path_regex`` must match the WHOLE path relative
        to ``base_url``, without the query (``re.fullmatch``), e.g. ``r"/projects"`` only the
        collection, ``r"/projects/.*"`` anything below it. Faults fire in injection order; one
        fault per request.
        """
        return self._add_fault(method, path_regex, fault, times)

    def reset_rate_limits(self) -> None:
        with self._lock:
            self.limiter.clear()

    # -- request log -------------------------------------------------------------------------

    @property
    def requests(self) -> RequestLog:
        """A snapshot of the request log (``.count(method, path_prefix)``, ``.last()``…)."""
        with self._lock:
            return RequestLog(self._requests, self.prefix)

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return self.requests.count(method, path_prefix)

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- inspection --------------------------------------------------------------------------

    def record(self, record_id: str) -> dict[str, Any]:
        """A main record as the API shows it (KeyError when there is none)."""
        with self._lock:
            return self._record_json(self._records[record_id])

    def records_named(self, name: str) -> list[dict[str, Any]]:
        """Every main record named ``name`` as the API shows it, oldest first."""
        with self._lock:
            return [self._record_json(r) for r in self._records.values() if r.name == name]

    def drop_backend_stores(self) -> None:
        """Drop, through the backend, every store the fake still holds (its state is kept)."""
        with self._lock:
            for creds in list(self._held_stores()):
                self._drop_store(creds)

    def _drop_store(self, creds: PgCredentials | RedisCredentials) -> None:
        """Drop one store through the backend."""
        if isinstance(creds, PgCredentials):
            self.backend.drop_postgres(creds.database, creds.user)
        else:
            self.backend.drop_redis(creds.username)

    # -- hooks for subclasses ----------------------------------------------------------------

    def _held_stores(self) -> Iterable[PgCredentials | RedisCredentials]:
        """The backend's stores behind the records the fake holds now."""
        raise NotImplementedError

    def authenticate(self, request: ApiRequest) -> str | None:
        """Return the caller's identity (used for rate-limit keys) or None for a 401."""
        raise NotImplementedError

    def error(self, code: int, message: str) -> ApiResponse:
        """The provider's error response for ``code``."""
        raise NotImplementedError

    def rate_limit(self, request: ApiRequest) -> tuple[ApiResponse | None, dict[str, str]]:
        """(a 429 response or None, headers to add to the answer). Called under the lock."""
        return None, {}

    def fault_headers(self, request: ApiRequest, code: int) -> dict[str, str]:
        """Headers added to injected ``status``/``malformed_json``/``empty_body`` answers."""
        return {}

    def response_headers(self, request: ApiRequest) -> dict[str, str]:
        """Headers added to every answer (request ids...)."""
        return {}

    def fail(self, code: int, message: str) -> HttpError:
        return HttpError(self.error(code, message))

    # -- helpers for subclasses --------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def next_seq(self) -> int:
        """1, 2, 3…: the creation order of the fake's records."""
        self._seq += 1
        return self._seq

    def connect_target(self, host: str, port: int) -> tuple[str, int]:
        """Where clients should connect in reachable mode: ``connect_host``/``connect_port``,
        else the backend's ``host``/``port``."""
        return self.connect_host or host, self.connect_port or port

    def wall_at(self, clock_time: float) -> datetime:
        return self._wall_epoch + timedelta(seconds=clock_time - self._clock_epoch)

    def wall_now(self) -> datetime:
        return self.wall_at(self.clock())

    @staticmethod
    def iso(moment: datetime) -> str:
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    def rand_choice(self, options: list[str] | tuple[str, ...]) -> str:
        return self._rng.choice(options)

    def rand_string(self, length: int, alphabet: str = string.ascii_lowercase) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(length))

    def rand_int(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def rand_uuid(self) -> str:
        h = self.rand_string(32, "0123456789abcdef")
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    @staticmethod
    def json_body(request: ApiRequest) -> Any:
        """The parsed body; raises ValueError on invalid JSON (the pipeline answers 400)."""
        if not request.raw_body.strip():
            return None
        return json.loads(request.raw_body)

    # -- the pipeline ------------------------------------------------------------------------

    def _serve(self, handler: _HttpHandler) -> None:
        split = urlsplit(handler.path)
        path, in_prefix = split_prefix(unquote(split.path) or "/", self.prefix)
        authorization = handler.headers.get("Authorization")
        request = ApiRequest(
            method=handler.command.upper(),
            path=path,
            query={k: list(v) for k, v in parse_qs(split.query, keep_blank_values=True).items()},
            raw_body=handler.read_body(),
            authorization=authorization,
            in_prefix=in_prefix,
        )
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query={k: list(v) for k, v in request.query.items()},
            body=request.logged_body(),
            auth_scheme=auth_scheme(authorization),
            request_id=secrets.token_hex(8),
        )
        response = self._pipeline(request, record, lambda fault: self._answer(request, fault))
        if response is None:
            handler.drop()
        else:
            handler.write(response)

    def _answer(self, request: ApiRequest, fault: Fault | None) -> ApiResponse:
        if fault is None:
            response = self._process(request)
        else:
            with self._lock:
                if fault.kind == "status" and fault.body is None:
                    response = self.error(fault.status_code, _reason(fault.status_code))
                else:
                    response = ApiResponse(
                        fault.status_code,
                        encode_body(fault.body),
                        {"Content-Type": JSON_TYPE},
                    )
                response.headers.update(self.fault_headers(request, fault.status_code))
        response.headers.update(self.response_headers(request))
        return response

    def _process(self, request: ApiRequest) -> ApiResponse:
        with self._lock:
            principal = self.authenticate(request)
            if principal is None:
                return self.error(401, self.unauthorized_message)
            request.principal = principal
            route = self._match(request)
            if isinstance(route, ApiResponse):
                return route
            limited, headers = self.rate_limit(request)
            if limited is not None:
                limited.headers.update(headers)
                return limited
            try:
                try:
                    self.json_body(request)
                except ValueError:
                    raise self.fail(400, "request body is not valid JSON") from None
                response = route.handler(request)
            except HttpError as error:
                response = error.response
            response.headers.update(headers)
            return response

    def _match(self, request: ApiRequest) -> _Route | ApiResponse:
        found = find_route(self._routes, request.method, request.path) if request.in_prefix else 404
        if isinstance(found, int):
            return self.error(found, ROUTE_ERRORS[found])
        route, request.params = found
        request.route = route.template
        return route


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"HTTP {code}"
