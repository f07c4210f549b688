"""The database drivers (psycopg, redis), imported by one thread at a time.

`run_checks` runs each ladder in its own thread, and each ladder imports its driver when it
first needs it (after the url, dns, tcp and tls rungs: a server that never answers costs no
import). Two threads importing at once would hand the GIL back and forth on every file read of
the import: about 1000 context switches and 40 ms of CPU for psycopg and redis (measured with
`perf stat`), an eighth of a local `check`. So a ladder loads its driver here, under one lock:
the second waits, blocked, while the first imports, and the imports still overlap the other
ladder's network rungs.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterable

from authkit_setup.diagnostics.model import Target

DRIVERS: dict[Target, str] = {"postgres": "psycopg", "redis": "redis"}

_importing = threading.Lock()


def load(target: Target) -> None:
    """Import the driver of `target` (at once if it is imported already)."""
    with _importing:
        importlib.import_module(DRIVERS[target])


def preload(targets: Iterable[Target]) -> None:
    """Import the drivers of `targets` in a background thread, for a caller about to wait on
    something else: `render` imports them while its new stores become ready, instead of after
    (about 0.3 s of the run's tail on these machines). Each import still goes through `load`."""
    wanted = [t for t in dict.fromkeys(targets) if DRIVERS[t] not in sys.modules]
    if not wanted:
        return

    def work() -> None:
        for target in wanted:
            importlib.import_module(f"authkit_setup.diagnostics.{target}")  # the ladder
            load(target)

    threading.Thread(target=work, name="preload-drivers", daemon=True).start()
