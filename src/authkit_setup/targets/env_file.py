"""A local .env file as the target: the stores' external URLs (atomic, mode 600, every other
line kept), for `provision` and for `render --env-file`. Without a path nothing is written (the
URLs are printed instead)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from authkit_setup.kinds import Kind
from authkit_setup.output import Output
from authkit_setup.providers.base import ConnectionInfo
from authkit_setup.secrets import mask_url
from authkit_setup.settings import read_env_file
from authkit_setup.targets.base import EnvChange, urls_and_extras


class EnvFile:
    """DATABASE_URL / REDIS_URL (+ DIRECT_URL) in a .env file at `path` (None: no file)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._values: dict[str, str] | None = None

    def _read_all(self) -> dict[str, str]:
        if self._values is None:
            self._values = read_env_file(self.path) if self.path is not None else {}
        return self._values

    def read(self, key: str) -> str | None:
        return self._read_all().get(key)

    def current(self, keys: list[str]) -> dict[str, str | None]:
        # An empty value counts as unset.
        return {key: value for key, value in self._read_all().items() if value}

    def conflict(self, key: str, value: str, store_name: str) -> str:
        return f"{self.path} already has {key}={mask_url(value)}, not {store_name}"

    def url(self, info: ConnectionInfo) -> str | None:
        return info.external_url

    def values(self, infos: Mapping[Kind, ConnectionInfo], out: Output) -> dict[str, str]:
        """Each store's external URL (and extras such as DIRECT_URL); a URL this machine cannot
        connect through (an allow list) is written with a warning."""
        for kind, info in infos.items():
            if self.path is not None and info.external_url and not info.external_reachable:
                out.warn(f"{self.path}: {kind.env_var} is written but {info.unreachable_reason}")
        return urls_and_extras(infos, self.url)

    def write(
        self, values: Mapping[str, str], current: dict[str, str | None], out: Output
    ) -> list[EnvChange]:
        """Write the values (atomic, mode 600, rest kept); nothing without a path."""
        from authkit_setup.envfile import say_kept_out_of_git, update_env_file

        if self.path is None:
            return []
        actions = update_env_file(self.path, values)
        for key, action in actions.items():
            out.step(f"{self.path}: {key} {action}")
        if values:
            say_kept_out_of_git(self.path, out)
        return [EnvChange(key, action) for key, action in actions.items()]
