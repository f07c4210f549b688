"""Service step: the Render service (by srv-ID or exact name), its region and its workspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authkit_setup.errors import NotFoundError, UsageError
from authkit_setup.output import Output
from authkit_setup.providers.render import SERVICE_ID, RenderClient

WORKSPACE_ID_PREFIXES = ("tea-", "usr-", "own-")


@dataclass(frozen=True)
class ServiceRef:
    id: str
    name: str
    region: str
    owner_id: str
    type: str
    plan: str
    raw: dict[str, Any]

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "region": self.region}

    @property
    def is_free(self) -> bool:
        return self.plan == "free"


def resolve_workspace(client: RenderClient, workspace: str) -> str:
    if workspace.startswith(WORKSPACE_ID_PREFIXES):
        return workspace
    owners = list(client.owners())
    matches = [o for o in owners if str(o.get("name", "")).lower() == workspace.lower()]
    if len(matches) == 1:
        return str(matches[0]["id"])
    names = ", ".join(f"{o.get('name')} ({o.get('id')})" for o in owners) or "none"
    if not matches:
        raise UsageError(f"--workspace {workspace!r}: no such workspace; yours: {names}")
    raise UsageError(
        f"--workspace {workspace!r} matches several workspaces: {names}; pass the tea-… ID"
    )


def resolve_service(client: RenderClient, ref: str, workspace: str | None) -> ServiceRef:
    ref = ref.strip()
    if not ref:
        raise UsageError("--service is empty: pass the service's name or srv-… ID")
    owner_id = resolve_workspace(client, workspace) if workspace else None
    if SERVICE_ID.match(ref):
        try:
            service = client.service(ref)
        except NotFoundError:
            raise UsageError(
                f"no service {ref} is visible to this API key",
                hint="check the ID in the dashboard URL, and that the key belongs to the service's workspace",
            ) from None
    else:
        matches = client.services_named(ref, owner_id)
        if not matches:
            candidates = sorted({str(s.get("name")) for s in client.services(owner_id)})
            listed = ", ".join(candidates[:20]) + (" …" if len(candidates) > 20 else "")
            raise UsageError(
                f"no service named {ref!r}" + (f" in workspace {owner_id}" if owner_id else ""),
                hint=f"services visible to this key: {listed or 'none'}",
            )
        if len(matches) > 1:
            listed = ", ".join(
                f"{s.get('id')} (workspace {s.get('ownerId')}, {(s.get('serviceDetails') or {}).get('region')})"
                for s in matches
            )
            raise UsageError(
                f"{len(matches)} services are named {ref!r}: {listed}",
                hint="pass the srv-… ID, or --workspace to pick one",
            )
        service = matches[0]
    details = service.get("serviceDetails") or {}
    region = details.get("region")
    if not region:
        raise UsageError(
            f"service {service.get('name')!r} has no region (a {service.get('type')}): "
            "AuthKit's API must be a web service, private service or worker"
        )
    return ServiceRef(
        id=str(service["id"]),
        name=str(service.get("name")),
        region=str(region),
        owner_id=owner_id or str(service.get("ownerId")),
        type=str(service.get("type")),
        plan=str(details.get("plan") or ""),
        raw=service,
    )


def find_service(
    client: RenderClient, ref: str, workspace: str | None, region: str | None, out: Output
) -> ServiceRef:
    """The service step of `render`: the service decides the region every store goes to."""
    service = resolve_service(client, ref, workspace)
    out.step(f"service {service.name} ({service.id}) in {service.region}")
    if region and region != service.region:
        raise UsageError(
            f"--region {region} does not match the service's region {service.region}: "
            "internal URLs only work within one region",
            hint=f"drop --region, or pass --region {service.region}",
        )
    return service
