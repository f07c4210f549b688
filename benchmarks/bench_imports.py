"""Import budget of start-up: what `--help` and `--version` load, and how long imports take.

    python -m benchmarks.bench_imports [--runs N]

For `--help`, `--version` and `<command> --help` of every command, runs
`python -X importtime -m authkit_setup ARGS` and reports the total import time (the sum of the
cumulative microseconds of the top-level imports, best of N runs) and which heavy modules got
imported. Exits 1 if `--help` or `--version` (top level or of any command) imports one of
`HEAVY`: the drivers, httpx, rich and PyYAML are imported by the code that uses them, never at
start-up.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass

HEAVY = ("httpx", "psycopg", "redis", "rich", "yaml")
# Reported, not failed: typer validates option ranges with pydantic once a command is chosen.
NOTED = ("pydantic", "dotenv")
# "import time:       123 |        456 | package.module"; nesting is the indentation of the name.
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


@dataclass(frozen=True)
class Imports:
    args: tuple[str, ...]
    total_us: int  # sum of the cumulative time of the top-level imports
    modules: frozenset[str]
    exit_code: int

    @property
    def heavy(self) -> list[str]:
        return self._top_level(HEAVY)

    @property
    def noted(self) -> list[str]:
        return self._top_level(NOTED)

    def _top_level(self, names: tuple[str, ...]) -> list[str]:
        return sorted({m.split(".")[0] for m in self.modules if m.split(".")[0] in names})


def measure(*args: str) -> Imports:
    """One `python -X importtime -m authkit_setup ARGS` run."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "authkit_setup", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    total = 0
    modules: set[str] = set()
    for line in proc.stderr.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        cumulative, indent, name = int(match[2]), len(match[3]), match[4]
        modules.add(name)
        if indent == 1:  # one space after "|": a top-level import
            total += cumulative
    return Imports(tuple(args), total, frozenset(modules), proc.returncode)


def commands() -> list[str]:
    from authkit_setup.cli import app

    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    return [n for n in names if n]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="best of N runs per command line")
    options = parser.parse_args()

    lines: list[tuple[str, ...]] = [("--help",), ("--version",)]
    lines += [(name, "--help") for name in commands()]
    ok = True
    print(f"{'command line':<20} {'imports (ms)':>12}  {'modules':>7}  heavy imported  (noted)")
    for args in lines:
        runs = [measure(*args) for _ in range(max(1, options.runs))]
        best = min(runs, key=lambda r: r.total_us)
        heavy = sorted({m for r in runs for m in r.heavy})
        failed = bool(heavy) or any(r.exit_code != 0 for r in runs)
        ok &= not failed
        label = " ".join(args)
        print(
            f"{label:<20} {best.total_us / 1000:>12.1f}  {len(best.modules):>7}  "
            f"{', '.join(heavy) or '-':<14}  ({', '.join(best.noted) or '-'})"
            f"{'  FAIL' if failed else ''}"
        )
    print(("PASS" if ok else "FAIL") + f": no {', '.join(HEAVY)} at start-up")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
