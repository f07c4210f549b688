"""Blueprint export: the same setup as a `render.yaml` (render-api.md §10).

Declares authkit-db, authkit-redis and the service wired to them with `fromDatabase` /
`fromService`, either from what exists on Render (`--service`) or from the defaults `render`
would create. Blueprint YAML spells plans and policies with hyphens where the API uses
underscores (`basic_256mb` → `basic-256mb`, `allkeys_lru` → `allkeys-lru`, §0.5), and instance
types `pro plus` / `pro max` / `pro ultra` with a space (Render's Blueprint spec).

The YAML is written by `to_yaml` with PyYAML's `safe_dump`, which quotes every string a YAML
parser could read as something else (`16`, `yes`, `a: b`, `#x`, newlines in commands). PyYAML is
imported there, so only `blueprint` loads it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authkit_setup.errors import UsageError
from authkit_setup.output import Output
from authkit_setup.pipeline.service import ServiceRef
from authkit_setup.providers.base import Kind, Store, StoreSpec
from authkit_setup.providers.render import RenderClient, RenderStores

DEFAULT_DB_NAME = "authkit-db"
DEFAULT_DATABASE = "authkit"
DEFAULT_DB_USER = "authkit_user"
DEFAULT_REDIS_NAME = "authkit-redis"
DEFAULT_PLAN = "free"
DEFAULT_REGION = "oregon"
DEFAULT_POSTGRES_VERSION = "16"
DEFAULT_POLICY = "noeviction"
PLACEHOLDER_SERVICE = "authkit-api"

# API service type → Blueprint `type`.
SERVICE_TYPES = {
    "web_service": "web",
    "private_service": "pserv",
    "background_worker": "worker",
    "cron_job": "cron",
}
DOCKER_RUNTIMES = frozenset({"docker", "image"})


# -- spelling: API → Blueprint ------------------------------------------------------------------
def postgres_plan_yaml(plan: str) -> str:
    """`basic_256mb` → `basic-256mb`; the legacy `pro_plus` is `pro plus` in YAML."""
    return "pro plus" if plan == "pro_plus" else plan.replace("_", "-")


def instance_plan_yaml(plan: str) -> str:
    """Service and Key Value instance types: `pro_plus` → `pro plus` (Blueprint spec)."""
    return plan.replace("_", " ")


def policy_yaml(policy: str) -> str:
    return policy.replace("_", "-")


def _allow_list(raw: Any) -> list[dict[str, Any]]:
    # An empty allow list comes back as null (§0.8); [] in YAML means internal only.
    if not isinstance(raw, list):
        return []
    entries = []
    for entry in raw:
        if isinstance(entry, dict) and entry.get("cidrBlock"):
            item: dict[str, Any] = {"source": str(entry["cidrBlock"])}
            if entry.get("description"):
                item["description"] = str(entry["description"])
            entries.append(item)
    return entries


# -- the document -------------------------------------------------------------------------------
def database_entry(name: str, region: str, store: Store | None) -> dict[str, Any]:
    if store is None:
        return {
            "name": name,
            "databaseName": DEFAULT_DATABASE,
            "user": DEFAULT_DB_USER,
            "plan": postgres_plan_yaml(DEFAULT_PLAN),
            "region": region,
            "postgresMajorVersion": DEFAULT_POSTGRES_VERSION,
            "ipAllowList": [],
        }
    raw = store.raw
    return {
        "name": store.name,
        # The real name: Render may have added a suffix to the requested one (§0.4).
        "databaseName": str(raw.get("databaseName") or DEFAULT_DATABASE),
        "user": str(raw.get("databaseUser") or DEFAULT_DB_USER),
        "plan": postgres_plan_yaml(store.plan or DEFAULT_PLAN),
        "region": store.region or region,
        "postgresMajorVersion": str(raw.get("version") or DEFAULT_POSTGRES_VERSION),
        "ipAllowList": _allow_list(raw.get("ipAllowList")),
    }


def key_value_entry(name: str, region: str, store: Store | None) -> dict[str, Any]:
    if store is None:
        return {
            "type": "keyvalue",
            "name": name,
            "plan": instance_plan_yaml(DEFAULT_PLAN),
            "region": region,
            "maxmemoryPolicy": policy_yaml(DEFAULT_POLICY),
            "ipAllowList": [],  # required for keyvalue in Blueprints
        }
    options = store.raw.get("options") or {}
    policy = options.get("maxmemoryPolicy") if isinstance(options, dict) else None
    return {
        "type": "keyvalue",
        "name": store.name,
        "plan": instance_plan_yaml(store.plan or DEFAULT_PLAN),
        "region": store.region or region,
        "maxmemoryPolicy": policy_yaml(str(policy or DEFAULT_POLICY)),
        "ipAllowList": _allow_list(store.raw.get("ipAllowList")),
    }


def wiring(db_name: str, redis_name: str) -> list[dict[str, Any]]:
    return [
        {
            "key": "DATABASE_URL",
            "fromDatabase": {"name": db_name, "property": "connectionString"},
        },
        {
            "key": "REDIS_URL",
            "fromService": {"name": redis_name, "type": "keyvalue", "property": "connectionString"},
        },
    ]


def placeholder_service(region: str, db_name: str, redis_name: str) -> dict[str, Any]:
    return {
        "type": "web",
        "name": PLACEHOLDER_SERVICE,
        "runtime": "node",
        "region": region,
        "plan": DEFAULT_PLAN,
        # The setup guide's build command: install, migrate, build (free instances have no
        # pre-deploy command).
        "buildCommand": "pnpm install && pnpm db:push && pnpm build",
        "startCommand": "pnpm start",
        "envVars": wiring(db_name, redis_name),
    }


def service_entry(service: ServiceRef, db_name: str, redis_name: str) -> dict[str, Any]:
    details = service.raw.get("serviceDetails") or {}
    env_specific = details.get("envSpecificDetails") or {}
    runtime = str(details.get("runtime") or details.get("env") or "")

    def text(source: Mapping[str, Any], key: str) -> str | None:
        value = source.get(key)
        return value if isinstance(value, str) and value else None

    entry: dict[str, Any] = {
        "type": SERVICE_TYPES.get(service.type, "web"),
        "name": service.name,
    }
    if runtime:
        entry["runtime"] = runtime
    entry["region"] = service.region
    if service.plan:
        entry["plan"] = instance_plan_yaml(service.plan)
    if service.type == "cron_job" and text(details, "schedule"):
        entry["schedule"] = text(details, "schedule")
    if runtime in DOCKER_RUNTIMES:
        if runtime == "image" and text(service.raw, "imagePath"):
            entry["image"] = {"url": text(service.raw, "imagePath")}
        for key in ("dockerfilePath", "dockerContext", "dockerCommand"):
            if text(env_specific, key):
                entry[key] = text(env_specific, key)
    else:
        for key in ("buildCommand", "startCommand"):
            if text(env_specific, key):
                entry[key] = text(env_specific, key)
    # GET shows preDeployCommand inside envSpecificDetails (§7).
    pre_deploy = text(env_specific, "preDeployCommand") or text(details, "preDeployCommand")
    if pre_deploy:
        entry["preDeployCommand"] = pre_deploy
    entry["envVars"] = wiring(db_name, redis_name)
    return entry


@dataclass
class Blueprint:
    document: dict[str, Any]
    source: str  # "service" or "defaults"
    service: ServiceRef | None = None
    stores: dict[str, str | None] = field(default_factory=lambda: {"postgres": None, "redis": None})
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None  # the --output file it was written to; None: printed on stdout

    @property
    def yaml(self) -> str:
        if self.service is not None:
            origin = f"from Render service {self.service.name} ({self.service.id})"
        else:
            origin = f"with defaults; {PLACEHOLDER_SERVICE} is a placeholder: set its runtime and commands"
        header = [
            f"render.yaml written by authkit-setup {origin}",
            "Validate it with: render blueprints validate render.yaml",
        ]
        return to_yaml(self.document, comments=header)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "source": self.source,
            "service": self.service.to_json() if self.service else None,
            "stores": self.stores,
            "blueprint": self.document,
            "yaml": self.yaml,
            "warnings": self.warnings,
            "path": None if self.path is None else str(self.path),
        }


def default_blueprint(
    *, db_name: str = DEFAULT_DB_NAME, redis_name: str = DEFAULT_REDIS_NAME
) -> Blueprint:
    region = DEFAULT_REGION
    return Blueprint(
        document={
            "databases": [database_entry(db_name, region, None)],
            "services": [
                key_value_entry(redis_name, region, None),
                placeholder_service(region, db_name, redis_name),
            ],
        },
        source="defaults",
    )


def _find(client: RenderClient, service: ServiceRef, kind: Kind, name: str) -> Store | None:
    from authkit_setup.pipeline.plan import ensure_single

    spec = StoreSpec(kind=kind, name=name, region=service.region, plan="")
    found = ensure_single(RenderStores(client, service.owner_id).find(kind, name), spec)
    if found is None:
        return None
    # The full record: list items may leave out details such as Key Value's options.
    from authkit_setup.providers.render import store_from_api

    return store_from_api(kind, client.store(kind, found.id))


def blueprint_from_render(
    client: RenderClient,
    service_ref: str,
    workspace: str | None,
    out: Output,
    *,
    db_name: str = DEFAULT_DB_NAME,
    redis_name: str = DEFAULT_REDIS_NAME,
) -> Blueprint:
    """Read the service and, where they exist, its stores; defaults (in its region) otherwise."""
    from authkit_setup.pipeline.service import resolve_service

    service = resolve_service(client, service_ref, workspace)
    out.step(f"service {service.name} ({service.id}) in {service.region}")
    postgres = _find(client, service, Kind.POSTGRES, db_name)
    key_value = _find(client, service, Kind.REDIS, redis_name)
    warnings = []
    for name, store in ((db_name, postgres), (redis_name, key_value)):
        if store is None:
            out.step(f"{name}: not found, declared with the defaults")
        else:
            out.step(f"{name}: {store.id} ({store.plan}, {store.region})")
            if store.region != service.region:
                warnings.append(
                    f"{name} is in {store.region} but {service.name} runs in {service.region}: "
                    "internal URLs only work within one region"
                )
    if postgres is not None and postgres.plan in ("starter", "standard", "pro", "pro_plus"):
        warnings.append(
            f"{db_name} is on the legacy plan {postgres.plan}: Render rejects it for new "
            "databases, so a Blueprint that creates one needs e.g. basic-256mb"
        )
    if service.is_free and service.type != "web_service":
        warnings.append(f"{service.name}: free instances exist only for web services")
    for warning in warnings:
        out.warn(warning)
    return Blueprint(
        document={
            "databases": [database_entry(db_name, service.region, postgres)],
            "services": [
                key_value_entry(redis_name, service.region, key_value),
                service_entry(service, db_name, redis_name),
            ],
        },
        source="service",
        service=service,
        stores={
            "postgres": postgres.id if postgres else None,
            "redis": key_value.id if key_value else None,
        },
        warnings=warnings,
    )


def write_blueprint(path: Path, text: str, *, force: bool) -> None:
    """Write `text` to `path` atomically; an existing file only with `force`."""
    if path.is_dir():
        raise UsageError(f"--output {path}: is a directory; name the file, e.g. {path}/render.yaml")
    if path.exists() and not force:
        raise UsageError(
            f"--output {path} already exists",
            hint="pass --force to overwrite it, or choose another file",
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--output {path}: the folder {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot be written ({exc.strerror})") from None


# -- YAML ----------------------------------------------------------------------------------------
# Characters kept in a header comment (a comment cannot escape anything, so the rest is dropped).
_PRINTABLE = re.compile(
    "[\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def _comment(text: str) -> str:
    return "".join(ch for ch in " ".join(text.split()) if _PRINTABLE.match(ch))


def to_yaml(document: Mapping[str, Any], *, comments: list[str] | None = None) -> str:
    """Block-style YAML for `document` (keys in their order); top-level sections separated by a
    blank line, after `comments` as `# ` lines.

    `allow_unicode=False`: PyYAML writes some Unicode line breaks (NEL) raw inside quoted
    scalars, where a reader folds them; escaped, every string reads back as written.
    """
    import yaml

    lines = [f"# {_comment(c)}\n" for c in comments or []]
    for key, value in document.items():
        if lines:
            lines.append("\n")
        lines.append(
            yaml.safe_dump(
                {key: value},
                sort_keys=False,
                default_flow_style=False,
                allow_unicode=False,
                width=1_000_000,  # no folding: a long build command stays on one line
            )
        )
    return "".join(lines)


@dataclass(frozen=True)
class BlueprintRequest:
    """`authkit-setup blueprint`'s options, as given."""

    service: str | None = None
    db_name: str = "authkit-db"
    redis_name: str = "authkit-redis"
    output: Path | None = None
    force: bool = False
    workspace: str | None = None
    api_key: str | None = None


def make_blueprint(request: BlueprintRequest, out: Output) -> Blueprint:
    """The Blueprint (from the service if one is named), written to --output if given (then
    its `path` says where), else for the command to print."""
    from authkit_setup.inputs import require_nonempty
    from authkit_setup.secrets import redact

    r = request
    require_nonempty(("--db-name", r.db_name), ("--redis-name", r.redis_name))
    if r.output is not None and r.output.exists() and not r.force:
        # Checked before any API call, and again when writing.
        raise UsageError(
            f"--output {r.output} already exists",
            hint="pass --force to overwrite it, or choose another file",
        )
    if r.service is None:
        result = default_blueprint(db_name=r.db_name, redis_name=r.redis_name)
    else:
        from authkit_setup.providers.clients import render_client

        with render_client(out, api_key=r.api_key) as client:
            result = blueprint_from_render(
                client, r.service, r.workspace, out, db_name=r.db_name, redis_name=r.redis_name
            )
    text = result.yaml
    if r.output is not None:
        write_blueprint(r.output, text, force=r.force)
        result.path = r.output
        out.success(f"wrote {r.output}")
    elif redact(text) != text:
        out.warn(
            "a value (e.g. a build command) looks like a secret and is masked below; "
            "use --output FILE to write it as it is"
        )
    return result
