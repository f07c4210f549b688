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
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from authkit_setup.errors import (
    AuthkitError,
    MissingCredential,
    MissingCredentialsError,
    UsageError,
)
from authkit_setup.providers.base import NO_TRAITS, Kind, StoreProvider, Traits
from authkit_setup.settings import Setting, resolve

if TYPE_CHECKING:
    from authkit_setup.output import Output
    from authkit_setup.providers.render import RenderClient

ENTRY_POINT_GROUP = "authkit_setup.providers"
DEFAULT_PROVIDER = "render"  # what --postgres / --redis default to


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
    # The Render API client of a command that has a Render service or workspace (`render`,
    # `status`, `teardown`); None for `provision`.
    render_client: RenderClient | None = None

    def setting(self, name: str) -> Setting:
        return resolve(self.flags.get(name), name, dict(self.env_file))


Factory = Callable[[ProviderSettings], StoreProvider]


@dataclass(frozen=True)
class ProviderEntry:
    name: str
    kinds: frozenset[Kind]
    factory: Factory
    summary: str = ""
    traits: Traits = NO_TRAITS

    def check(self, settings: ProviderSettings) -> None:
        """Stop before anything is built when this provider cannot work in this command."""
        if self.traits.beside_service and settings.render_client is None:
            raise UsageError(
                "Render stores belong to a service: use `authkit-setup render --service NAME`"
            )

    def build(self, settings: ProviderSettings) -> StoreProvider:
        self.check(settings)
        return self.factory(settings)


_entries: dict[str, ProviderEntry] = {}
_lock = threading.Lock()
_loaded = False
load_errors: list[str] = []  # plug-ins that failed to load; commands print them as warnings


def register(
    name: str,
    *,
    kinds: frozenset[Kind],
    factory: Factory,
    summary: str = "",
    traits: Traits = NO_TRAITS,
) -> None:
    """Add (or replace) a provider. `name` is what users pass to --postgres / --redis;
    `traits` are the ones its stores declare (base.Traits)."""
    key = name.strip().lower()
    if not key or not kinds:
        raise ValueError("a provider needs a name and at least one kind")
    _entries[key] = ProviderEntry(key, frozenset(kinds), factory, summary, traits)


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
    entry = _entries.get(name.strip().lower())
    if entry is None or kind not in entry.kinds:
        raise UsageError(
            f"{kind.flag} {name!r} is not a {kind.value} provider",
            hint=f"use one of {', '.join(names_for(kind))}",
        )
    return entry


def traits_named(name: str) -> Traits:
    """The traits the provider called `name` registered (none for an unknown name)."""
    _load()
    entry = _entries.get(name.strip().lower())
    return entry.traits if entry is not None else NO_TRAITS


def default_providers(settings: ProviderSettings) -> dict[Kind, StoreProvider]:
    """The default provider of every kind, built like any other."""
    return {kind: get(DEFAULT_PROVIDER, kind).build(settings) for kind in Kind}


# -- what a command chose, built ---------------------------------------------------------------


@dataclass(frozen=True)
class ProviderChoice:
    """What the command line says about Neon / Supabase / Upstash."""

    postgres: str | None = None
    redis: str | None = None
    provider_region: str | None = None
    neon_api_key: str | None = None
    neon_org_id: str | None = None
    supabase_access_token: str | None = None
    supabase_org: str | None = None
    supabase_db_password: str | None = None
    upstash_email: str | None = None
    upstash_api_key: str | None = None
    # What a new Postgres store is given where the provider takes it (Neon).
    database: str = "authkit"
    db_user: str = "authkit_user"
    postgres_version: str = "16"

    def flags(self) -> Mapping[str, str | None]:
        """Flag values by the environment variable each one overrides."""
        return {
            "NEON_API_KEY": self.neon_api_key,
            "NEON_ORG_ID": self.neon_org_id,
            "SUPABASE_ACCESS_TOKEN": self.supabase_access_token,
            "SUPABASE_ORG": self.supabase_org,
            "SUPABASE_DB_PASSWORD": self.supabase_db_password,
            "UPSTASH_EMAIL": self.upstash_email,
            "UPSTASH_API_KEY": self.upstash_api_key,
        }


@contextmanager
def store_providers(
    out: Output, choice: ProviderChoice, *, render_client: RenderClient | None = None
) -> Iterator[dict[Kind, StoreProvider]]:
    """The chosen providers by kind, all built the same way through the registry before
    anything happens, so a missing credential stops the run first (exit 3); their HTTP clients
    are closed on exit (the Render client is the command's own, closed by it)."""
    entries = _chosen(choice)
    for message in load_errors:
        out.warn(message)
    if choice.provider_region is not None and all(e.traits.beside_service for _, e in entries):
        raise UsageError(
            "--provider-region is for Neon, Supabase and Upstash stores",
            hint="Render stores always follow the service's region",
        )
    settings = _settings(out, choice, render_client)
    for _, entry in entries:
        entry.check(settings)
    providers: dict[Kind, StoreProvider] = {}
    try:
        missing: list[MissingCredentialsError] = []
        for kind, entry in entries:
            try:
                providers[kind] = entry.build(settings)
            except MissingCredentialsError as err:  # go on: one error names every one missing
                missing.append(err)
        if missing:
            raise MissingCredentialsError.joined(missing)
        yield providers
    finally:
        _close(providers.values())


def missing_credentials(out: Output, choice: ProviderChoice) -> list[MissingCredential]:
    """The credentials the chosen providers other than Render's lack: asked when a command's
    Render API key is missing, so that its one error names every missing credential. Other
    problems are left for the run that has a key to report."""
    settings = _settings(out, choice, None)
    missing: list[MissingCredential] = []
    for _, entry in _chosen(choice):
        if entry.traits.beside_service:  # needs nothing but the Render client
            continue
        try:
            _close([entry.factory(settings)])
        except MissingCredentialsError as err:
            missing.extend(err.missing)
        except AuthkitError:
            continue
    return missing


def _chosen(choice: ProviderChoice) -> list[tuple[Kind, ProviderEntry]]:
    wanted = [(Kind.POSTGRES, choice.postgres), (Kind.REDIS, choice.redis)]
    return [(kind, get(name, kind)) for kind, name in wanted if name is not None]


def _settings(
    out: Output, choice: ProviderChoice, render_client: RenderClient | None
) -> ProviderSettings:
    from authkit_setup.settings import read_env_file

    return ProviderSettings(
        out=out,
        flags=choice.flags(),
        env_file=read_env_file(Path(".env")),
        region=choice.provider_region,
        database=choice.database,
        user=choice.db_user,
        postgres_version=choice.postgres_version,
        render_client=render_client,
    )


def _close(providers: Iterable[StoreProvider]) -> None:
    for provider in providers:
        close = getattr(provider, "close", None)
        if callable(close):
            close()
