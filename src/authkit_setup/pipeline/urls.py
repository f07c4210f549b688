"""URLs step: read each store's connection URLs once it is ready (those planning could not read
yet); they are masked in GitHub Actions the moment they are known."""

from __future__ import annotations

from authkit_setup.pipeline.plan import StorePlan


def read_urls(plans: list[StorePlan]) -> None:
    for plan in plans:
        if plan.info is None and plan.store is not None:
            plan.read_info(plan.store)
