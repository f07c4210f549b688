"""Test-only network helpers on top of the embedded servers in `authkit_setup.local`.

- `make_tls_material`: a throwaway CA and a server certificate for localhost/127.0.0.1/::1.
- `PostgresTlsProxy`: makes a plain PostgreSQL look like a `hostssl`-only server with TLS.
- `RedisTlsProxy`: TLS-only front for a plain Redis.
- `RedisDatabaseFronts`: one TLS port per fake Upstash database, each logging its clients in as
  that database's own ACL user (Upstash clients all say `default`).
- `SilentListener`: accepts TCP connections and never answers (timeouts).
- `AllowListFronts`: one port per store, refusing clients its IP allow list does not name.
- `ClosedPort`: a port that refuses connections and stays reserved while it is open.
- `start_on_a_free_port`: start an embedded server, on another port if its port was taken.
- `connect_error_sqlstate`: the SQLSTATE of a psycopg connect error (the tool's own mapping,
  `authkit_setup.diagnostics.postgres.sqlstate_of`, checked here against the real servers).

Everything listens on 127.0.0.1 only and works as a context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import trustme

from authkit_setup.diagnostics.postgres import sqlstate_of as connect_error_sqlstate
from authkit_setup.errors import LocalServerError
from authkit_setup.local.processes import free_port
from tests.fakes.common import LOOPBACK, ClosesOnExit

__all__ = [
    "AllowListFronts",
    "PostgresTlsProxy",
    "RedisDatabaseFronts",
    "RedisTlsProxy",
    "SilentListener",
    "ClosedPort",
    "TlsMaterial",
    "start_on_a_free_port",
    "connect_error_sqlstate",
    "make_tls_material",
]

T = TypeVar("T")
V = TypeVar("V")

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102
_MAX_STARTUP_LENGTH = 10_000


# --------------------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class TlsMaterial:
    """PEM files: the CA clients must trust, and the server's certificate chain and key."""

    ca_pem_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem_path))


def make_tls_material(tmp_dir: Path) -> TlsMaterial:
    """A fresh CA and a server certificate valid for localhost, 127.0.0.1 and ::1."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    material = TlsMaterial(
        ca_pem_path=tmp_dir / "ca.pem",
        cert_path=tmp_dir / "server.pem",
        key_path=tmp_dir / "server.key",
    )
    ca.cert_pem.write_to_path(str(material.ca_pem_path))
    cert.private_key_pem.write_to_path(str(material.key_path))
    with material.cert_path.open("wb") as fh:
        for blob in cert.cert_chain_pems:
            fh.write(blob.bytes())
    material.key_path.chmod(0o600)
    return material


# --------------------------------------------------------------------------- proxy machinery


class _AsyncServerThread(ClosesOnExit):
    """An asyncio TCP server on 127.0.0.1:<free port>, run by an event loop in its own thread."""

    host: str
    port: int

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = LOOPBACK
        self._ssl_context = ssl_context
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._on_loop_exception)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=type(self).__name__, daemon=True
        )
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closed = False
        self._thread.start()
        try:
            self.port = self._call(self._start()).result(timeout=10)
        except BaseException:
            self._stop_loop()
            raise

    def _call(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    @staticmethod
    def _on_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        # Failed TLS handshakes and reset peers are what these servers are for; stay quiet.
        return None

    async def _start(self) -> int:
        self._server, port = await self._listen()
        return port

    async def _listen(self) -> tuple[asyncio.Server, int]:
        """A new listening port on 127.0.0.1 served by `handle` (with TLS when configured)."""
        server = await asyncio.start_server(
            self._serve,
            LOOPBACK,
            0,
            ssl=self._ssl_context,
            ssl_handshake_timeout=10 if self._ssl_context else None,
        )
        port: int = server.sockets[0].getsockname()[1]
        return server, port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self.handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _open_backend(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(host, port)
        self._writers.add(writer)
        return reader, writer

    async def _pipe(
        self,
        a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass

        first = asyncio.ensure_future(copy(a[0], b[1]))
        second = asyncio.ensure_future(copy(b[0], a[1]))
        try:
            await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            first.cancel()
            second.cancel()
            for writer in (a[1], b[1]):
                self._writers.discard(writer)
                writer.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    def close(self) -> None:
        """Stop listening, drop every connection and stop the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._call(self._shutdown()).result(timeout=10)
        self._stop_loop()


class _PortPerKey(_AsyncServerThread, Generic[V]):
    """Opens one more listening port per key, each knowing what it serves (`_served(writer)`);
    the base port serves nobody."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._by_port: dict[int, V] = {}
        self._servers: dict[str, asyncio.Server] = {}
        super().__init__(ssl_context=ssl_context)

    def _open_port(self, key: str, served: V) -> int:
        return self._call(self._open(key, served)).result(timeout=10)

    def _close_port(self, key: str) -> None:
        self._call(self._close(key)).result(timeout=10)

    async def _open(self, key: str, served: V) -> int:
        server, port = await self._listen()
        self._by_port[port] = served
        self._servers[key] = server
        return port

    async def _close(self, key: str) -> int | None:
        """Stop listening on `key`'s port; returns that port (None: it was not open)."""
        server = self._servers.pop(key, None)
        if server is None:
            return None
        port: int = server.sockets[0].getsockname()[1]
        server.close()
        self._by_port.pop(port, None)
        return port

    async def _shutdown(self) -> None:
        for key in list(self._servers):
            await self._close(key)
        await super()._shutdown()

    def _served(self, writer: asyncio.StreamWriter) -> V | None:
        """What the port this client connected to serves (None: the base port)."""
        return self._by_port.get(writer.get_extra_info("sockname")[1])


# --------------------------------------------------------------------------- PostgreSQL


def _pg_error_response(*, sqlstate: str, message: str) -> bytes:
    fields = b""
    for code, value in (
        (b"S", "FATAL"),
        (b"V", "FATAL"),
        (b"C", sqlstate),
        (b"M", message),
        (b"R", "ClientAuthentication"),
    ):
        fields += code + value.encode() + b"\0"
    fields += b"\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


def _parse_startup_params(body: bytes) -> dict[str, str]:
    """Key/value pairs of a StartupMessage body (after the protocol version)."""
    parts = body.split(b"\0")
    params: dict[str, str] = {}
    for key, value in zip(parts[0::2], parts[1::2], strict=False):
        if not key:
            break
        params[key.decode(errors="replace")] = value.decode(errors="replace")
    return params


class PostgresTlsProxy(_AsyncServerThread):
    """TLS in front of a plain PostgreSQL, behaving like a server whose pg_hba.conf has only
    `hostssl` lines: SSLRequest -> 'S' + TLS handshake + bytes piped to the backend;
    GSSENCRequest -> 'N'; a plain StartupMessage -> FATAL 28000 "no pg_hba.conf entry".
    """

    def __init__(self, backend_host: str, backend_port: int, tls: TlsMaterial) -> None:
        self.backend_host = backend_host
        self.backend_port = backend_port
        self.tls = tls
        self.ca_path = tls.ca_pem_path
        self._tls_context = tls.server_context()
        super().__init__()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            if length == 8 and code == SSL_REQUEST_CODE:
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self._tls_context, ssl_handshake_timeout=10)
                break
            if length == 8 and code == GSSENC_REQUEST_CODE:
                writer.write(b"N")
                await writer.drain()
                continue
            if code == CANCEL_REQUEST_CODE or not 8 <= length <= _MAX_STARTUP_LENGTH:
                return
            params = _parse_startup_params(await reader.readexactly(length - 8))
            user = params.get("user", "")
            database = params.get("database", user)
            peer = writer.get_extra_info("peername")
            host = peer[0] if isinstance(peer, tuple) and peer else LOOPBACK
            writer.write(
                _pg_error_response(
                    sqlstate="28000",
                    message=(
                        f'no pg_hba.conf entry for host "{host}", user "{user}", '
                        f'database "{database}", no encryption'
                    ),
                )
            )
            await writer.drain()
            return
        backend = await self._open_backend(self.backend_host, self.backend_port)
        await self._pipe((reader, writer), backend)


# --------------------------------------------------------------------------- Redis


class RedisTlsProxy(_AsyncServerThread):
    """TLS-only front for a plain Redis. A plaintext client fails the TLS handshake and is
    disconnected, as with a real `tls-port` listener."""

    def __init__(self, backend_host: str, backend_port: int, tls: TlsMaterial) -> None:
        self.backend_host = backend_host
        self.backend_port = backend_port
        self.tls = tls
        self.ca_path = tls.ca_pem_path
        super().__init__(ssl_context=tls.server_context())

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = await self._open_backend(self.backend_host, self.backend_port)
        await self._pipe((reader, writer), backend)


class AllowListFronts(_PortPerKey[tuple[str, int, Callable[[str], bool]]]):
    """Per-store TCP fronts that enforce an IP allow list, as Render does for a store's
    external URL: `open(key, upstream_host, upstream_port, allowed)` listens on a new port;
    a client whose address `allowed(ip)` rejects is reset at once (no byte reaches the store),
    others are piped to the upstream (e.g. a TLS front, so TLS stays end to end). `allowed` is
    asked on every connection, so a changed allow list applies to the next one."""

    def open(
        self, key: str, upstream_host: str, upstream_port: int, allowed: Callable[[str], bool]
    ) -> int:
        return self._open_port(key, (upstream_host, upstream_port, allowed))

    def close_front(self, key: str) -> None:
        self._close_port(key)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        route = self._served(writer)
        peer = writer.get_extra_info("peername")
        if route is None or not route[2](str(peer[0])):
            writer.transport.abort()  # RST: refused before a byte is exchanged
            return
        backend = await self._open_backend(route[0], route[1])
        await self._pipe((reader, writer), backend)


class RedisDatabaseFronts(_PortPerKey[str]):
    """Per-database TLS fronts for a shared plain Redis, as Upstash gives each database its own
    endpoint and password: `open(acl_user)` listens on a new port whose clients are logged in
    as `acl_user`. Every client command is read (RESP), and the user name of `AUTH` and
    `HELLO ... AUTH` becomes `acl_user` when it is `default` (or absent) and an unknown name
    otherwise, so only that database's password works on its port: another database's password
    gets WRONGPASS, as on Upstash. The base port refuses to serve anyone."""

    def __init__(self, backend_host: str, backend_port: int, tls: TlsMaterial) -> None:
        self.backend_host = backend_host
        self.backend_port = backend_port
        self.tls = tls
        super().__init__(ssl_context=tls.server_context())

    def open(self, acl_user: str) -> int:
        """Start the front of `acl_user`'s database; returns its port."""
        return self._open_port(acl_user, acl_user)

    def close_database(self, acl_user: str) -> None:
        """Stop listening for `acl_user`'s database (its open connections are dropped too)."""
        self._close_port(acl_user)

    async def _close(self, key: str) -> int | None:
        port = await super()._close(key)
        if port is not None:  # drop its open connections too
            for writer in list(self._writers):
                sockname = writer.get_extra_info("sockname")
                if isinstance(sockname, tuple) and sockname[1] == port:
                    writer.close()
        return port

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        acl_user = self._served(writer)
        if acl_user is None:
            return
        backend = await self._open_backend(self.backend_host, self.backend_port)

        async def commands() -> None:
            while (args := await _read_resp_command(reader)) is not None:
                backend[1].write(_encode_resp_command(_login_as(acl_user, args)))
                await backend[1].drain()

        async def replies() -> None:
            while data := await backend[0].read(65536):
                writer.write(data)
                await writer.drain()

        tasks = {asyncio.ensure_future(commands()), asyncio.ensure_future(replies())}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            self._writers.discard(backend[1])
            backend[1].close()


async def _read_resp_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One client command: a RESP array of bulk strings, or an inline command line."""
    line = await reader.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.split()
    args = []
    for _ in range(int(line[1:])):
        header = await reader.readline()
        if not header.startswith(b"$"):
            raise ConnectionError("not a RESP bulk string")
        args.append((await reader.readexactly(int(header[1:]) + 2))[:-2])
    return args


def _encode_resp_command(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _login_as(acl_user: str, args: list[bytes]) -> list[bytes]:
    """`args` with the AUTH user name swapped for `acl_user` (see RedisDatabaseFronts)."""

    def user(name: bytes | None) -> bytes:
        return acl_user.encode() if name in (None, b"default") else b"not-this-database"

    if not args:
        return args
    verb = args[0].upper()
    if verb == b"AUTH" and len(args) == 2:
        return [args[0], user(None), args[1]]
    if verb == b"AUTH" and len(args) == 3:
        return [args[0], user(args[1]), args[2]]
    if verb == b"HELLO":
        upper = [a.upper() for a in args]
        if b"AUTH" in upper:
            i = upper.index(b"AUTH")
            return [*args[: i + 1], user(args[i + 1]), *args[i + 2 :]]
    return args


# --------------------------------------------------------------------------- fault listeners


class SilentListener(ClosesOnExit):
    """Accepts TCP connections on 127.0.0.1 and never sends a byte; connections stay open
    until `close()`."""

    def __init__(self) -> None:
        self.host = LOOPBACK
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(64)
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._stop_r, self._stop_w = socket.socketpair()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="SilentListener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._sock, selectors.EVENT_READ)
            sel.register(self._stop_r, selectors.EVENT_READ)
            while True:
                for key, _ in sel.select():
                    if key.fileobj is self._stop_r:
                        return
                    with contextlib.suppress(BlockingIOError, OSError):
                        conn, _addr = self._sock.accept()
                        self._accepted.append(conn)  # kept open, never written to

    @property
    def connection_count(self) -> int:
        return len(self._accepted)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_w.send(b"x")
        self._thread.join(timeout=5)
        for conn in self._accepted:
            conn.close()
        self._sock.close()
        self._stop_r.close()
        self._stop_w.close()


class ClosedPort(ClosesOnExit):
    """A port on 127.0.0.1 (and ::1 when there is IPv6) that refuses connections: a socket is
    bound there but never listens, so a connect gets RST (ECONNREFUSED) and, unlike a port
    that was bound and released, no other server can take it while this object is open."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        for _ in range(20):
            first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            first.bind((LOOPBACK, 0))
            port: int = first.getsockname()[1]
            try:
                self._sockets = [first, *self._bind_ipv6(port)]
            except OSError:  # taken on ::1 by someone else: try another port
                first.close()
                continue
            self.port = port
            return
        raise RuntimeError("no port free on both 127.0.0.1 and ::1 after 20 tries")

    @staticmethod
    def _bind_ipv6(port: int) -> list[socket.socket]:
        if not socket.has_ipv6:
            return []
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(("::1", port))
        except OSError as exc:
            sock.close()
            if exc.errno == 99:  # EADDRNOTAVAIL: no ::1 here, nothing to reserve
                return []
            raise
        return [sock]

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


class _Startable(Protocol):
    def start(self) -> None: ...


S = TypeVar("S", bound=_Startable)


def start_on_a_free_port(make: Callable[[int], S], attempts: int = 5) -> S:
    """`make(port)` a server on a port the OS just reported free, and start it. PostgreSQL and
    Redis cannot be told "port 0, tell me what you got", so the port is picked first; when
    another process binds it in between, the start fails with "Address already in use" and
    this tries a fresh port (any other failure is raised at once)."""
    for attempt in range(attempts):
        server = make(free_port(LOOPBACK))
        try:
            server.start()
        except LocalServerError as exc:
            if "Address already in use" in (exc.hint or "") and attempt + 1 < attempts:
                continue
            raise
        return server
    raise AssertionError("unreachable: the last attempt raises")
