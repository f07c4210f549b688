"""Store providers behind one interface (base.py); clients.py builds their API clients and the
built-ins' factories, which register here exactly as a plug-in would (registry.py)."""

from __future__ import annotations


def register_builtin_providers() -> None:
    """The built-ins register exactly as a plug-in would (see registry.py)."""
    from authkit_setup.providers import neon, render
    from authkit_setup.providers.base import NO_TRAITS, Kind
    from authkit_setup.providers.clients import (
        neon_stores,
        render_stores,
        supabase_stores,
        upstash_stores,
    )
    from authkit_setup.providers.registry import register

    postgres, redis = frozenset({Kind.POSTGRES}), frozenset({Kind.REDIS})
    builtins = (
        ("render", postgres | redis, render_stores, "Render Postgres / Key Value", render.TRAITS),
        ("neon", postgres, neon_stores, "Neon Postgres", neon.TRAITS),
        ("supabase", postgres, supabase_stores, "Supabase Postgres", NO_TRAITS),
        ("upstash", redis, upstash_stores, "Upstash Redis", NO_TRAITS),
    )
    for name, kinds, factory, summary, traits in builtins:
        register(name, kinds=kinds, factory=factory, summary=summary, traits=traits)
