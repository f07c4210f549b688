"""Store providers behind one interface (base.py), and how to build their API clients."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from authkit_setup.output import Output
from authkit_setup.settings import (
    DEFAULT_RENDER_API_URL,
    RENDER_API_KEY,
    RENDER_API_URL,
    api_url,
    read_env_file,
    require_key,
    resolve,
)

if TYPE_CHECKING:
    from authkit_setup.providers.render import RenderClient


def render_client(
    out: Output, *, api_key: str | None, env_file: Path | None = Path(".env")
) -> RenderClient:
    """A Render client from --api-key > RENDER_API_KEY > ./.env, with RENDER_API_URL honoured."""
    from authkit_setup.providers.render import RenderClient

    values = read_env_file(env_file)
    key = require_key(
        resolve(api_key, RENDER_API_KEY, values),
        flag="--api-key",
        what="Render API key",
        where="Render Dashboard → Account Settings → API Keys",
    )
    return RenderClient(
        token=key,
        base_url=api_url(RENDER_API_URL, DEFAULT_RENDER_API_URL),
        on_wait=lambda seconds, reason: out.info(f"waiting {seconds:.0f} s for the {reason}"),
    )
