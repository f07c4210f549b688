"""A fake of Neon's management API (``https://console.neon.tech/api/v2``): a real HTTP server on
127.0.0.1 holding state. Behaviour follows ``/work/shared/reference/neon-supabase-upstash.md``
§1 (paths, bodies, status codes, ``{"request_id","code","message"}`` errors, operations).

Usage::

    with NeonFake(clock=ManualClock()) as neon:
        client = httpx.Client(base_url=neon.base_url,
                              headers={"Authorization": f"Bearer {FAKE_NEON_KEY}"})

Routes (relative to ``base_url`` = ``http://127.0.0.1:<port>/api/v2``):

- ``GET /users/me/organizations`` -> ``{"organizations": [...]}``
- ``POST /projects`` -> 201 (project, connection_uris, roles, databases, operations, branch,
  endpoints); ``GET /projects?limit&cursor&search&org_id`` (search: partial, case-insensitive
  on name or id; default limit 10, 1..400; oldest first; ``pagination.cursor`` = id of the last
  project of the page); ``GET|DELETE /projects/{id}``
- ``GET /projects/{id}/operations`` (newest first), ``GET /projects/{id}/operations/{op}``
- ``GET /projects/{id}/connection_uri?database_name&role_name[&branch_id&endpoint_id&pooled]``
- ``POST|GET /projects/{id}/branches`` (``?search=``), ``GET|DELETE .../branches/{b}``,
  ``GET .../branches/{b}/roles/{role}/reveal_password``, ``GET /projects/{id}/endpoints``
- ``GET /regions``

Operations go ``scheduling -> running -> finished`` on the clock: ``create_timeline`` runs from
creation, ``start_compute`` is scheduled for the first half of ``operation_seconds``; both
finish after ``operation_seconds`` (final status :attr:`NeonFake.operation_final_status`).
While any operation of a project is unfinished, mutating calls on it (create/delete branch,
delete project) answer 423 (``lock_while_running``).

Which fields carry a REACHABLE host (in reachable mode: ``connect_host=`` given, or a
``backend=`` other than ``NullBackend``, or ``reachable=True``; otherwise all hosts are
realistic ``ep-…`` names and URIs have no port):

- ``connection_uris[].connection_uri`` and ``GET …/connection_uri`` -> ``{"uri"}``: host AND
  port (``postgresql://user:pw@127.0.0.1:5433/db?sslmode=require``).
- ``connection_uris[].connection_parameters.host`` / ``.pooler_host``: the reachable host only
  (Neon has no port field; the port is only in the URIs).
- ``endpoints[].host``, ``project.proxy_host``: always realistic
  (``ep-<adj>-<noun>-<8>.<region>.aws.neon.tech``; the pooler host inserts ``-pooler`` after
  the endpoint id).
- The host is ``connect_host`` or the backend's ``PgCredentials.host``; the port
  ``connect_port`` or ``PgCredentials.port``; pooled URIs use ``pooler_connect_host/port``
  when given (to tell pooled from direct in tests), else the same values.
- Role / database names and passwords are always the backend's returned ones.

Invented where the reference is silent (do not assert on the exact text): messages of 400/404
errors, the 401 message, the 423 message ("project already has running conflicting
operations, scheduling of new ones is prohibited"), the default-branch-delete message.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Unpack
from urllib.parse import quote

from tests.fakes.common import (
    ADJECTIVES,
    NOUNS,
    ApiRequest,
    ApiResponse,
    BearerKeys,
    FakeApiServer,
    FakeOptions,
    PgCredentials,
    json_response,
    serves,
    url_host,
)

__all__ = [
    "FAKE_NEON_KEY",
    "NEON_REGIONS",
    "NeonFake",
]

FAKE_NEON_KEY = "napi_fakeneonkeyfortests00000000000000000000000000000000000000000"
"""The API key a :class:`NeonFake` accepts unless ``api_keys=`` says otherwise."""

NEON_REGIONS: dict[str, tuple[str, str, str]] = {
    "aws-us-east-1": ("AWS US East (N. Virginia)", "38.9", "-77.4"),
    "aws-us-east-2": ("AWS US East (Ohio)", "40.0", "-83.0"),
    "aws-us-west-2": ("AWS US West (Oregon)", "45.5", "-122.7"),
    "aws-eu-central-1": ("AWS Europe (Frankfurt)", "50.1", "8.7"),
    "aws-eu-west-2": ("AWS Europe (London)", "51.5", "-0.1"),
    "aws-ap-southeast-1": ("AWS Asia Pacific (Singapore)", "1.3", "103.8"),
    "aws-ap-southeast-2": ("AWS Asia Pacific (Sydney)", "-33.9", "151.2"),
    "aws-sa-east-1": ("AWS South America (São Paulo)", "-23.5", "-46.6"),
    "azure-eastus2": ("Azure East US 2 (Virginia)", "36.7", "-78.4"),
    "azure-westus3": ("Azure West US 3 (Arizona)", "33.4", "-112.1"),
    "azure-gwc": ("Azure Germany West Central (Frankfurt)", "50.1", "8.7"),
}
"""region_id -> (name, geo_lat, geo_long), the regions page list (§5)."""
DEFAULT_REGION = "aws-us-east-2"
PG_VERSIONS = range(14, 19)
UNFINISHED = frozenset({"scheduling", "running"})
LOCKED_MESSAGE = (
    "project already has running conflicting operations, scheduling of new ones is prohibited"
)
ORG_ID_REQUIRED_MESSAGE = "org_id is required, you can find it on your organization settings page"
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_PASSWORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass
class _Operation:
    id: str
    project_id: str
    branch_id: str
    endpoint_id: str | None
    action: str
    created: float
    start_at: float
    finish_at: float
    final_status: str


@dataclass
class _Endpoint:
    id: str
    host: str
    created: float
    min_cu: float
    max_cu: float
    suspend_timeout_seconds: int


@dataclass
class _Branch:
    id: str
    project_id: str
    name: str
    parent_id: str | None
    primary: bool
    created: float
    role_name: str  # as requested; the backend's name is creds.user
    database_name: str  # as requested; the backend's name is creds.database
    database_id: int
    creds: PgCredentials
    endpoint: _Endpoint | None


@dataclass
class _Project:
    id: str
    seq: int
    name: str
    region_id: str
    pg_version: int
    org_id: str | None
    created: float
    endpoint_settings: dict[str, Any]
    settings: dict[str, Any]
    history_retention_seconds: int
    branches: dict[str, _Branch] = field(default_factory=dict)
    operations: list[_Operation] = field(default_factory=list)


class NeonFake(BearerKeys, FakeApiServer[_Project]):
    """Fake Neon API. See the module docstring for routes and reachable fields.

    Keyword arguments:

    - ``api_keys``: accepted Bearer keys (default :data:`FAKE_NEON_KEY`).
    - ``clock``: drives operations (``time.monotonic`` by default; use :class:`ManualClock`).
    - ``backend``: a :class:`StoreBackend`; ``create_postgres(database, role, password=…)`` is
      called for the default branch at project creation and for each new branch (with the
      parent's password, as Neon copies roles); ``drop_postgres`` on delete.
    - ``operation_seconds``: how long operations take (0: finished at once).
    - ``require_org_id``: POST/GET ``/projects`` without ``org_id`` -> 400
      ``…org_id is required…`` (a personal key that can see organizations, §1.1).
    - ``lock_while_running``: 423 for mutating calls while operations run.
    - ``connect_host``/``connect_port``/``pooler_connect_host``/``pooler_connect_port``: see
      the module docstring.
    - ``uri_sslmode``: appended as ``?sslmode=`` to URIs (None: nothing, like the 2024
      recording; whether the live API appends it is UNCONFIRMED).
    - ``host_cell``: e.g. ``"c-4"`` -> hosts like ``ep-….c-4.us-east-2.aws.neon.tech``.
    - ``rate_limit_per_minute`` / ``burst_per_route_per_second``: opt-in 429s (real: 700 and
      40); off by default, use ``inject(..., status(429))`` for one-off 429s.
    """

    prefix = "/api/v2"
    unauthorized_message = "authentication required"
    thread_name = "fake-neon-api"

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (FAKE_NEON_KEY,),
        operation_seconds: float = 2.0,
        operation_final_status: str = "finished",
        require_org_id: bool = False,
        lock_while_running: bool = True,
        pooler_connect_host: str | None = None,
        pooler_connect_port: int | None = None,
        uri_sslmode: str | None = "require",
        host_cell: str | None = None,
        org_name: str = "AuthKit Org",
        rate_limit_per_minute: int | None = None,
        burst_per_route_per_second: int | None = None,
        **options: Unpack[FakeOptions],
    ) -> None:
        self._accept_keys(api_keys)
        self.operation_seconds = operation_seconds
        self.operation_final_status = operation_final_status
        """Final status of operations created from now on (``"failed"`` to test failures)."""
        self.require_org_id = require_org_id
        self.lock_while_running = lock_while_running
        self.pooler_connect_host = pooler_connect_host
        self.pooler_connect_port = pooler_connect_port
        self.uri_sslmode = uri_sslmode
        self.host_cell = host_cell
        self.rate_limit_per_minute = rate_limit_per_minute
        self.burst_per_route_per_second = burst_per_route_per_second
        self._orgs: dict[str, dict[str, Any]] = {}
        self._projects: dict[str, _Project] = {}
        self._project_seq: dict[str, int] = {}  # every id ever issued (cursors survive deletes)
        self._database_ids = 30_000_000
        super().__init__(self._projects, self._project_json, **options)
        self.add_organization(org_name)

    # -- configuration, seeding, inspection ---------------------------------------------------

    def add_organization(self, name: str) -> dict[str, Any]:
        """Add an organization (``org-<adj>-<noun>-<8 digits>``) the key can see."""
        with self._lock:
            org_id = f"org-{self._words()}-{self.rand_int(10_000_000, 99_999_999)}"
            now = self.iso(self.wall_now())
            handle = f"{name.lower().replace(' ', '-')}-{org_id[-8:]}"
            self._orgs[org_id] = {
                "id": org_id,
                "name": name,
                "handle": handle,
                "plan": "free",
                "created_at": now,
                "managed_by": "console",
                "updated_at": now,
            }
            return dict(self._orgs[org_id])

    @property
    def org_id(self) -> str:
        """The first organization's id."""
        with self._lock:
            return next(iter(self._orgs))

    def add_project(
        self,
        name: str,
        *,
        org_id: str | None = None,
        region_id: str = DEFAULT_REGION,
        pg_version: int = 17,
        database_name: str = "neondb",
        role_name: str | None = None,
        ready: bool = True,
    ) -> dict[str, Any]:
        """Seed a project without HTTP; returns the 201 body ``POST /projects`` would give.
        ``ready=True``: its operations are already finished."""
        spec: dict[str, Any] = {
            "name": name,
            "region_id": region_id,
            "pg_version": pg_version,
            "branch": {"database_name": database_name},
        }
        if org_id is not None:
            spec["org_id"] = org_id
        if role_name is not None:
            spec["branch"]["role_name"] = role_name
        with self._lock:
            project = self._create_project(spec, ready=ready)
            return self._created_project_json(project)

    def add_branch(self, project_id: str, name: str, *, ready: bool = True) -> dict[str, Any]:
        """Seed a branch (with a read_write endpoint) off the default branch."""
        with self._lock:
            project = self._get_project(project_id)
            branch, ops = self._create_branch(project, name, None, with_endpoint=True, ready=ready)
            return self._created_branch_json(project, branch, ops)

    def finish_operations(self, project_id: str | None = None) -> None:
        """Finish every unfinished operation now (of one project, or all)."""
        with self._lock:
            now = self.now()
            for project in self._projects.values():
                if project_id is not None and project.id != project_id:
                    continue
                for op in project.operations:
                    if self._op_status(op) in UNFINISHED:
                        op.start_at = min(op.start_at, now)
                        op.finish_at = now

    # FakeApiServer.record and .records_named under this API's names:
    project = FakeApiServer.record
    projects_named = FakeApiServer.records_named

    def branches(self, project_id: str) -> list[dict[str, Any]]:
        with self._lock:
            project = self._get_project(project_id)
            return [self._branch_json(project, b) for b in project.branches.values()]

    def credentials(self, project_id: str, branch_id: str | None = None) -> PgCredentials:
        """The backend credentials behind a branch (default: the project's default branch)."""
        with self._lock:
            project = self._get_project(project_id)
            branch = self._primary(project) if branch_id is None else project.branches[branch_id]
            return branch.creds

    # -- hooks -------------------------------------------------------------------------------

    def _held_stores(self) -> list[PgCredentials]:
        return [b.creds for p in self._projects.values() for b in p.branches.values()]

    def error(self, code: int, message: str, error_code: str = "") -> ApiResponse:
        return json_response(
            code, {"request_id": str(uuid.uuid4()), "code": error_code, "message": message}
        )

    def rate_limit(self, request: ApiRequest) -> tuple[ApiResponse | None, dict[str, str]]:
        now = self.now()
        rules: list[tuple[tuple[str, ...], int, float]] = []
        if self.rate_limit_per_minute is not None:
            rules.append((("minute", request.principal), self.rate_limit_per_minute, 60.0))
        if self.burst_per_route_per_second is not None:
            burst_key = ("burst", request.principal, request.method, request.route)
            rules.append((burst_key, self.burst_per_route_per_second, 1.0))
        for key, limit, seconds in rules:
            if not self.limiter.hit(key, limit, seconds, now).allowed:
                return self.error(429, "rate limit exceeded"), {}
        return None, {}

    # -- routes ------------------------------------------------------------------------------

    @serves("GET", "/users/me/organizations")
    def _h_orgs(self, request: ApiRequest) -> ApiResponse:
        return json_response(200, {"organizations": [dict(o) for o in self._orgs.values()]})

    @serves("GET", "/regions")
    def _h_regions(self, request: ApiRequest) -> ApiResponse:
        regions = [
            {
                "region_id": region_id,
                "name": name,
                "default": region_id == DEFAULT_REGION,
                "geo_lat": lat,
                "geo_long": long,
            }
            for region_id, (name, lat, long) in NEON_REGIONS.items()
        ]
        return json_response(200, {"regions": regions})

    @serves("POST", "/projects")
    def _h_create_project(self, request: ApiRequest) -> ApiResponse:
        body = self.json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("project"), dict):
            raise self.fail(400, "request body must be an object with a 'project' object")
        project = self._create_project(body["project"], ready=False)
        return json_response(201, self._created_project_json(project))

    @serves("GET", "/projects")
    def _h_list_projects(self, request: ApiRequest) -> ApiResponse:
        limit = self._int_param(request, "limit", 10, 1, 400)
        org_id = request.one("org_id") or None
        self._check_org(org_id)
        search = (request.one("search") or "").lower()
        cursor = request.one("cursor") or ""
        items = [p for p in self._projects.values() if p.org_id == org_id]
        if search:
            items = [p for p in items if search in p.name.lower() or search in p.id.lower()]
        if cursor:
            if cursor not in self._project_seq:
                raise self.fail(400, "invalid cursor")
            after = self._project_seq[cursor]
            items = [p for p in items if p.seq > after]
        page = items[:limit]
        next_cursor = page[-1].id if page else cursor
        return json_response(
            200,
            {
                "projects": [self._project_json(p) for p in page],
                "pagination": {"cursor": next_cursor},
                "unavailable_project_ids": [],
            },
        )

    @serves("GET", "/projects/{project_id}")
    def _h_get_project(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        return json_response(200, {"project": self._project_json(project)})

    @serves("DELETE", "/projects/{project_id}")
    def _h_delete_project(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        self._check_lock(project)
        body = {"project": self._project_json(project)}
        for branch in project.branches.values():
            self._drop_store(branch.creds)
        del self._projects[project.id]
        return json_response(200, body)

    @serves("GET", "/projects/{project_id}/operations")
    def _h_list_operations(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        ops = [self._op_json(op) for op in reversed(project.operations)]
        cursor = ops[-1]["id"] if ops else ""
        return json_response(200, {"operations": ops, "pagination": {"cursor": cursor}})

    @serves("GET", "/projects/{project_id}/operations/{operation_id}")
    def _h_get_operation(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        for op in project.operations:
            if op.id == request.params["operation_id"]:
                return json_response(200, {"operation": self._op_json(op)})
        raise self.fail(404, "operation not found")

    @serves("GET", "/projects/{project_id}/connection_uri")
    def _h_connection_uri(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        database_name = request.one("database_name")
        role_name = request.one("role_name")
        if not database_name or not role_name:
            raise self.fail(400, "database_name and role_name are required")
        branch_id = request.one("branch_id")
        branch = self._primary(project) if not branch_id else self._get_branch(project, branch_id)
        endpoint_id = request.one("endpoint_id")
        if branch.endpoint is None or (endpoint_id and endpoint_id != branch.endpoint.id):
            raise self.fail(404, "endpoint not found")
        if database_name not in (branch.database_name, branch.creds.database):
            raise self.fail(404, f"database {database_name!r} not found")
        if role_name not in (branch.role_name, branch.creds.user):
            raise self.fail(404, f"role {role_name!r} not found")
        pooled = (request.one("pooled") or "").lower() == "true"
        return json_response(200, {"uri": self._uri(project, branch, pooled=pooled)})

    @serves("GET", "/projects/{project_id}/endpoints")
    def _h_list_endpoints(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        endpoints = [
            self._endpoint_json(project, b) for b in project.branches.values() if b.endpoint
        ]
        return json_response(200, {"endpoints": endpoints})

    @serves("POST", "/projects/{project_id}/branches")
    def _h_create_branch(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        body = self.json_body(request)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise self.fail(400, "request body must be an object")
        spec = body.get("branch") or {}
        endpoints = body.get("endpoints") or []
        if not isinstance(spec, dict) or not isinstance(endpoints, list):
            raise self.fail(400, "'branch' must be an object and 'endpoints' an array")
        for endpoint in endpoints:
            if not isinstance(endpoint, dict) or endpoint.get("type") != "read_write":
                raise self.fail(400, "only endpoints of type read_write are supported")
        if len(endpoints) > 1:
            raise self.fail(400, "a branch can have only one read_write endpoint")
        name = spec.get("name")
        if name is not None and (not isinstance(name, str) or not name or len(name) > 256):
            raise self.fail(400, "branch name must be a non-empty string")
        parent_id = spec.get("parent_id")
        if parent_id is not None and not isinstance(parent_id, str):
            raise self.fail(400, "parent_id must be a string")
        if name is not None and any(b.name == name for b in project.branches.values()):
            raise self.fail(409, "branch already exists")
        if parent_id is not None and parent_id not in project.branches:
            raise self.fail(404, "parent branch not found")
        self._check_lock(project)
        branch, ops = self._create_branch(
            project, name, parent_id, with_endpoint=bool(endpoints), ready=False
        )
        return json_response(201, self._created_branch_json(project, branch, ops))

    @serves("GET", "/projects/{project_id}/branches")
    def _h_list_branches(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        search = (request.one("search") or "").lower()
        branches = [
            self._branch_json(project, b)
            for b in project.branches.values()
            if not search or search in b.name.lower() or search in b.id.lower()
        ]
        return json_response(200, {"branches": branches, "annotations": {}})

    @serves("GET", "/projects/{project_id}/branches/{branch_id}")
    def _h_get_branch(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        branch = self._get_branch(project, request.params["branch_id"])
        return json_response(200, {"branch": self._branch_json(project, branch)})

    @serves("DELETE", "/projects/{project_id}/branches/{branch_id}")
    def _h_delete_branch(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        branch = self._get_branch(project, request.params["branch_id"])
        if branch.primary:
            raise self.fail(400, "cannot delete the project's default branch")
        if any(b.parent_id == branch.id for b in project.branches.values()):
            raise self.fail(400, "cannot delete a branch that has child branches")
        self._check_lock(project)
        body_branch = self._branch_json(project, branch)
        ops: list[_Operation] = []
        if branch.endpoint is not None:
            ops.append(self._new_op(project, branch, branch.endpoint, "suspend_compute", 0.0))
        ops.append(self._new_op(project, branch, None, "delete_timeline", 0.0))
        self._drop_store(branch.creds)
        del project.branches[branch.id]
        return json_response(
            200, {"branch": body_branch, "operations": [self._op_json(op) for op in ops]}
        )

    @serves("GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password")
    def _h_reveal_password(self, request: ApiRequest) -> ApiResponse:
        project = self._get_project(request.params["project_id"])
        branch = self._get_branch(project, request.params["branch_id"])
        if request.params["role_name"] not in (branch.role_name, branch.creds.user):
            raise self.fail(404, "role not found")
        return json_response(200, {"password": branch.creds.password})

    # -- internals: state --------------------------------------------------------------------

    def _words(self) -> str:
        return f"{self.rand_choice(ADJECTIVES)}-{self.rand_choice(NOUNS)}"

    def _int_param(self, request: ApiRequest, name: str, default: int, low: int, high: int) -> int:
        raw = request.one(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self.fail(400, f"{name} must be an integer") from None
        if not low <= value <= high:
            raise self.fail(400, f"{name} must be between {low} and {high}")
        return value

    def _check_org(self, org_id: str | None) -> None:
        if org_id is None:
            if self.require_org_id:
                raise self.fail(400, ORG_ID_REQUIRED_MESSAGE)
        elif org_id not in self._orgs:
            raise self.fail(404, "organization not found")

    def _get_project(self, project_id: str) -> _Project:
        project = self._projects.get(project_id)
        if project is None:
            raise self.fail(404, "project not found")
        return project

    def _get_branch(self, project: _Project, branch_id: str) -> _Branch:
        branch = project.branches.get(branch_id)
        if branch is None:
            raise self.fail(404, "branch not found")
        return branch

    @staticmethod
    def _primary(project: _Project) -> _Branch:
        return next(b for b in project.branches.values() if b.primary)

    def _check_lock(self, project: _Project) -> None:
        if self.lock_while_running and any(
            self._op_status(op) in UNFINISHED for op in project.operations
        ):
            raise self.fail(423, LOCKED_MESSAGE)

    def _op_status(self, op: _Operation) -> str:
        now = self.now()
        if now >= op.finish_at:
            return op.final_status
        return "running" if now >= op.start_at else "scheduling"

    def _new_op(
        self,
        project: _Project,
        branch: _Branch,
        endpoint: _Endpoint | None,
        action: str,
        start_fraction: float,
        *,
        ready: bool = False,
    ) -> _Operation:
        now = self.now()
        duration = 0.0 if ready else self.operation_seconds
        op = _Operation(
            id=self.rand_uuid(),
            project_id=project.id,
            branch_id=branch.id,
            endpoint_id=endpoint.id if endpoint else None,
            action=action,
            created=now,
            start_at=now + duration * start_fraction,
            finish_at=now + duration,
            final_status=self.operation_final_status,
        )
        project.operations.append(op)
        return op

    def _region_host(self, region_id: str) -> str:
        platform, _, region = region_id.partition("-")
        cell = f"{self.host_cell}." if self.host_cell else ""
        return f"{cell}{region}.{platform}.neon.tech"

    def _new_endpoint(self, region_id: str, settings: dict[str, Any]) -> _Endpoint:
        endpoint_id = f"ep-{self._words()}-{self.rand_string(8, _ALNUM)}"
        return _Endpoint(
            id=endpoint_id,
            host=f"{endpoint_id}.{self._region_host(region_id)}",
            created=self.now(),
            min_cu=float(settings.get("autoscaling_limit_min_cu", 0.25)),
            max_cu=float(settings.get("autoscaling_limit_max_cu", 0.25)),
            suspend_timeout_seconds=int(settings.get("suspend_timeout_seconds", 0)),
        )

    def _new_password(self) -> str:
        return "npg_" + self.rand_string(12, _PASSWORD_CHARS)

    def _create_project(self, spec: dict[str, Any], *, ready: bool) -> _Project:
        name = spec.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise self.fail(400, "project name must be a non-empty string")
        region_id = spec.get("region_id", DEFAULT_REGION)
        if region_id not in NEON_REGIONS:
            raise self.fail(400, f"region {region_id!r} is not supported")
        pg_version = spec.get("pg_version", 17)
        if not isinstance(pg_version, int) or pg_version not in PG_VERSIONS:
            raise self.fail(400, f"pg_version must be one of 14..18, got {pg_version!r}")
        org_id = spec.get("org_id")
        if org_id is not None and not isinstance(org_id, str):
            raise self.fail(400, "org_id must be a string")
        self._check_org(org_id or None)
        branch_spec = spec.get("branch") or {}
        if not isinstance(branch_spec, dict):
            raise self.fail(400, "branch must be an object")
        branch_name = branch_spec.get("name", "main")
        database_name = branch_spec.get("database_name", "neondb")
        role_name = branch_spec.get("role_name", f"{database_name}_owner")
        for label, value in (
            ("branch name", branch_name),
            ("database_name", database_name),
            ("role_name", role_name),
        ):
            if not isinstance(value, str) or not value or len(value) > 63:
                raise self.fail(400, f"{label} must be a non-empty string of up to 63 chars")
        endpoint_settings = spec.get("default_endpoint_settings") or {}
        if not isinstance(endpoint_settings, dict):
            raise self.fail(400, "default_endpoint_settings must be an object")

        project_id = f"{self._words()}-{self.rand_int(10_000_000, 99_999_999)}"
        seq = self.next_seq()
        self._project_seq[project_id] = seq
        now = self.now()
        creds = self.backend.create_postgres(database_name, role_name, self._new_password())
        project = _Project(
            id=project_id,
            seq=seq,
            name=name if name is not None else project_id,
            region_id=region_id,
            pg_version=pg_version,
            org_id=org_id or None,
            created=now,
            endpoint_settings=dict(endpoint_settings),
            settings=dict(spec.get("settings") or {}),
            history_retention_seconds=int(spec.get("history_retention_seconds", 86400)),
        )
        branch = _Branch(
            id=f"br-{self._words()}-{self.rand_string(8, _ALNUM)}",
            project_id=project_id,
            name=branch_name,
            parent_id=None,
            primary=True,
            created=now,
            role_name=role_name,
            database_name=database_name,
            database_id=self._next_database_id(),
            creds=creds,
            endpoint=self._new_endpoint(region_id, endpoint_settings),
        )
        project.branches[branch.id] = branch
        self._new_op(project, branch, None, "create_timeline", 0.0, ready=ready)
        self._new_op(project, branch, branch.endpoint, "start_compute", 0.5, ready=ready)
        self._projects[project_id] = project
        return project

    def _next_database_id(self) -> int:
        self._database_ids += self.rand_int(1, 999)
        return self._database_ids

    def _create_branch(
        self,
        project: _Project,
        name: str | None,
        parent_id: str | None,
        *,
        with_endpoint: bool,
        ready: bool,
    ) -> tuple[_Branch, list[_Operation]]:
        parent = project.branches[parent_id] if parent_id else self._primary(project)
        branch_id = f"br-{self._words()}-{self.rand_string(8, _ALNUM)}"
        creds = self.backend.create_postgres(
            parent.database_name, parent.role_name, parent.creds.password
        )
        branch = _Branch(
            id=branch_id,
            project_id=project.id,
            name=name if name is not None else branch_id,
            parent_id=parent.id,
            primary=False,
            created=self.now(),
            role_name=parent.role_name,
            database_name=parent.database_name,
            database_id=self._next_database_id(),
            creds=creds,
            endpoint=(
                self._new_endpoint(project.region_id, project.endpoint_settings)
                if with_endpoint
                else None
            ),
        )
        project.branches[branch.id] = branch
        ops = [self._new_op(project, branch, None, "create_branch", 0.0, ready=ready)]
        if branch.endpoint is not None:
            ops.append(
                self._new_op(project, branch, branch.endpoint, "start_compute", 0.5, ready=ready)
            )
        return branch, ops

    # -- internals: JSON ---------------------------------------------------------------------

    def _target(self, branch: _Branch, *, pooled: bool) -> tuple[str, int | None]:
        """(host, port) a client should connect to; port None means "Neon default 5432"."""
        if not self.reachable:
            assert branch.endpoint is not None
            host = branch.endpoint.host
            if pooled:
                host = host.replace(branch.endpoint.id, f"{branch.endpoint.id}-pooler", 1)
            return host, None
        host, port = self.connect_target(branch.creds.host, branch.creds.port)
        if pooled:
            host = self.pooler_connect_host or host
            port = self.pooler_connect_port or port
        return host, port

    def _uri(self, project: _Project, branch: _Branch, *, pooled: bool) -> str:
        host, port = self._target(branch, pooled=pooled)
        creds = branch.creds
        netloc = f"{quote(creds.user, safe='')}:{quote(creds.password, safe='')}@{url_host(host)}"
        if port is not None:
            netloc += f":{port}"
        uri = f"postgresql://{netloc}/{quote(creds.database, safe='')}"
        if self.uri_sslmode:
            uri += f"?sslmode={self.uri_sslmode}"
        return uri

    def _connection_uri_json(self, project: _Project, branch: _Branch) -> dict[str, Any]:
        return {
            "connection_uri": self._uri(project, branch, pooled=False),
            "connection_parameters": {
                "database": branch.creds.database,
                "password": branch.creds.password,
                "role": branch.creds.user,
                "host": self._target(branch, pooled=False)[0],
                "pooler_host": self._target(branch, pooled=True)[0],
            },
        }

    def _busy(self, project: _Project, branch_id: str, endpoint_id: str | None = None) -> bool:
        return any(
            self._op_status(op) in UNFINISHED
            and op.branch_id == branch_id
            and (endpoint_id is None or op.endpoint_id == endpoint_id)
            for op in project.operations
        )

    def _project_json(self, project: _Project) -> dict[str, Any]:
        created = self.iso(self.wall_at(project.created))
        platform = project.region_id.partition("-")[0]
        body: dict[str, Any] = {
            "id": project.id,
            "platform_id": platform,
            "region_id": project.region_id,
            "name": project.name,
            "provisioner": "k8s-neonvm",
            "default_endpoint_settings": {
                "autoscaling_limit_min_cu": 0.25,
                "autoscaling_limit_max_cu": 0.25,
                "suspend_timeout_seconds": 0,
                **project.endpoint_settings,
            },
            "settings": {
                "allowed_ips": {"ips": [], "protected_branches_only": False},
                "enable_logical_replication": False,
                "block_public_connections": False,
                **project.settings,
            },
            "pg_version": project.pg_version,
            "proxy_host": self._region_host(project.region_id),
            "branch_logical_size_limit": 512,
            "branch_logical_size_limit_bytes": 536_870_912,
            "store_passwords": True,
            "active_time": 0,
            "cpu_used_sec": 0,
            "creation_source": "console",
            "history_retention_seconds": project.history_retention_seconds,
            "created_at": created,
            "updated_at": created,
            "owner_id": "fake-owner-0000",
        }
        if project.org_id is not None:
            body["org_id"] = project.org_id
        return body

    def _branch_json(self, project: _Project, branch: _Branch) -> dict[str, Any]:
        created = self.iso(self.wall_at(branch.created))
        busy = self._busy(project, branch.id)
        body: dict[str, Any] = {
            "id": branch.id,
            "project_id": project.id,
            "name": branch.name,
            "current_state": "init" if busy else "ready",
            "state_changed_at": created,
            "creation_source": "console",
            "primary": branch.primary,
            "default": branch.primary,
            "protected": False,
            "cpu_used_sec": 0,
            "compute_time_seconds": 0,
            "active_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
            "created_at": created,
            "updated_at": created,
        }
        if busy:
            body["pending_state"] = "ready"
        if branch.parent_id is not None:
            body["parent_id"] = branch.parent_id
            body["parent_lsn"] = "0/1FA22C0"
            body["init_source"] = "parent-data"
        return body

    def _endpoint_json(self, project: _Project, branch: _Branch) -> dict[str, Any]:
        endpoint = branch.endpoint
        assert endpoint is not None
        created = self.iso(self.wall_at(endpoint.created))
        busy = self._busy(project, branch.id, endpoint.id)
        body: dict[str, Any] = {
            "host": endpoint.host,
            "id": endpoint.id,
            "project_id": project.id,
            "branch_id": branch.id,
            "autoscaling_limit_min_cu": endpoint.min_cu,
            "autoscaling_limit_max_cu": endpoint.max_cu,
            "region_id": project.region_id,
            "type": "read_write",
            "current_state": "init" if busy else "active",
            "settings": {},
            "pooler_enabled": False,
            "pooler_mode": "transaction",
            "disabled": False,
            "passwordless_access": True,
            "creation_source": "console",
            "created_at": created,
            "updated_at": created,
            "proxy_host": self._region_host(project.region_id),
            "suspend_timeout_seconds": endpoint.suspend_timeout_seconds,
            "provisioner": "k8s-neonvm",
        }
        if busy:
            body["pending_state"] = "active"
        return body

    def _op_json(self, op: _Operation) -> dict[str, Any]:
        status_now = self._op_status(op)
        end = min(self.now(), op.finish_at)
        body: dict[str, Any] = {
            "id": op.id,
            "project_id": op.project_id,
            "branch_id": op.branch_id,
            "action": op.action,
            "status": status_now,
            "failures_count": 0,
            "created_at": self.iso(self.wall_at(op.created)),
            "updated_at": self.iso(self.wall_at(end)),
            "total_duration_ms": int(max(0.0, end - op.created) * 1000),
        }
        if op.endpoint_id is not None:
            body["endpoint_id"] = op.endpoint_id
        return body

    def _role_json(self, branch: _Branch, *, with_password: bool) -> dict[str, Any]:
        created = self.iso(self.wall_at(branch.created))
        body: dict[str, Any] = {
            "branch_id": branch.id,
            "name": branch.creds.user,
            "protected": False,
            "created_at": created,
            "updated_at": created,
        }
        if with_password:
            body["password"] = branch.creds.password
        return body

    def _database_json(self, branch: _Branch) -> dict[str, Any]:
        created = self.iso(self.wall_at(branch.created))
        return {
            "id": branch.database_id,
            "branch_id": branch.id,
            "name": branch.creds.database,
            "owner_name": branch.creds.user,
            "created_at": created,
            "updated_at": created,
        }

    def _created_project_json(self, project: _Project) -> dict[str, Any]:
        branch = self._primary(project)
        return {
            "project": self._project_json(project),
            "connection_uris": [self._connection_uri_json(project, branch)],
            "roles": [self._role_json(branch, with_password=True)],
            "databases": [self._database_json(branch)],
            "operations": [self._op_json(op) for op in project.operations],
            "branch": self._branch_json(project, branch),
            "endpoints": [self._endpoint_json(project, branch)],
        }

    def _created_branch_json(
        self, project: _Project, branch: _Branch, ops: list[_Operation]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "branch": self._branch_json(project, branch),
            "endpoints": [self._endpoint_json(project, branch)] if branch.endpoint else [],
            "operations": [self._op_json(op) for op in ops],
            "roles": [self._role_json(branch, with_password=True)],
            "databases": [self._database_json(branch)],
        }
        if branch.endpoint is not None:
            body["connection_uris"] = [self._connection_uri_json(project, branch)]
        return body
