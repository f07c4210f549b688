"""Neon: a Postgres project per store (facts: shared/reference/neon-supabase-upstash.md §1).

- A store is a Neon *project*; its name is the store name. `GET /projects?search=` matches
  partially, so the listing is filtered to the exact name here.
- Ready when none of the project's operations is `scheduling`/`running` (§1.3).
- DATABASE_URL is the pooled URI (host `<endpoint>-pooler…`, still port 5432) with
  `sslmode=require` and Prisma's `pgbouncer=true`; DIRECT_URL is the direct URI, for
  migrations (Prisma Migrate fails through PgBouncer, §1.6).
- 423 Locked (a conflicting operation still runs) and 429 are retried for every method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from authkit_setup.errors import (
    ApiError,
    BadResponseError,
    CredentialsError,
    NotFoundError,
    UsageError,
)
from authkit_setup.http import ApiClient, expect_type, required_fields
from authkit_setup.providers.base import (
    ConnectionInfo,
    Kind,
    Readiness,
    Store,
    StoreProvider,
    StoreSpec,
    Traits,
)
from authkit_setup.providers.regions import pick_region
from authkit_setup.providers.urls import rebuild
from authkit_setup.secrets import register

# A preview is the branch `preview/<name>` of the base project, as Neon recommends (§1.4).
TRAITS = Traits(preview_branch_prefix="preview/")
CREDENTIALS_HINT = (
    "pass --neon-api-key or set NEON_API_KEY; create a key in the Neon Console → "
    "Account settings → API keys"
)
# The regions page (neon.com/docs/introduction/regions, 2026-01).
REGIONS = (
    "aws-us-east-1",
    "aws-us-east-2",
    "aws-us-west-2",
    "aws-eu-central-1",
    "aws-eu-west-2",
    "aws-ap-southeast-1",
    "aws-ap-southeast-2",
    "aws-sa-east-1",
    "azure-eastus2",
    "azure-westus3",
    "azure-gwc",
)
PG_VERSIONS = range(14, 19)
UNFINISHED = frozenset({"scheduling", "running"})
FAILED = frozenset({"failed", "error"})
PAGE_LIMIT = 400


def check_version(version: str) -> int:
    """Neon runs PostgreSQL 14-18; say so before anything is created."""
    if not version.isdigit() or int(version) not in PG_VERSIONS:
        raise UsageError(
            f"--postgres-version {version}: Neon offers PostgreSQL 14 to 18",
            hint="pass --postgres-version 16 (or 14-18)",
        )
    return int(version)


class NeonClient(ApiClient):
    provider = "Neon"
    credentials_hint = CREDENTIALS_HINT
    # 423: "project already has running conflicting operations" -- nothing was applied; neonctl
    # retries it too (src/api.ts retryOnLock).
    retry_any_method = frozenset({423, 429})

    def organizations(self) -> list[dict[str, Any]]:
        body = self.get_object("/users/me/organizations", "organizations")
        return [dict(o) for o in body.get("organizations") or [] if isinstance(o, dict)]

    def projects(self, *, search: str, org_id: str | None) -> Iterator[dict[str, Any]]:
        """Every project whose name or id contains `search`, page by page (cursor paging)."""
        params: dict[str, Any] = {"search": search, "limit": PAGE_LIMIT}
        if org_id:
            params["org_id"] = org_id
        seen: set[str] = set()
        while True:
            body = self.get_object("/projects", "projects", params)
            page = expect_type(body.get("projects"), list, "projects")
            yield from (dict(p) for p in page if isinstance(p, dict))
            cursor = (body.get("pagination") or {}).get("cursor")
            if len(page) < PAGE_LIMIT or not isinstance(cursor, str) or cursor in seen:
                return
            seen.add(cursor)
            params["cursor"] = cursor

    def create_project(self, project: dict[str, Any]) -> dict[str, Any]:
        return self.create("/projects", {"project": project}, "created project")

    def project(self, project_id: str) -> dict[str, Any]:
        body = self.get_object(f"/projects/{project_id}", "project")
        return dict(expect_type(body.get("project"), dict, "project"))

    def operations(self, project_id: str) -> list[dict[str, Any]]:
        body = self.get_object(f"/projects/{project_id}/operations", "operations")
        return [dict(o) for o in body.get("operations") or [] if isinstance(o, dict)]

    def connection_uri(
        self,
        project_id: str,
        *,
        database: str,
        role: str,
        pooled: bool,
        branch_id: str | None = None,
    ) -> str:
        params = {"database_name": database, "role_name": role, "pooled": str(pooled).lower()}
        if branch_id:
            params["branch_id"] = branch_id
        body = self.get_object(f"/projects/{project_id}/connection_uri", "connection URI", params)
        uri = body.get("uri")
        if not isinstance(uri, str) or not uri:
            raise BadResponseError("Neon returned no connection URI")
        return uri

    def delete_project(self, project_id: str) -> None:
        self.delete_if_present(f"/projects/{project_id}")

    def branches(self, project_id: str, *, search: str | None = None) -> list[dict[str, Any]]:
        params = {"search": search} if search else None
        body = self.get_object(f"/projects/{project_id}/branches", "branches", params)
        page = expect_type(body.get("branches"), list, "branches")
        return [dict(b) for b in page if isinstance(b, dict)]

    def branch(self, project_id: str, branch_id: str) -> dict[str, Any]:
        body = self.get_object(f"/projects/{project_id}/branches/{branch_id}", "branch")
        return dict(expect_type(body.get("branch"), dict, "branch"))

    def create_branch(self, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.create(f"/projects/{project_id}/branches", body, "created branch")

    def delete_branch(self, project_id: str, branch_id: str) -> None:
        self.delete_if_present(f"/projects/{project_id}/branches/{branch_id}")


def _postgres_store(
    provider: str,
    store_id: str,
    name: str,
    region: str,
    operations: list[dict[str, Any]],
    raw: dict[str, Any],
) -> Store:
    """A project or a branch (`raw`) as a Store, its status read from its operations."""
    status, readiness = _readiness(operations)
    return Store(
        provider=provider,
        kind=Kind.POSTGRES,
        id=store_id,
        name=name,
        region=region,
        plan="",
        status=status,
        readiness=readiness,
        created_at=raw.get("created_at"),
        raw=raw,
    )


def _readiness(operations: list[dict[str, Any]]) -> tuple[str, Readiness]:
    """(status, readiness) from a project's operations (newest first, as Neon lists them)."""
    statuses = [str(op.get("status") or "") for op in operations]
    running = [s for s in statuses if s in UNFINISHED]
    if running:
        return f"{len(running)} operation{'s' if len(running) > 1 else ''} running", (
            Readiness.PENDING
        )
    if statuses and statuses[0] in FAILED:
        action = operations[0].get("action") or "operation"
        return f"{action} {statuses[0]}", Readiness.FAILED
    return "ready", Readiness.READY


def neon_region(region: str) -> str:
    """Neon spells regions with the cloud first: `us-east-2` → `aws-us-east-2`."""
    return region if region.startswith(("aws-", "azure-")) else f"aws-{region}"


def pooled_host(host: str) -> str:
    """Neon's pooler host inserts `-pooler` after the endpoint id (the first label), as neonctl
    does (`connection_string.ts`); a host already pooled or not an endpoint stays as it is."""
    label, dot, rest = host.partition(".")
    if not label.startswith("ep-") or label.endswith("-pooler"):
        return host
    return f"{label}-pooler{dot}{rest}"


def database_urls(direct_uri: str, pooled_uri: str) -> tuple[str, str]:
    """(DATABASE_URL, DIRECT_URL): the pooled URI for the app, the direct one for migrations.

    Neon requires TLS: `sslmode=require` is added when missing (whether the API appends it is
    UNCONFIRMED). The pooled URL gets `pgbouncer=true` because AuthKit uses Prisma.
    """
    host = urlsplit(pooled_uri).hostname or ""
    pooled = rebuild(
        pooled_uri,
        host=pooled_host(host),
        query={"sslmode": "require", "pgbouncer": "true"},
    )
    direct = rebuild(direct_uri, query={"sslmode": "require"})
    return pooled, direct


def _connection_info(
    client: NeonClient,
    project_id: str,
    *,
    database: str,
    role: str,
    branch_id: str | None = None,
    what: str,
    hint: str,
) -> ConnectionInfo:
    """The pooled DATABASE_URL and the DIRECT_URL of `role` on `database` (of a branch, or the
    project's default one). The connection_uri call returns the role's password too (stored
    passwords, §1.4), so a re-run can read it back. `what` has no such database or role: a
    usage error with `hint`."""
    try:
        direct, pooled = (
            client.connection_uri(
                project_id, database=database, role=role, pooled=pooled, branch_id=branch_id
            )
            for pooled in (False, True)
        )
    except NotFoundError:
        raise UsageError(
            f"{what} has no database {database!r} with role {role!r}", hint=hint
        ) from None
    app_url, direct_url = database_urls(direct, pooled)
    return ConnectionInfo(
        app_url=app_url, external_url=app_url, extra_env={"DIRECT_URL": direct_url}
    )


class NeonStores:
    """Neon projects behind the StoreProvider interface (Postgres only)."""

    name: ClassVar[str] = "neon"
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.POSTGRES})
    traits: ClassVar[Traits] = TRAITS
    # A Neon project or branch answers within seconds of its create.
    typical_ready: ClassVar[Mapping[Kind, float]] = {Kind.POSTGRES: 5.0}

    def __init__(
        self,
        client: NeonClient,
        *,
        org_id: str | None = None,
        region: str | None = None,
        database: str = "authkit",
        role: str = "authkit_user",
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.org_id = org_id
        self.region_override = region
        self.database = database
        self.role = role
        self._notice = on_notice or (lambda message: None)

    def region_for(self, render_region: str) -> str:
        return pick_region(render_region, self.region_override, REGIONS, "Neon", neon_region)

    # -- organizations: a personal key that sees organizations must name one (§1.1) -----------
    def _with_org(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ApiError as exc:
            if exc.status != 400 or "org_id" not in exc.message or self.org_id:
                raise
        orgs = self.client.organizations()
        if len(orgs) == 1:
            self.org_id = str(orgs[0].get("id"))
            self._notice(f"Neon: using organization {orgs[0].get('name')} ({self.org_id})")
            return call()
        listed = ", ".join(f"{o.get('id')} ({o.get('name')})" for o in orgs) or "none visible"
        raise CredentialsError(
            "this Neon API key needs an organization: pass --neon-org-id or set NEON_ORG_ID",
            hint=f"your organizations: {listed}",
        )

    def find(self, kind: Kind, name: str) -> list[Store]:
        projects = self._with_org(
            lambda: list(self.client.projects(search=name, org_id=self.org_id))
        )
        return [self._store(p) for p in projects if p.get("name") == name]

    def _store(
        self, project: dict[str, Any], operations: list[dict[str, Any]] | None = None
    ) -> Store:
        project_id, name = required_fields(project, "id", "name", what="Neon returned a project")
        if operations is None:
            operations = self.client.operations(project_id)
        region = str(project.get("region_id") or "")
        return _postgres_store(self.name, project_id, name, region, operations, project)

    def create(self, spec: StoreSpec) -> Store:
        body: dict[str, Any] = {
            "name": spec.name,
            "region_id": spec.region,
            "pg_version": check_version(spec.version),
            "branch": {"name": "main", "database_name": spec.database, "role_name": spec.user},
        }

        def send() -> dict[str, Any]:
            if self.org_id:
                body["org_id"] = self.org_id
            return self.client.create_project(body)

        created = self._with_org(send)
        # The role's password is in this answer (and later only via connection_uri): mask it now.
        for role in created.get("roles") or []:
            if isinstance(role, dict) and isinstance(role.get("password"), str):
                register(role["password"])
        project = expect_type(created.get("project"), dict, "created project")
        operations = [o for o in created.get("operations") or [] if isinstance(o, dict)]
        store = self._store(project, operations)
        store.created = True
        return store

    def refresh(self, store: Store) -> Store:
        return store.refreshed(self._store(self.client.project(store.id)))

    def connection_info(self, store: Store) -> ConnectionInfo:
        # The names are --database / --db-user, as at create time.
        return _connection_info(
            self.client,
            store.id,
            database=self.database,
            role=self.role,
            what=f"Neon project {store.name} ({store.id})",
            hint="pass --database and --db-user with the project's names (Neon's defaults "
            "are neondb and neondb_owner), or choose another --db-name",
        )

    def close(self) -> None:
        self.client.close()

    def delete(self, store: Store) -> None:
        self.client.delete_project(store.id)

    def for_preview(self, base_name: str) -> StoreProvider:
        """A preview's Postgres: branches of the base project `base_name`."""
        return NeonBranchStores(self, base_name)


class NeonBranchStores:
    """Neon's recommendation for previews (§1.4): a *branch* per preview in the base project.

    A store is the branch named exactly `spec.name` (e.g. `preview/pr-123`, named by
    preview/names.py) in the project named `project_name` (the base `authkit-db`), created off the
    default branch with a read_write endpoint. `delete` removes that branch only: never the
    project, never the default branch.
    """

    name: ClassVar[str] = "neon"
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.POSTGRES})
    # A Neon project or branch answers within seconds of its create.
    typical_ready: ClassVar[Mapping[Kind, float]] = {Kind.POSTGRES: 5.0}

    def __init__(self, projects: NeonStores, project_name: str) -> None:
        self.projects = projects
        self.client = projects.client
        self.project_name = project_name
        self._project: Store | None = None

    def region_for(self, render_region: str) -> str:
        return self.projects.region_for(render_region)

    def project(self) -> Store | None:
        """The base project, found by exact name; None while it does not exist."""
        if self._project is None:
            found = self.projects.find(Kind.POSTGRES, self.project_name)
            if len(found) > 1:
                ids = ", ".join(s.id for s in found)
                raise UsageError(
                    f"{len(found)} Neon projects are named {self.project_name!r} ({ids}): "
                    "preview branches need exactly one",
                    hint="delete the others, or pass --db-name with the base project's name",
                )
            self._project = found[0] if found else None
        return self._project

    def _require_project(self) -> Store:
        project = self.project()
        if project is None:
            raise UsageError(
                f"no Neon project named {self.project_name!r}: preview branches are made in the "
                "base project",
                hint="create it first with `authkit-setup render --service NAME --postgres neon` "
                "(without --preview), or pass --db-name with its name",
            )
        return project

    def _store(self, project: Store, branch: dict[str, Any]) -> Store:
        branch_id, name = required_fields(branch, "id", "name", what="Neon returned a branch")
        operations = [
            op for op in self.client.operations(project.id) if op.get("branch_id") == branch_id
        ]
        raw = {**branch, "project_id": project.id}
        return _postgres_store(self.name, branch_id, name, project.region, operations, raw)

    def find(self, kind: Kind, name: str) -> list[Store]:
        project = self.project()
        if project is None:
            return []
        branches = self.client.branches(project.id, search=name)
        return [self._store(project, b) for b in branches if b.get("name") == name]

    def create(self, spec: StoreSpec) -> Store:
        project = self._require_project()
        parent = next(
            (b for b in self.client.branches(project.id) if b.get("default") or b.get("primary")),
            None,
        )
        branch: dict[str, Any] = {"name": spec.name}
        if parent is not None and isinstance(parent.get("id"), str):
            branch["parent_id"] = parent["id"]
        try:
            created = self.client.create_branch(
                project.id, {"branch": branch, "endpoints": [{"type": "read_write"}]}
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
            # "branch already exists": an earlier (or concurrent) run made it; reuse it.
            found = self.find(spec.kind, spec.name)
            if not found:
                raise
            return found[0]
        for role in created.get("roles") or []:
            if isinstance(role, dict) and isinstance(role.get("password"), str):
                register(role["password"])
        body = expect_type(created.get("branch"), dict, "created branch")
        store = self._store(project, body)
        store.created = True
        return store

    def refresh(self, store: Store) -> Store:
        project = self._require_project()
        return store.refreshed(self._store(project, self.client.branch(project.id, store.id)))

    def connection_info(self, store: Store) -> ConnectionInfo:
        return _connection_info(
            self.client,
            str(store.raw.get("project_id") or self._require_project().id),
            database=self.projects.database,
            role=self.projects.role,
            branch_id=store.id,
            what=f"Neon branch {store.name} ({store.id})",
            hint="pass --database and --db-user with the base project's names",
        )

    def close(self) -> None:
        self.projects.close()

    def delete(self, store: Store) -> None:
        """Delete the preview branch; refuse the default branch (and a project) outright."""
        project_id = store.raw.get("project_id")
        if (
            not isinstance(project_id, str)
            or not store.id.startswith("br-")
            or store.raw.get("default")
            or store.raw.get("primary")
        ):
            raise UsageError(
                f"refusing to delete Neon {store.name} ({store.id}): not a preview branch"
            )
        self.client.delete_branch(project_id, store.id)
