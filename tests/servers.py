"""Test-only network helpers on top of `authkit_setup.local.embedded`.

- `make_tls_material`: a throwaway CA and a server certificate for localhost/127.0.0.1/::1.
- `PostgresTlsProxy`: makes a plain PostgreSQL look like a `hostssl`-only server with TLS.
- `RedisTlsProxy`: TLS-only front for a plain Redis.
- `SilentListener`: accepts TCP connections and never answers (timeouts).
- `closed_port()`: a port nobody listens on (connection refused).

Everything listens on 127.0.0.1 only and works as a context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import trustme

from authkit_setup.local.embedded import free_port

__all__ = [
    "PostgresTlsProxy",
    "RedisTlsProxy",
    "SilentListener",
    "TlsMaterial",
    "closed_port",
    "connect_error_sqlstate",
    "make_tls_material",
]

LOOPBACK = "127.0.0.1"
T = TypeVar("T")

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


class _AsyncServerThread:
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
        self._server = await asyncio.start_server(
            self._serve,
            LOOPBACK,
            0,
            ssl=self._ssl_context,
            ssl_handshake_timeout=10 if self._ssl_context else None,
        )
        port: int = self._server.sockets[0].getsockname()[1]
        return port

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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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


# --------------------------------------------------------------------------- fault listeners


class SilentListener:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, read and released)."""
    return free_port(LOOPBACK)


# --------------------------------------------------------------------------- psycopg errors

# psycopg (3.3) does not expose an SQLSTATE for errors raised while *connecting*: libpq only
# hands over the message text, so `OperationalError.sqlstate` is None there. These are the
# server messages behind the codes the tool cares about.
_CONNECT_MESSAGES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("28P01", re.compile(r"password authentication failed for user")),
    ("3D000", re.compile(r'database ".*" does not exist')),
    ("28000", re.compile(r"no pg_hba\.conf entry for host")),
    ("28000", re.compile(r'role ".*" does not exist')),
    ("53300", re.compile(r"too many clients|remaining connection slots are reserved")),
)


def connect_error_sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg error, derived from the server's message for connect-time
    failures (where psycopg leaves `sqlstate` as None)."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate
    text = str(exc)
    for code, pattern in _CONNECT_MESSAGES:
        if pattern.search(text):
            return code
    return None
