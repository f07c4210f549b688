"""Mutation testing of the trust-critical modules; prints `mutation: K/N killed`.

    .venv/bin/python scripts/mutation.py [--max-children N] [--keep]

mutmut (a test extra) changes each module below in small ways (a `<` becomes `<=`, a string
changes, a call is dropped...) and runs the fast unit tests in TESTS against every change. A
change that no test notices "survives": either a test is missing, or the change does not alter
behaviour (an equivalent mutant), which scripts/mutation-equivalent.txt lists with the reason.

It works in a scratch copy (.mutation/, git-ignored) with its own [tool.mutmut] config, so the
project's pyproject.toml carries no mutmut settings and the module list lives here only.
Not part of .ci/run: it takes several minutes. The last figure is in the README.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

# The trust-critical modules. Keep this list current when modules move.
MODULES = [
    "src/authkit_setup/secrets.py",  # secret masking
    "src/authkit_setup/envfile.py",  # .env editing
    "src/authkit_setup/http.py",  # the HTTP retry policy
    "src/authkit_setup/pipeline/env.py",  # the env step
    "src/authkit_setup/targets/base.py",  # what each env write does (created/updated/...)
    "src/authkit_setup/targets/render_service.py",  # one Render variable at a time
    "src/authkit_setup/check/urls.py",  # verification and its honest "not verifiable"
]
# Fast tests only (no real servers): mutmut runs, for each mutant, the tests that reach it.
TESTS = [
    "tests/test_trust_units.py",
    "tests/test_http.py",
    "tests/test_properties.py",
    "tests/test_secrets.py",
    "tests/test_trust_targets.py",
]

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
EQUIVALENT = ROOT / "scripts" / "mutation-equivalent.txt"


def prepare() -> None:
    """A fresh scratch copy of the sources, the tests and a pyproject with the mutmut config."""
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir()
    shutil.copytree(ROOT / "src", WORK / "src")
    shutil.copytree(ROOT / "tests", WORK / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "benchmarks", WORK / "benchmarks")
    config = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["src"]',
            f"only_mutate = {MODULES!r}",
            f"pytest_add_cli_args_test_selection = {TESTS!r}",
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]',
            "",
        ]
    ).replace("'", '"')
    (WORK / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + config)


def equivalent() -> set[str]:
    """Mutant names listed as equivalent (first word of each non-comment line)."""
    if not EQUIVALENT.exists():
        return set()
    names = set()
    for line in EQUIVALENT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line.split()[0])
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-children", type=int, default=2, help="parallel test runs")
    parser.add_argument("--keep", action="store_true", help="reuse .mutation/ (incremental)")
    args = parser.parse_args()
    if not args.keep or not WORK.exists():
        prepare()
    mutmut = [sys.executable, "-m", "mutmut"]
    run = subprocess.run(
        [*mutmut, "run", "--max-children", str(args.max_children)], cwd=WORK, check=False
    )
    if run.returncode != 0:
        print(f"mutmut run failed with exit code {run.returncode}", file=sys.stderr)
        return run.returncode
    listing = subprocess.run(
        [*mutmut, "results", "--all", "true"],
        cwd=WORK,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    status = dict(re.findall(r"^\s*(\S+): (.+)$", listing, re.MULTILINE))
    killed = [
        name for name, s in status.items() if s in ("killed", "timeout", "caught by type check")
    ]
    survivors = sorted(name for name, s in status.items() if name not in killed)
    listed = equivalent()
    unexplained = [name for name in survivors if name not in listed]
    for name in unexplained:
        print(f"survived: {name} ({status[name]})")
    print(
        f"mutation: {len(killed)}/{len(status)} killed"
        f" ({len(survivors) - len(unexplained)} of the {len(survivors)} survivors are listed as"
        f" equivalent in {EQUIVALENT.relative_to(ROOT)})"
    )
    stale = sorted(listed - set(status))
    if stale:
        print(f"listed as equivalent but no longer a mutant: {', '.join(stale)}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
