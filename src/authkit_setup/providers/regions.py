"""Which cloud region is nearest each Render region, and `--provider-region` parsing.

Render's regions are Oregon, Ohio, Virginia, Frankfurt and Singapore; each has an AWS region in
the same metro area, and Neon, Supabase and Upstash all offer it (reference §5). Which cloud
Render itself runs on is undocumented, so the match is by city.
"""

from __future__ import annotations

from collections.abc import Callable

from authkit_setup.errors import UsageError
from authkit_setup.inputs import one_of

RENDER_TO_AWS = {
    "oregon": "us-west-2",
    "ohio": "us-east-2",
    "virginia": "us-east-1",
    "frankfurt": "eu-central-1",
    "singapore": "ap-southeast-1",
}
RENDER_REGIONS = tuple(RENDER_TO_AWS)
DEFAULT_RENDER_REGION = "ohio"  # AWS us-east-2, Neon's default region


def near_render_region(region: str | None) -> str:
    """`provision --region`: the Render region the stores go near (default ohio)."""
    region = (region or DEFAULT_RENDER_REGION).strip().lower()
    return one_of(
        region,
        RENDER_REGIONS,
        f"--region {region!r} is not a Render region",
        hint=f"use one of {', '.join(RENDER_REGIONS)}, or --provider-region for an exact one",
    )


def aws_region_for(render_region: str) -> str:
    """The AWS region in the same city as a Render region (`ohio` → `us-east-2`)."""
    try:
        return RENDER_TO_AWS[render_region]
    except KeyError:
        raise UsageError(
            f"no known cloud region near Render region {render_region!r}",
            hint=f"pass --provider-region, or use one of {', '.join(RENDER_TO_AWS)}",
        ) from None


def pick_region(
    render_region: str,
    override: str | None,
    allowed: tuple[str, ...],
    provider: str,
    spell: Callable[[str], str] = lambda region: region,
) -> str:
    """`override` when given, else the AWS region near Render's; in the provider's spelling
    (`spell`, e.g. Neon's `aws-` prefix) and checked against `allowed`."""
    region = spell(aws_region_for(render_region) if override is None else override.strip().lower())
    return one_of(
        region, allowed, f"--provider-region {override or region!r} is not a {provider} region"
    )


def plain_aws(region: str) -> str:
    """`aws-us-east-2` (Neon's spelling) → `us-east-2` (Supabase's and Upstash's)."""
    return region.removeprefix("aws-")
