"""`authkit-setup check`: find the URLs (flags, environment, .env, or a Render service) and run
the diagnostics ladder on them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from authkit_setup.diagnostics.model import Target
from authkit_setup.kinds import Kind
from authkit_setup.output import Output

# A check of servers nearby ends before a spinner would be seen: it shows only after this long.
SPINNER_AFTER = 0.25


@contextmanager
def checking(out: Output, urls: Mapping[Target, str]) -> Iterator[None]:
    """A spinner on a terminal while `urls` are checked, if that takes a while."""
    names = " and ".join(Kind.checked_as(target).env_var for target in urls)
    with out.spinner(f"checking {names}", after=SPINNER_AFTER):
        yield
