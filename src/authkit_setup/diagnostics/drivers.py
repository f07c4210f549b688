"""The database drivers (psycopg, redis), imported by one thread at a time.

`run_checks` runs each ladder in its own thread and imports the drivers the ladders need itself,
one after the other, while the ladders' first rungs (url, dns, tcp, tls) wait on the network;
a ladder waits here before its first use of a driver. Two threads importing at once would hand
the GIL back and forth on every file read of the import: about 1000 context switches and
40 ms of CPU for psycopg and redis (measured with `perf stat`), an eighth of a local `check`.
Imported up front instead, before any rung, a driver would cost its import time even when its
server never answers (psycopg is not needed when the tcp or tls rung fails).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from authkit_setup.diagnostics.model import Target

DRIVERS: dict[Target, str] = {"postgres": "psycopg", "redis": "redis"}

_imported = threading.Event()
_imported.set()  # nobody is importing: a ladder run on its own imports its driver itself


@contextmanager
def imported_here() -> Iterator[None]:
    """Hold the ladders started inside the block at `wait()` until the block ends (the block
    imports their drivers with `import_for`)."""
    _imported.clear()
    try:
        yield
    finally:
        _imported.set()


def import_for(targets: Iterable[Target]) -> None:
    """Import the drivers of `targets`, in this thread, one after the other."""
    for target in targets:
        importlib.import_module(DRIVERS[target])


def wait() -> None:
    """Return once no `imported_here` block is importing the drivers (at once when none is)."""
    _imported.wait()
