"""How every provider's API client is built (credentials, API URL, timeouts, retries), and the
factories the registry calls for the built-in providers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from authkit_setup.output import Output
from authkit_setup.settings import (
    DEFAULT_NEON_API_URL,
    DEFAULT_RENDER_API_URL,
    DEFAULT_SUPABASE_API_URL,
    DEFAULT_UPSTASH_API_URL,
    NEON_API_KEY,
    NEON_API_URL,
    NEON_ORG_ID,
    RENDER_API_KEY,
    RENDER_API_URL,
    SUPABASE_ACCESS_TOKEN,
    SUPABASE_API_URL,
    SUPABASE_DB_PASSWORD,
    SUPABASE_ORG,
    UPSTASH_API_KEY,
    UPSTASH_API_URL,
    UPSTASH_EMAIL,
    Credential,
    Setting,
    api_url,
    read_env_file,
    require_credentials,
    require_key,
    resolve,
)

if TYPE_CHECKING:
    from authkit_setup.http import ClientOptions
    from authkit_setup.providers.base import Kind, StoreProvider
    from authkit_setup.providers.neon import NeonStores
    from authkit_setup.providers.registry import ProviderChoice, ProviderSettings
    from authkit_setup.providers.render import RenderClient, RenderStores
    from authkit_setup.providers.supabase import SupabaseStores
    from authkit_setup.providers.upstash import UpstashStores


def render_client(
    out: Output, *, api_key: str | None, env_file: Path | None = Path(".env")
) -> RenderClient:
    """A Render client from --api-key > RENDER_API_KEY > ./.env, with RENDER_API_URL honoured."""
    from authkit_setup.providers.render import RenderClient

    key = _require(resolve(api_key, RENDER_API_KEY, read_env_file(env_file)))
    return RenderClient(token=key, **_options(out, RENDER_API_URL, DEFAULT_RENDER_API_URL))


@contextmanager
def render_and_stores(
    out: Output, choice: ProviderChoice, *, api_key: str | None
) -> Iterator[tuple[RenderClient, dict[Kind, StoreProvider]]]:
    """The Render client of a command that has a Render service or workspace, and the chosen
    providers (Render's over that client), all closed on exit. Without a Render API key the
    error names the other providers' missing credentials too."""
    from authkit_setup.errors import MissingCredentialsError
    from authkit_setup.providers.registry import missing_credentials, store_providers

    try:
        client = render_client(out, api_key=api_key)
    except MissingCredentialsError as err:
        others = missing_credentials(out, choice)
        raise MissingCredentialsError([*err.missing, *others]) from None
    with client, store_providers(out, choice, render_client=client) as providers:
        yield client, providers


# The single-key credentials: (flag, what it is, where to get one), the words of the one-line
# error that names a missing one.
_KEYS = {
    RENDER_API_KEY: (
        "--api-key",
        "Render API key",
        "Render Dashboard → Account Settings → API Keys",
    ),
    NEON_API_KEY: ("--neon-api-key", "Neon API key", "Neon Console → Account settings → API keys"),
    SUPABASE_ACCESS_TOKEN: (
        "--supabase-access-token",
        "Supabase access token",
        "supabase.com/dashboard/account/tokens",
    ),
}


def _require(setting: Setting) -> str:
    """The key's value, or the error naming its flag, its variable and where to get one."""
    flag, what, where = _KEYS[setting.name]
    return require_key(setting, flag=flag, what=what, where=where)


def _options(out: Output, url_variable: str, default_url: str) -> ClientOptions:
    """How every client is built: its API URL ($*_API_URL honoured), $AUTHKIT_HTTP_TIMEOUT, and
    a line on `out` whenever it waits for a rate limit."""
    import os

    from authkit_setup.http import retries_from_env, timeout_from_env

    overridden = bool(os.environ.get(url_variable))
    return {
        "base_url": api_url(url_variable, default_url),
        "base_url_source": (
            f"set by {url_variable}" if overridden else f"the default; {url_variable} overrides it"
        ),
        "timeout": timeout_from_env(),
        "max_retries": retries_from_env(),
        "on_wait": lambda seconds, reason: out.info(f"waiting {seconds:.0f} s for the {reason}"),
        "on_retry": out.info,
    }


# -- factories the registry calls (registry.py) -----------------------------------------------


def render_stores(settings: ProviderSettings) -> RenderStores:
    """Render Postgres / Key Value, through the command's Render client; the workspace is the
    service's, set once the service is found (`use_workspace`)."""
    from authkit_setup.providers.render import RenderStores

    assert settings.render_client is not None  # ProviderEntry.check
    return RenderStores(settings.render_client)


def neon_stores(settings: ProviderSettings) -> NeonStores:
    """Neon projects: NEON_API_KEY (+ NEON_ORG_ID), NEON_API_URL honoured."""
    from authkit_setup.providers.neon import NeonClient, NeonStores, check_version

    key = _require(settings.setting(NEON_API_KEY))
    check_version(settings.postgres_version)
    client = NeonClient(token=key, **_options(settings.out, NEON_API_URL, DEFAULT_NEON_API_URL))
    return NeonStores(
        client,
        org_id=settings.setting(NEON_ORG_ID).value,
        region=settings.region,
        database=settings.database,
        role=settings.user,
        on_notice=settings.out.info,
    )


def supabase_stores(settings: ProviderSettings) -> SupabaseStores:
    """Supabase projects: SUPABASE_ACCESS_TOKEN (+ SUPABASE_ORG, SUPABASE_DB_PASSWORD)."""
    from authkit_setup.providers.supabase import SupabaseClient, SupabaseStores

    token = _require(settings.setting(SUPABASE_ACCESS_TOKEN))
    client = SupabaseClient(
        token=token, **_options(settings.out, SUPABASE_API_URL, DEFAULT_SUPABASE_API_URL)
    )
    return SupabaseStores(
        client,
        org=settings.setting(SUPABASE_ORG).value,
        region=settings.region,
        db_password=settings.setting(SUPABASE_DB_PASSWORD).value,
        on_notice=settings.out.info,
    )


def upstash_stores(settings: ProviderSettings) -> UpstashStores:
    """Upstash Redis databases: UPSTASH_EMAIL + UPSTASH_API_KEY (HTTP Basic)."""
    from authkit_setup.providers.upstash import UpstashClient, UpstashStores

    where = "console.upstash.com → Account → Management API"
    email, api_key = require_credentials(
        Credential(
            settings.setting(UPSTASH_EMAIL),
            flag="--upstash-email",
            what="Upstash account email",
            where=where,
            hint=f"the Upstash Developer API logs in with the account email and a key from {where}",
            secret=False,
        ),
        Credential(
            settings.setting(UPSTASH_API_KEY),
            flag="--upstash-api-key",
            what="Upstash API key",
            where=where,
        ),
    )
    client = UpstashClient(
        email=email,
        api_key=api_key,
        **_options(settings.out, UPSTASH_API_URL, DEFAULT_UPSTASH_API_URL),
    )
    return UpstashStores(client, region=settings.region)
