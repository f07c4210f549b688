"""Env step: write DATABASE_URL / REDIS_URL into the service one key at a time.

Never the bulk PUT (it replaces every variable). Each key is reported as created, updated or
unchanged; every other variable stays exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from authkit_setup.output import Output
from authkit_setup.providers.render import RenderClient
from authkit_setup.secrets import mask_url

EnvAction = Literal["created", "updated", "unchanged", "removed"]


@dataclass(frozen=True)
class EnvChange:
    key: str
    action: EnvAction

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "action": self.action}


def predict(current: str | None, desired: str | None) -> EnvAction:
    if current is None:
        return "created"
    return "unchanged" if current == desired else "updated"


def write_service_env(
    client: RenderClient,
    service_id: str,
    desired: dict[str, str],
    current: dict[str, str | None],
    out: Output,
) -> list[EnvChange]:
    changes = []
    for key, value in desired.items():
        action = predict(current.get(key), value)
        if action != "unchanged":
            client.put_env_var(service_id, key, value)
        out.step(f"{key}: {action} ({mask_url(value)})")
        changes.append(EnvChange(key, action))
    return changes
