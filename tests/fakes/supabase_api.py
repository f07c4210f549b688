"""A fake of the Supabase Management API (``https://api.supabase.com``, paths ``/v1/…``): a real
HTTP server on 127.0.0.1 holding state. Behaviour follows
``/work/shared/reference/neon-supabase-upstash.md`` §2 (``{"message"}`` errors, 120 req/min with
``X-RateLimit-*`` headers, ``UNKNOWN -> COMING_UP -> ACTIVE_HEALTHY``, the pooler config).

Usage::

    with SupabaseFake(clock=ManualClock()) as supabase:
        client = httpx.Client(base_url=supabase.base_url,
                              headers={"Authorization": f"Bearer {FAKE_SUPABASE_TOKEN}"})
        client.get("/v1/organizations")

Routes (``base_url`` is the bare origin ``http://127.0.0.1:<port>``):

- ``GET /v1/organizations`` -> ``[{"id", "slug", "name"}]``
- ``POST /v1/projects`` -> 201 ``{"id","ref","organization_id","organization_slug","name",
  "region","created_at","status":"UNKNOWN"}`` (``ref``: 20 lowercase letters). Required:
  ``db_pass``, ``name``, ``organization_slug``; ``region`` (enum) or ``region_selection``
  (``specific``/``smartGroup``); unknown properties -> 400 (``additionalProperties: false``).
  Neither region field: ``us-east-1`` (lenient; the real behaviour is UNCONFIRMED).
- ``GET /v1/projects`` -> every project (array, not paginated); ``GET /v1/projects/{ref}``
  (adds ``database`` ``{"host": "db.<ref>.supabase.co", …}`` once ``ACTIVE_HEALTHY``);
  ``DELETE /v1/projects/{ref}`` -> ``{"id": <int>, "ref", "name"}``; 400 ``{"message":
  "Project not ready for deletion."}`` while provisioning (pending statuses); 404 when gone.
- ``GET /v1/projects/{ref}/config/database/pooler`` -> ``[]`` until ``pooler_delay_seconds``
  after the project became ``ACTIVE_HEALTHY``, then one ``PRIMARY`` entry.
- ``GET /v1/projects/{ref}/health?services=db[&services=pooler]``.

Status on the clock: ``UNKNOWN`` for ``unknown_seconds``, ``COMING_UP`` for
``coming_up_seconds``, then ``final_status`` (``ACTIVE_HEALTHY``; e.g. ``INIT_FAILED`` to test
failures). :meth:`SupabaseFake.set_status` pins a status.

Rate limit: ``rate_limit`` (120) requests per ``rate_window`` (60 s, fake clock) per token,
per endpoint (method + route) and per project (routes with ``{ref}``) or organization
(``POST /v1/projects``, keyed by ``organization_slug``). Every authenticated answer carries
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (whole seconds
until the window ends; the first request shows 120 / 119 / 60 as recorded). Beyond it: 429
``{"message": "Rate limit exceeded"}``. ``rate_limit=None`` disables limits and headers.

Which fields carry a REACHABLE host/port (in reachable mode: ``connect_host=`` given, or a
``backend=`` other than ``NullBackend``, or ``reachable=True``): the pooler entry's
``db_host``, ``db_port``, ``db_user``, ``db_name`` and ``connection_string``
(``postgresql://<user>:[YOUR-PASSWORD]@<host>:<port>/<db>``; the password to fill in is the
client's ``db_pass``). Host/port are ``connect_host``/``connect_port`` or the backend's
``PgCredentials.host``/``.port``; user/database are the backend's returned names.
Otherwise the entry is realistic: ``postgres.<ref>`` @
``aws-<pooler_shard>-<region>.pooler.supabase.com:6543/postgres``. ``database.host`` is always
the realistic ``db.<ref>.supabase.co`` (direct connections are IPv6-only on Supabase anyway).
In reachable mode ``db_port`` is the backend's port, so rewriting ``:6543/`` -> ``:5432/`` for
session mode is a no-op.

Backend: ``create_postgres("postgres", "postgres.<ref>", password=db_pass)`` at create time
(a shared server already has a ``postgres`` database: the backend must pick its own name and
return it); ``drop_postgres`` on delete.

Invented where the reference is silent (do not assert on the text): messages of validation
errors, of 401 (``Unauthorized``), 404 and 429.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Unpack
from urllib.parse import quote

from tests.fakes.common import (
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
    "FAKE_SUPABASE_TOKEN",
    "NOT_READY_FOR_DELETION",
    "PENDING_STATUSES",
    "SUPABASE_REGIONS",
    "TERMINAL_FAILURE_STATUSES",
    "SupabaseFake",
]

FAKE_SUPABASE_TOKEN = "sbp_fake-supabase-token-for-tests-0123"
"""A PAT the fake accepts by default (deliberately not shaped like a real one)."""

SUPABASE_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-east-1", "ap-southeast-1",
    "ap-northeast-1", "ap-northeast-2", "ap-southeast-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-north-1", "eu-central-1", "eu-central-2", "ca-central-1", "ap-south-1", "sa-east-1",
)  # fmt: skip
SMART_GROUPS = {"americas": "us-east-1", "emea": "eu-central-1", "apac": "ap-southeast-1"}
INSTANCE_SIZES = frozenset(
    {"pico", "nano", "micro", "small", "medium", "large", "xlarge", "2xlarge", "4xlarge"}
    | {"8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"}
)
ALL_STATUSES = frozenset(
    {"INACTIVE", "ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY", "COMING_UP", "UNKNOWN", "GOING_DOWN"}
    | {"INIT_FAILED", "REMOVED", "RESTORING", "UPGRADING", "PAUSING", "RESTORE_FAILED"}
    | {"RESTARTING", "PAUSE_FAILED", "RESIZING"}
)
PENDING_STATUSES = frozenset(
    {"ACTIVE_UNHEALTHY", "RESTORING", "COMING_UP", "UPGRADING", "PAUSING", "RESIZING"}
    | {"RESTARTING", "UNKNOWN"}
)
"""Still provisioning (terraform ``waitForProjectActive``): DELETE answers 400 meanwhile."""
TERMINAL_FAILURE_STATUSES = frozenset(
    {"GOING_DOWN", "INIT_FAILED", "REMOVED", "INACTIVE", "PAUSE_FAILED", "RESTORE_FAILED"}
)
NOT_READY_FOR_DELETION = "Project not ready for deletion."
_ALLOWED_CREATE_KEYS = frozenset(
    {"db_pass", "name", "organization_id", "organization_slug", "region", "region_selection"}
    | {"desired_instance_size", "template_url", "plan", "kps_enabled", "release_channel"}
    | {"postgres_engine"}
)
_SLUG = re.compile(r"[\w-]+")


@dataclass
class _Project:
    ref: str
    seq: int
    name: str
    org_slug: str
    region: str
    created: float
    creds: PgCredentials
    status_override: str | None = None
    override_at: float = 0.0


class SupabaseFake(BearerKeys, FakeApiServer[_Project]):
    """Fake Supabase Management API. See the module docstring for routes and reachable fields.

    Keyword arguments: ``tokens`` (accepted Bearer tokens, default
    :data:`FAKE_SUPABASE_TOKEN`), ``clock``, ``backend``, ``unknown_seconds`` (1),
    ``coming_up_seconds`` (4), ``pooler_delay_seconds`` (2: pooler list empty that long after
    ACTIVE_HEALTHY), ``final_status``, ``rate_limit`` (120; None: off), ``rate_window`` (60),
    ``connect_host``/``connect_port``, ``pooler_shard`` (the ``aws-N-`` prefix), ``org_name``/
    ``org_slug`` (the seeded organization; slug default: 20 random letters), ``seed``.
    """

    prefix = ""
    thread_name = "fake-supabase-api"

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (FAKE_SUPABASE_TOKEN,),
        unknown_seconds: float = 1.0,
        coming_up_seconds: float = 4.0,
        pooler_delay_seconds: float = 2.0,
        final_status: str = "ACTIVE_HEALTHY",
        rate_limit: int | None = 120,
        rate_window: float = 60.0,
        pooler_shard: int = 0,
        org_name: str = "AuthKit Org",
        org_slug: str | None = None,
        **options: Unpack[FakeOptions],
    ) -> None:
        if final_status not in ALL_STATUSES:
            raise ValueError(f"unknown project status {final_status!r}")
        self._accept_keys(tokens)
        self.unknown_seconds = unknown_seconds
        self.coming_up_seconds = coming_up_seconds
        self.pooler_delay_seconds = pooler_delay_seconds
        self.final_status = final_status
        self.rate_limit_per_window = rate_limit
        self.rate_window = rate_window
        self.pooler_shard = pooler_shard
        self._orgs: dict[str, dict[str, str]] = {}
        self._projects: dict[str, _Project] = {}
        super().__init__(self._projects, self._project_json, **options)
        self.add_organization(org_name, slug=org_slug)

    # -- configuration, seeding, inspection ---------------------------------------------------

    def add_organization(self, name: str, *, slug: str | None = None) -> dict[str, str]:
        with self._lock:
            slug = slug or self.rand_string(20)
            self._orgs[slug] = {"id": slug, "slug": slug, "name": name}
            return dict(self._orgs[slug])

    @property
    def org_slug(self) -> str:
        """The first organization's slug."""
        with self._lock:
            return next(iter(self._orgs))

    def add_project(
        self,
        name: str,
        db_pass: str,
        *,
        organization_slug: str | None = None,
        region: str = "us-east-1",
        ready: bool = True,
    ) -> dict[str, Any]:
        """Seed a project without HTTP (``ready``: already ACTIVE_HEALTHY with its pooler);
        returns it as ``GET /v1/projects/{ref}`` would."""
        with self._lock:
            project = self._create(name, db_pass, organization_slug or self.org_slug, region)
            if ready:
                project.created -= (
                    self.unknown_seconds + self.coming_up_seconds + self.pooler_delay_seconds
                )
            return self._project_json(project)

    def set_status(self, ref: str, status: str | None) -> None:
        """Pin a project's status (None: back to the clock). Pinning ``ACTIVE_HEALTHY``
        starts the pooler delay from now."""
        if status is not None and status not in ALL_STATUSES:
            raise ValueError(f"unknown project status {status!r}")
        with self._lock:
            project = self._projects[ref]
            project.status_override = status
            project.override_at = self.now()

    # FakeApiServer.record and .records_named under this API's names:
    project = FakeApiServer.record
    projects_named = FakeApiServer.records_named

    def credentials(self, ref: str) -> PgCredentials:
        """The backend credentials behind a project (password = the client's ``db_pass``)."""
        with self._lock:
            return self._projects[ref].creds

    # -- hooks -------------------------------------------------------------------------------

    def _held_stores(self) -> list[PgCredentials]:
        return [project.creds for project in self._projects.values()]

    def error(self, code: int, message: str) -> ApiResponse:
        return json_response(code, {"message": message})

    def _rate_key(self, request: ApiRequest) -> tuple[str, ...]:
        scope = request.params.get("ref", "")
        if request.method == "POST" and request.route == "/v1/projects":
            try:
                body = self.json_body(request)
            except ValueError:
                body = None
            if isinstance(body, dict):
                scope = f"org:{body.get('organization_slug')}"
        return (request.principal, request.method, request.route, scope)

    def _headers(self, limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }

    def rate_limit(self, request: ApiRequest) -> tuple[ApiResponse | None, dict[str, str]]:
        if self.rate_limit_per_window is None:
            return None, {}
        decision = self.limiter.hit(
            self._rate_key(request), self.rate_limit_per_window, self.rate_window, self.now()
        )
        headers = self._headers(decision.limit, decision.remaining, decision.reset)
        if not decision.allowed:
            return self.error(429, "Rate limit exceeded"), headers
        return None, headers

    def fault_headers(self, request: ApiRequest, code: int) -> dict[str, str]:
        """Injected answers carry the current window's headers (not counted; an injected
        429 shows ``X-RateLimit-Remaining: 0``)."""
        if self.rate_limit_per_window is None:
            return {}
        principal = self.authenticate(request)
        route = self._match(request)
        if principal is None or isinstance(route, ApiResponse):
            return {}
        request.principal = principal
        decision = self.limiter.peek(
            self._rate_key(request), self.rate_limit_per_window, self.rate_window, self.now()
        )
        remaining = 0 if code == 429 else decision.remaining
        return self._headers(decision.limit, remaining, decision.reset)

    # -- routes ------------------------------------------------------------------------------

    @serves("GET", "/v1/organizations")
    def _h_orgs(self, request: ApiRequest) -> ApiResponse:
        return json_response(200, [dict(o) for o in self._orgs.values()])

    @serves("GET", "/v1/projects")
    def _h_list(self, request: ApiRequest) -> ApiResponse:
        return json_response(200, [self._project_json(p) for p in self._projects.values()])

    @serves("POST", "/v1/projects")
    def _h_create(self, request: ApiRequest) -> ApiResponse:
        body = self.json_body(request)
        if not isinstance(body, dict):
            raise self.fail(400, "Request body must be a JSON object")
        for key in body:
            if key not in _ALLOWED_CREATE_KEYS:
                raise self.fail(400, f"property {key} should not exist")
        db_pass = body.get("db_pass")
        if not isinstance(db_pass, str) or not db_pass:
            raise self.fail(400, "db_pass must be a non-empty string")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise self.fail(400, "name must be a string of 1 to 256 characters")
        slug = body.get("organization_slug") or body.get("organization_id")
        if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
            raise self.fail(400, "organization_slug must match ^[\\w-]+$")
        if slug not in self._orgs:
            raise self.fail(404, f"Organization {slug} not found")
        region = self._region(body)
        size = body.get("desired_instance_size")
        if size is not None and size not in INSTANCE_SIZES:
            raise self.fail(400, f"desired_instance_size must be one of {sorted(INSTANCE_SIZES)}")
        project = self._create(name, db_pass, slug, region)
        return json_response(201, self._project_json(project, with_database=False))

    def _region(self, body: dict[str, Any]) -> str:
        region = body.get("region")
        selection = body.get("region_selection")
        if region is not None and selection is not None:
            raise self.fail(400, "Send only one of region and region_selection")
        if region is not None:
            if region not in SUPABASE_REGIONS:
                raise self.fail(400, f"region must be one of {', '.join(SUPABASE_REGIONS)}")
            return str(region)
        if selection is None:
            return "us-east-1"
        if not isinstance(selection, dict):
            raise self.fail(400, "region_selection must be an object")
        kind, code = selection.get("type"), selection.get("code")
        if kind == "specific" and code in SUPABASE_REGIONS:
            return str(code)
        if kind == "smartGroup" and code in SMART_GROUPS:
            return SMART_GROUPS[str(code)]
        raise self.fail(400, "region_selection must be a valid specific region or smartGroup")

    @serves("GET", "/v1/projects/{ref}")
    def _h_get(self, request: ApiRequest) -> ApiResponse:
        return json_response(200, self._project_json(self._get(request.params["ref"])))

    @serves("DELETE", "/v1/projects/{ref}")
    def _h_delete(self, request: ApiRequest) -> ApiResponse:
        project = self._get(request.params["ref"])
        if self._status(project) in PENDING_STATUSES:
            raise self.fail(400, NOT_READY_FOR_DELETION)
        self._drop_store(project.creds)
        del self._projects[project.ref]
        return json_response(200, {"id": project.seq, "ref": project.ref, "name": project.name})

    @serves("GET", "/v1/projects/{ref}/config/database/pooler")
    def _h_pooler(self, request: ApiRequest) -> ApiResponse:
        project = self._get(request.params["ref"])
        if not self._pooler_ready(project):
            return json_response(200, [])
        return json_response(200, [self._pooler_json(project)])

    @serves("GET", "/v1/projects/{ref}/health")
    def _h_health(self, request: ApiRequest) -> ApiResponse:
        project = self._get(request.params["ref"])
        services = request.many("services")
        if not services:
            raise self.fail(400, "services is required")
        healthy = self._status(project) == "ACTIVE_HEALTHY"
        result = []
        for service in services:
            ok = healthy and (service != "pooler" or self._pooler_ready(project))
            result.append(
                {
                    "name": service,
                    "status": "ACTIVE_HEALTHY" if ok else "COMING_UP",
                    "healthy": ok,
                }
            )
        return json_response(200, result)

    # -- internals ---------------------------------------------------------------------------

    def _get(self, ref: str) -> _Project:
        project = self._projects.get(ref)
        if project is None:
            raise self.fail(404, f"Project {ref} not found")
        return project

    def _create(self, name: str, db_pass: str, slug: str, region: str) -> _Project:
        ref = self.rand_string(20)
        while ref in self._projects:
            ref = self.rand_string(20)
        seq = self.next_seq()
        creds = self.backend.create_postgres("postgres", f"postgres.{ref}", db_pass)
        project = _Project(
            ref=ref,
            seq=seq,
            name=name,
            org_slug=slug,
            region=region,
            created=self.now(),
            creds=creds,
        )
        self._projects[ref] = project
        return project

    def _status(self, project: _Project) -> str:
        if project.status_override is not None:
            return project.status_override
        elapsed = self.now() - project.created
        if elapsed < self.unknown_seconds:
            return "UNKNOWN"
        if elapsed < self.unknown_seconds + self.coming_up_seconds:
            return "COMING_UP"
        return self.final_status

    def _pooler_ready(self, project: _Project) -> bool:
        if self._status(project) != "ACTIVE_HEALTHY":
            return False
        if project.status_override is not None:
            healthy_since = project.override_at
        else:
            healthy_since = project.created + self.unknown_seconds + self.coming_up_seconds
        return self.now() >= healthy_since + self.pooler_delay_seconds

    def _project_json(self, project: _Project, *, with_database: bool = True) -> dict[str, Any]:
        current = self._status(project)
        body: dict[str, Any] = {
            "id": project.ref,
            "ref": project.ref,
            "organization_id": project.org_slug,
            "organization_slug": project.org_slug,
            "name": project.name,
            "region": project.region,
            "created_at": self.iso(self.wall_at(project.created)),
            "status": current,
        }
        if with_database and current == "ACTIVE_HEALTHY":
            body["database"] = {
                "host": f"db.{project.ref}.supabase.co",
                "version": "17.6.1.111",
                "postgres_engine": "17",
                "release_channel": "ga",
            }
        return body

    def _pooler_json(self, project: _Project) -> dict[str, Any]:
        creds = project.creds
        if self.reachable:
            host, port = self.connect_target(creds.host, creds.port)
        else:
            host = f"aws-{self.pooler_shard}-{project.region}.pooler.supabase.com"
            port = 6543
        user, database = creds.user, creds.database
        connection_string = (
            f"postgresql://{quote(user, safe='')}:[YOUR-PASSWORD]@{url_host(host)}:{port}"
            f"/{quote(database, safe='')}"
        )
        return {
            "identifier": project.ref,
            "database_type": "PRIMARY",
            "db_user": user,
            "db_host": host,
            "db_port": port,
            "db_name": database,
            "connection_string": connection_string,
            "connectionString": connection_string,
            "pool_mode": "transaction",
            "default_pool_size": None,
            "max_client_conn": None,
            "is_using_scram_auth": True,
        }
