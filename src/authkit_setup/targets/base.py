"""The one interface every place the connection URLs can go fits: `EnvTarget`.

`render` writes them into a Render service's environment (targets/render_service.py),
`provision` into a local .env file (targets/env_file.py); the pipeline (pipeline/run.py) is the
same for both and talks to its target only through this interface.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from authkit_setup.output import Output
    from authkit_setup.providers.base import ConnectionInfo

from authkit_setup.kinds import Kind

EnvAction = Literal["created", "updated", "unchanged", "removed", "absent", "kept"]


@dataclass(frozen=True)
class EnvChange:
    """What happened to one variable of a target (the JSON `env` entries)."""

    key: str
    action: EnvAction

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "action": self.action}


def predict(current: str | None, desired: str | None) -> EnvAction:
    """What writing `desired` over `current` will do."""
    if current is None:
        return "created"
    return "unchanged" if current == desired else "updated"


def urls_and_extras(
    infos: Mapping[Kind, ConnectionInfo], url: Callable[[ConnectionInfo], str | None]
) -> dict[str, str]:
    """Each kind's `url` under its variable, with the extras beside it (e.g. DIRECT_URL); a
    store without such a URL is left out."""
    values: dict[str, str] = {}
    for kind, info in infos.items():
        chosen = url(info)
        if chosen:
            values[kind.env_var] = chosen
            values.update(info.extra_env)
    return values


class EnvTarget(Protocol):
    """Where DATABASE_URL / REDIS_URL (and extras such as DIRECT_URL) are written."""

    def read(self, key: str) -> str | None:
        """The variable's value now (None: unset), read afresh."""
        ...

    def current(self, keys: list[str]) -> dict[str, str | None]:
        """The values the overwrite check compares (an empty value counts as unset)."""
        ...

    def conflict(self, key: str, value: str, store_name: str) -> str:
        """Why `key`, which holds `value`, is not simply replaced by `store_name`'s URL."""
        ...

    def url(self, info: ConnectionInfo) -> str | None:
        """Which of a store's URLs this target takes (internal for a service, else external)."""
        ...

    def values(self, infos: Mapping[Kind, ConnectionInfo], out: Output) -> dict[str, str]:
        """Every variable to write, by name: each kind's URL and the extras beside it."""
        ...

    def write(
        self, values: Mapping[str, str], current: dict[str, str | None], out: Output
    ) -> list[EnvChange]:
        """Write every value (one key at a time, nothing else touched); report each key."""
        ...
