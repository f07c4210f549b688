"""`authkit-setup check`: find the URLs (flags, environment, .env, or a Render service) and run
the diagnostics ladder on them."""

from __future__ import annotations

from collections.abc import Mapping

from authkit_setup.diagnostics import run_checks
from authkit_setup.diagnostics.model import CheckResult, Target
from authkit_setup.kinds import Kind
from authkit_setup.output import Output

# A check of servers nearby ends before a spinner would be seen: it shows only after this long.
SPINNER_AFTER = 0.25


def run_checks_watched(
    out: Output, urls: Mapping[Target, str], *, timeout: float
) -> list[CheckResult]:
    """`diagnostics.run_checks`, under a spinner on a terminal while it takes long."""
    names = " and ".join(Kind.checked_as(target).env_var for target in urls)
    with out.spinner(f"checking {names}", after=SPINNER_AFTER):
        return run_checks(urls, timeout=timeout)
