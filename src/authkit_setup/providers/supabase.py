"""Supabase: a project per Postgres store (facts: shared/reference/neon-supabase-upstash.md §2).

- A store is a Supabase *project* in one organization; `GET /v1/projects` lists every project
  the token sees, so it is filtered on name + organization_slug here.
- Ready when the project is `ACTIVE_HEALTHY` and the pooler config has a PRIMARY entry (it may
  be empty for a moment after the project is up: UNCONFIRMED, so it is polled).
- Supabase never returns the database password: we choose it (`db_pass`) at create time. It
  then lives only in the DATABASE_URL / DIRECT_URL we write. A re-run takes it back from those
  URLs (`recover_password`) or from --supabase-db-password / SUPABASE_DB_PASSWORD.
- DATABASE_URL is the Supavisor transaction pooler (port 6543) with `pgbouncer=true` (Prisma:
  no named prepared statements); DIRECT_URL the session pooler (same host, port 5432), for
  migrations. The direct host db.<ref>.supabase.co is IPv6-only, so it is not used.
- 429 is retried after `X-RateLimit-Reset` seconds (http.py).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from authkit_setup import vault
from authkit_setup.errors import BadResponseError, CredentialsError, UsageError
from authkit_setup.http import ApiClient, required_fields
from authkit_setup.providers.base import ConnectionInfo, Kind, Readiness, Store, StoreSpec
from authkit_setup.providers.regions import pick_region, plain_aws
from authkit_setup.providers.urls import rebuild, url_password
from authkit_setup.secrets import register

CREDENTIALS_HINT = (
    "pass --supabase-access-token or set SUPABASE_ACCESS_TOKEN; create a token at "
    "supabase.com/dashboard/account/tokens"
)
REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-east-1",
    "ap-southeast-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "eu-central-1",
    "eu-central-2",
    "ca-central-1",
    "ap-south-1",
    "sa-east-1",
)
READY = "ACTIVE_HEALTHY"
# supabase/terraform-provider-supabase internal/provider/utils.go waitForProjectActive.
FAILED = frozenset(
    {"GOING_DOWN", "INIT_FAILED", "REMOVED", "INACTIVE", "PAUSE_FAILED", "RESTORE_FAILED"}
)
PASSWORD_PLACEHOLDER = "[YOUR-PASSWORD]"
TRANSACTION_PORT = 6543
SESSION_PORT = 5432
PASSWORD_LENGTH = 24  # the Supabase CLI generates 16 from [A-Za-z0-9]; URL-safe either way


def generate_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(PASSWORD_LENGTH))


class SupabaseClient(ApiClient):
    provider = "Supabase"
    credentials_hint = CREDENTIALS_HINT

    def organizations(self) -> list[dict[str, Any]]:
        return self.get_objects("/v1/organizations", "organizations")

    def projects(self) -> list[dict[str, Any]]:
        return self.get_objects("/v1/projects", "projects")

    def project(self, ref: str) -> dict[str, Any]:
        return self.get_object(f"/v1/projects/{ref}", "project")

    def create_project(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.create("/v1/projects", body, "created project")

    def pooler_config(self, ref: str) -> list[dict[str, Any]]:
        return self.get_objects(f"/v1/projects/{ref}/config/database/pooler", "pooler config")

    def delete_project(self, ref: str) -> None:
        # Supabase answers the deleted project (JSON), unlike the other providers.
        self.delete_if_present(f"/v1/projects/{ref}", expect_json=True)


def primary_pooler(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The PRIMARY database's pooler entry (there may be READ_REPLICA entries too)."""
    for entry in entries:
        if entry.get("database_type") == "PRIMARY":
            return entry
    return None


def _pooler_base(entry: dict[str, Any]) -> str:
    """The pooler URL without the password, from `connection_string` or the separate fields."""
    raw = entry.get("connection_string") or entry.get("connectionString")
    if isinstance(raw, str) and "://" in raw:
        return raw.replace(f":{PASSWORD_PLACEHOLDER}", "").replace(PASSWORD_PLACEHOLDER, "")
    try:
        user, host = str(entry["db_user"]), str(entry["db_host"])
        port, name = int(entry["db_port"]), str(entry.get("db_name") or "postgres")
    except (KeyError, TypeError, ValueError):
        raise BadResponseError(
            "Supabase returned a pooler config without a connection string"
        ) from None
    return f"postgresql://{user}@{host}:{port}/{name}"


def database_urls(entry: dict[str, Any], password: str) -> tuple[str, str]:
    """(DATABASE_URL, DIRECT_URL) from the PRIMARY pooler entry and the database password.

    Never built from the region: the `aws-N-` shard is project-specific (a wrong one gives
    "Tenant or user not found"). Session mode is the same host on port 5432 (the Supabase CLI
    rewrites :6543 to :5432 for migrations, link.go). `sslmode=require` is safe on Supavisor.
    """
    base = _pooler_base(entry)
    try:
        port = urlsplit(base).port
    except ValueError:
        raise BadResponseError(
            "Supabase returned a pooler connection string with a bad port"
        ) from None
    transaction = rebuild(
        base, password=password, query={"sslmode": "require", "pgbouncer": "true"}
    )
    session_port = SESSION_PORT if port == TRANSACTION_PORT else port
    session = rebuild(base, password=password, port=session_port, query={"sslmode": "require"})
    return transaction, session


class SupabaseStores:
    """Supabase projects behind the StoreProvider interface (Postgres only)."""

    name: ClassVar[str] = "supabase"
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.POSTGRES})
    # A new Supabase project takes minutes (COMING_UP, then ACTIVE_HEALTHY).
    typical_ready: ClassVar[Mapping[Kind, float]] = {Kind.POSTGRES: 120.0}

    def __init__(
        self,
        client: SupabaseClient,
        *,
        org: str | None = None,
        region: str | None = None,
        db_password: str | None = None,
        on_notice: Callable[[str], None] | None = None,
        password_factory: Callable[[], str] = generate_password,
    ) -> None:
        self.client = client
        self._org = org
        self._org_slug: str | None = None
        self.region_override = region
        self.db_password = db_password
        self._notice = on_notice or (lambda message: None)
        self._password_factory = password_factory
        self._passwords: dict[str, str] = {}  # ref -> the password we chose for it
        self._sent: dict[str, str] = {}  # name -> password of a create that may have gone through
        self._candidate_urls: list[str] = []
        # `status` / `teardown` only look projects up: an unknown password is no reason to stop.
        self.password_needed = True
        if db_password:
            register(db_password)

    def region_for(self, render_region: str) -> str:
        return pick_region(render_region, self.region_override, REGIONS, "Supabase", plain_aws)

    @property
    def org_slug(self) -> str:
        """The organization's slug: --supabase-org (slug or name), or the only one there is."""
        if self._org_slug is None:
            orgs = self.client.organizations()
            listed = ", ".join(f"{o.get('slug')} ({o.get('name')})" for o in orgs) or "none"
            if self._org:
                wanted = self._org.strip().lower()
                matches = [
                    o
                    for o in orgs
                    if str(o.get("slug", "")).lower() == wanted
                    or str(o.get("name", "")).lower() == wanted
                ]
                if len(matches) != 1:
                    raise UsageError(
                        f"--supabase-org {self._org!r} is not one of your Supabase organizations",
                        hint=f"use a slug: {listed}",
                    )
                self._org_slug = str(matches[0]["slug"])
            elif len(orgs) == 1:
                self._org_slug = str(orgs[0]["slug"])
            else:
                raise CredentialsError(
                    "which Supabase organization? pass --supabase-org or set SUPABASE_ORG",
                    hint=f"your organizations: {listed}",
                )
        return self._org_slug

    def recover_password(self, urls: Iterable[str]) -> None:
        """Remember URLs written earlier; `connection_info` takes the password from the one
        that points at the project's pooler."""
        self._candidate_urls.extend(u for u in urls if u)

    def find(self, kind: Kind, name: str) -> list[Store]:
        slug = self.org_slug
        found = [
            p
            for p in self.client.projects()
            if p.get("name") == name
            and (p.get("organization_slug") or p.get("organization_id")) == slug
        ]
        stores = [self._store(p) for p in found]
        if (
            stores
            and self.password_needed
            and name not in self._sent
            and not self.db_password
            and not self._candidate_urls
            and vault.recall(self._vault_key(name)) is None
        ):
            # Reusing a project we cannot log in to: say so now, before anything is created.
            raise self._password_unknown(stores[0])
        return stores

    def _store(self, project: dict[str, Any], *, check_pooler: bool = True) -> Store:
        ref, name = required_fields(
            project, "ref" if "ref" in project else "id", "name", what="Supabase returned a project"
        )
        status = str(project.get("status") or "UNKNOWN")
        readiness = Readiness.PENDING
        if status in FAILED:
            readiness = Readiness.FAILED
        elif status == READY:
            if not check_pooler or primary_pooler(self.client.pooler_config(ref)) is not None:
                readiness = Readiness.READY
            else:
                status = f"{READY}, pooler not ready yet"
        return Store(
            provider=self.name,
            kind=Kind.POSTGRES,
            id=ref,
            name=name,
            region=str(project.get("region") or ""),
            plan="",
            status=status,
            readiness=readiness,
            created_at=project.get("created_at"),
            raw=project,
        )

    def create(self, spec: StoreSpec) -> Store:
        password = self.db_password or self._password_factory()
        register(password)
        self._sent[spec.name] = password  # an ambiguous failure may still have created it
        if not self.db_password:
            # Saved before the create: a run stopped after it could not learn the password again.
            vault.remember(self._vault_key(spec.name), password)
        body = {
            "name": spec.name,
            "organization_slug": self.org_slug,
            "db_pass": password,
            # `region` is marked deprecated but is what the Supabase CLI still sends.
            "region": spec.region,
        }
        project = self.client.create_project(body)
        store = self._store(project, check_pooler=False)
        store.created = True
        self._passwords[store.id] = password
        if not self.db_password:
            self._notice(
                f"Supabase never returns the database password: authkit-setup generated one for "
                f"{spec.name} ({store.id}) and stores it only in the DATABASE_URL and DIRECT_URL "
                "it writes (and, until then, in authkit-setup's state folder). Keep them; "
                "elsewhere pass it with --supabase-db-password or SUPABASE_DB_PASSWORD."
            )
        return store

    def refresh(self, store: Store) -> Store:
        return store.refreshed(self._store(self.client.project(store.id)))

    def connection_info(self, store: Store) -> ConnectionInfo:
        entry = primary_pooler(self.client.pooler_config(store.id))
        if entry is None:
            raise BadResponseError(
                f"Supabase lists no PRIMARY pooler for {store.name} ({store.id})",
                hint="wait a minute and run the same command again",
            )
        password = self._password_for(store, entry)
        app_url, direct_url = database_urls(entry, password)
        return ConnectionInfo(
            app_url=app_url, external_url=app_url, extra_env={"DIRECT_URL": direct_url}
        )

    def _password_for(self, store: Store, entry: dict[str, Any]) -> str:
        if store.id in self._passwords:
            return self._passwords[store.id]
        if self.db_password:
            return self.db_password
        if store.name in self._sent:
            return self._sent[store.name]
        try:
            pooler = urlsplit(_pooler_base(entry))
            user, host = pooler.username, pooler.hostname
        except ValueError:
            user = host = None
        for url in self._candidate_urls:
            try:
                parts = urlsplit(url)
                same = (parts.username, parts.hostname) == (user, host)
            except ValueError:
                continue
            password = url_password(url)
            if same and password:
                register(password)
                return password
        saved = vault.recall(self._vault_key(store.name))
        if saved:
            return saved
        raise self._password_unknown(store)

    def _vault_key(self, name: str) -> str:
        return f"supabase/{self.org_slug}/{name}"

    def _password_unknown(self, store: Store) -> CredentialsError:
        return CredentialsError(
            f"Supabase project {store.name} ({store.id}) exists, but its database password is "
            "unknown (Supabase never returns it): pass --supabase-db-password or set "
            "SUPABASE_DB_PASSWORD",
            hint="authkit-setup stores the password it generates only in the DATABASE_URL / "
            "DIRECT_URL it writes; if those are gone, reset it in the Supabase dashboard "
            "(Project Settings → Database) and pass the new one",
        )

    def close(self) -> None:
        self.client.close()

    def delete(self, store: Store) -> None:
        self.client.delete_project(store.id)
        vault.forget(self._vault_key(store.name))
