"""Checks that this environment holds exactly the lower bound of every runtime dependency.

    python -m tests.lower_bounds

.ci/run installs the project with `uv pip install --resolution lowest-direct` into a second
virtualenv and runs a fast subset of the tests there; this check proves that environment really
has the versions pyproject.toml names as lower bounds (`>=X`), so each bound is one the tests
have passed with. Exits 1, listing the differences, otherwise.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def lower_bounds(pyproject: Path = PYPROJECT) -> dict[str, Version]:
    """Runtime dependency → its `>=` bound; a dependency without one is an error."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    bounds: dict[str, Version] = {}
    for text in project["dependencies"]:
        requirement = Requirement(text)
        found = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        if len(found) != 1:
            raise ValueError(f"{text}: every runtime dependency needs one >= lower bound")
        bounds[requirement.name] = found[0]
    return bounds


def main() -> int:
    problems = []
    for name, bound in lower_bounds().items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            problems.append(f"{name}: not installed (lower bound {bound})")
            continue
        if installed != bound:
            problems.append(f"{name}: {installed} installed, lower bound {bound}")
        else:
            print(f"{name}=={installed}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
