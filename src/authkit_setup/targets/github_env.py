"""`$GITHUB_ENV` as a target (`render --github-env`): the stores' external URLs for the later
steps of the same GitHub Actions job (ci.py has the file format)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from authkit_setup.ci import OutputValue, append_to
from authkit_setup.kinds import Kind
from authkit_setup.output import Output
from authkit_setup.providers.base import ConnectionInfo


def append_urls(
    path: Path, stores: Iterable[tuple[Kind, str, ConnectionInfo | None]], out: Output
) -> None:
    """Append each store's external URL (`stores`: kind, name, URLs); say what is missing."""
    values: dict[str, OutputValue] = {}
    for kind, name, info in stores:
        key = kind.env_var
        if info is None or not info.external_url:
            out.warn(f"--github-env: {name} has no external URL; {key} not written")
            continue
        if not info.external_reachable:
            out.warn(
                f"--github-env: {key} is written, but {info.unreachable_reason}; add "
                f"{kind.facts.allow_cidr_flag} 0.0.0.0/0 (or the runner's range) to reach it "
                "from CI"
            )
        values[key] = info.external_url
    append_to(path, values)
    if values:
        out.step(f"{', '.join(values)} appended to $GITHUB_ENV for the next steps")
