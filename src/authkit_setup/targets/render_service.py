"""A Render service's environment as the target: its internal URLs, one key at a time.

Never the bulk PUT (it replaces every variable). Each key is reported as created, updated or
unchanged; every other variable stays exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from authkit_setup.kinds import Kind
from authkit_setup.output import Output
from authkit_setup.providers.base import ConnectionInfo
from authkit_setup.providers.render import RenderClient
from authkit_setup.secrets import mask_url
from authkit_setup.targets.base import EnvChange, predict, urls_and_extras


class ServiceEnv:
    """DATABASE_URL / REDIS_URL of one Render service."""

    def __init__(self, client: RenderClient, *, service_id: str, service_name: str) -> None:
        self.client = client
        self.service_id = service_id
        self.service_name = service_name

    def read(self, key: str) -> str | None:
        return self.client.env_var(self.service_id, key)

    def current(self, keys: list[str]) -> dict[str, str | None]:
        return {key: self.read(key) for key in keys}

    def conflict(self, key: str, value: str, store_name: str) -> str:
        return f"{self.service_name} already has {key} pointing at {_where(value)}, not at {store_name}"

    def url(self, info: ConnectionInfo) -> str | None:
        return info.app_url

    def values(self, infos: Mapping[Kind, ConnectionInfo], out: Output) -> dict[str, str]:
        return urls_and_extras(infos, self.url)

    def write(
        self, values: Mapping[str, str], current: dict[str, str | None], out: Output
    ) -> list[EnvChange]:
        for key in values:  # extras (DIRECT_URL) were not needed by the plan: read them now
            if key not in current:
                current[key] = self.read(key)
        changes = []
        for key, value in values.items():
            action = predict(current.get(key), value)
            if action != "unchanged":
                self.client.put_env_var(self.service_id, key, value)
            out.step(f"{key}: {action} ({mask_url(value)})")
            changes.append(EnvChange(key, action))
        return changes


def _where(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}{parts.path or ''} ({mask_url(url)})"
    except ValueError:
        return mask_url(url)
