"""Which store providers exist: name → kinds and a factory. A new provider is one module plus
one `register` call, made the same way by the built-ins (below) and by plug-ins.

A plug-in package registers from an entry point in the `authkit_setup.providers` group whose
object is a function taking no arguments that calls `register(...)`:

    [project.entry-points."authkit_setup.providers"]
    mycloud = "authkit_mycloud:register_providers"

A factory receives `ProviderSettings` (where to read credentials, the region override, the
database names) and returns a `StoreProvider`; it fails with `CredentialsError` (exit 3) before
anything is created when a credential is missing. Factories import their provider module when
called, so listing the registry stays cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from authkit_setup.errors import UsageError
from authkit_setup.providers.base import Kind, StoreProvider
from authkit_setup.settings import Setting, resolve

if TYPE_CHECKING:
    from authkit_setup.output import Output

ENTRY_POINT_GROUP = "authkit_setup.providers"


@dataclass(frozen=True)
class ProviderSettings:
    """What a factory gets. Credentials resolve flag > environment > .env (`setting`)."""

    out: Output
    flags: Mapping[str, str | None] = field(default_factory=dict)  # by env-var name
    env_file: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None  # --provider-region: the provider's own region name
    database: str = "authkit"
    user: str = "authkit_user"
    postgres_version: str = "16"

    def setting(self, name: str) -> Setting:
        return resolve(self.flags.get(name), name, dict(self.env_file))


Factory = Callable[[ProviderSettings], StoreProvider]


@dataclass(frozen=True)
class ProviderEntry:
    name: str
    kinds: frozenset[Kind]
    # None: the provider needs a Render service and is built by `authkit-setup render` itself.
    factory: Factory | None
    summary: str = ""

    def build(self, settings: ProviderSettings) -> StoreProvider:
        if self.factory is None:
            raise UsageError(
                f"{self.name} stores belong to a Render service: use "
                f"`authkit-setup render --service NAME`"
            )
        return self.factory(settings)


_entries: dict[str, ProviderEntry] = {}
_lock = threading.Lock()
_loaded = False
load_errors: list[str] = []  # plug-ins that failed to load; commands print them as warnings


def register(
    name: str, *, kinds: frozenset[Kind], factory: Factory | None, summary: str = ""
) -> None:
    """Add (or replace) a provider. `name` is what users pass to --postgres / --redis."""
    key = name.strip().lower()
    if not key or not kinds:
        raise ValueError("a provider needs a name and at least one kind")
    _entries[key] = ProviderEntry(key, frozenset(kinds), factory, summary)


def _load() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        from authkit_setup import providers as builtins

        builtins.register_builtin_providers()
        _load_entry_points()


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()()
        except Exception as exc:  # a broken plug-in must not break the built-ins
            load_errors.append(
                f"provider plug-in {entry.name!r} failed to load: {type(exc).__name__}: {exc}"
            )


def entries() -> list[ProviderEntry]:
    _load()
    return sorted(_entries.values(), key=lambda e: e.name)


def names_for(kind: Kind) -> list[str]:
    return [e.name for e in entries() if kind in e.kinds]


def get(name: str, kind: Kind) -> ProviderEntry:
    """The provider called `name` for `kind`, or a usage error listing the choices."""
    _load()
    flag = "--postgres" if kind is Kind.POSTGRES else "--redis"
    entry = _entries.get(name.strip().lower())
    if entry is None or kind not in entry.kinds:
        raise UsageError(
            f"{flag} {name!r} is not a {kind.value} provider",
            hint=f"use one of {', '.join(names_for(kind))}",
        )
    return entry
