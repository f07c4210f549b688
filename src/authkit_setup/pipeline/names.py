"""Store names: the base names, or a preview's (one pair of stores per pull request), named in
exactly one place.

`render --preview pr-123` stores are `authkit-db-pr-123` and `authkit-redis-pr-123` (Render
stores, Supabase projects, Upstash databases); with `--postgres neon` the preview's database is
the branch `preview/pr-123` in the base project `authkit-db`, as Neon recommends
(neon-supabase-upstash.md §1.4). `teardown --preview pr-123` deletes exactly those names and
nothing else. Every other module asks this one for names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from authkit_setup.errors import UsageError
from authkit_setup.providers.base import Kind, PreviewBranches, StoreProvider
from authkit_setup.providers.registry import DEFAULT_PROVIDER, ProviderChoice, traits_named

if TYPE_CHECKING:
    from authkit_setup.output import Output
    from authkit_setup.providers.render import RenderClient

DEFAULT_DB_NAME = "authkit-db"
DEFAULT_REDIS_NAME = "authkit-redis"
MAX_PREVIEW_LENGTH = 40
_PREVIEW_NAME = re.compile(rf"[a-z0-9][a-z0-9-]{{0,{MAX_PREVIEW_LENGTH - 1}}}")
# Render allows one free Postgres per workspace (render-api.md §3.7), so a second preview's
# free database is refused; basic_256mb is the smallest paid plan (§0.3).
PAID_PREVIEW_PLAN = "basic_256mb"


@dataclass(frozen=True)
class StoreNames:
    db: str
    redis: str


def validate_preview(name: str) -> str:
    """The preview name, or a one-line usage error saying what a valid one looks like."""
    if _PREVIEW_NAME.fullmatch(name):
        return name
    shown = name if len(name) <= 60 and name.isprintable() else repr(name[:60])
    raise UsageError(
        f"--preview {shown!r} is not a valid preview name: use 1-{MAX_PREVIEW_LENGTH} lowercase "
        "letters, digits and hyphens, starting with a letter or digit (e.g. pr-123)"
    )


def preview_store_name(base: str, preview: str, provider: str = DEFAULT_PROVIDER) -> str:
    """One preview store's exact name: `<prefix><preview>` for a provider whose previews are
    branches of the base store (Neon: `preview/pr-123` inside the project `base`), else
    `<base>-<preview>`."""
    preview = validate_preview(preview)
    prefix = traits_named(provider).preview_branch_prefix
    if prefix is not None:
        return f"{prefix}{preview}"
    return f"{base}-{preview}"


def store_names(
    preview: str | None,
    base_db: str = DEFAULT_DB_NAME,
    base_redis: str = DEFAULT_REDIS_NAME,
    *,
    postgres: str = DEFAULT_PROVIDER,
    redis: str = DEFAULT_PROVIDER,
) -> StoreNames:
    """The store names for a preview on the given providers, or the base names without one."""
    if preview is None:
        return StoreNames(base_db, base_redis)
    return StoreNames(
        preview_store_name(base_db, preview, postgres),
        preview_store_name(base_redis, preview, redis),
    )


def belongs_to_preview(
    store_name: str, preview: str, base: str, provider: str = DEFAULT_PROVIDER
) -> bool:
    """True only for the exact name `preview_store_name(base, preview, provider)`.

    An exact comparison, never a prefix or suffix test: `authkit-db-pr-1` is not part of preview
    `pr-12`, `authkit-db-pr-12` is not part of preview `pr-1` or `12`, and Neon branch
    `preview/pr-1` is not part of preview `pr-12`.
    """
    return store_name == preview_store_name(base, preview, provider)


def preview_providers(
    providers: dict[Kind, StoreProvider], preview: str | None, base_db: str
) -> dict[Kind, StoreProvider]:
    """The providers a preview uses: a Postgres provider whose previews are branches (Neon)
    works on branches of the base project."""
    if preview is None:
        return providers
    chosen = dict(providers)
    postgres = chosen.get(Kind.POSTGRES)
    if isinstance(postgres, PreviewBranches):
        chosen[Kind.POSTGRES] = postgres.for_preview(base_db)
    return chosen


class PreviewRequest(Protocol):
    """A request about a preview's stores or the base ones (`render`, `status`, `teardown`)."""

    @property
    def api_key(self) -> str | None: ...
    @property
    def preview(self) -> str | None: ...
    @property
    def db_name(self) -> str: ...


@contextmanager
def render_and_preview_stores(
    out: Output, request: PreviewRequest
) -> Iterator[tuple[RenderClient, dict[Kind, StoreProvider]]]:
    """The command's Render client and the providers it chose, a preview's when it names one
    (`preview_providers`), all closed on exit."""
    from authkit_setup.providers.clients import render_and_stores

    assert isinstance(request, ProviderChoice)  # every such request is a provider choice
    with render_and_stores(out, request, api_key=request.api_key) as (client, providers):
        yield client, preview_providers(providers, request.preview, request.db_name)


def free_plan_warning(
    preview: str | None, postgres_plan: str, postgres: str = DEFAULT_PROVIDER
) -> str | None:
    """Why a free Postgres per preview is likely to be refused, or None."""
    if preview is None or postgres_plan != "free" or not traits_named(postgres).beside_service:
        return None
    return (
        f"--preview {preview} with --postgres-plan free: Render allows one free Postgres per "
        "workspace, so a second free database (another preview, or the base authkit-db) is "
        f"refused; pass --postgres-plan {PAID_PREVIEW_PLAN} for per-PR databases"
    )
