"""The package as users get it: the wheel and sdist built from this checkout (offline, with the
installed hatchling), their contents and metadata. .ci/run installs the same artifacts in fresh
virtualenvs (and with pipx and uv) and runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from authkit_setup import __version__
from tests.helpers import run_program
from tests.lower_bounds import lower_bounds

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = run_program(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def wheel_names(dist: Path) -> list[str]:
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"authkit_setup-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def wheel_metadata(dist: Path) -> Message:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"authkit_setup-{__version__}.dist-info/METADATA").decode()
    return Parser().parsestr(text)


def test_wheel_ships_the_package_typed_and_no_tests(dist: Path) -> None:
    names = wheel_names(dist)
    assert "authkit_setup/py.typed" in names
    assert "authkit_setup/cli.py" in names and "authkit_setup/__main__.py" in names
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"authkit_setup", f"authkit_setup-{__version__}.dist-info"}
    assert not [n for n in names if "/tests/" in n or n.startswith(("tests/", "benchmarks/"))]
    assert f"authkit_setup-{__version__}.dist-info/licenses/LICENSE" in names
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"authkit_setup-{__version__}.dist-info/entry_points.txt")
    assert "authkit-setup = authkit_setup.launch:main" in entry_points.decode()


def test_wheel_metadata_is_ready_for_a_release(dist: Path) -> None:
    meta = wheel_metadata(dist)
    assert meta["Name"] == "authkit-setup" and meta["Version"] == __version__
    assert meta["Summary"].startswith("Provision PostgreSQL and Redis for AuthKit on Render")
    assert meta["License-Expression"] == "MIT" and meta["License-File"] == "LICENSE"
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert str(meta.get_payload()).startswith("# authkit-setup")  # the README
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # License-Expression says it
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(u.startswith("https://") for u in urls.values())
    assert meta["Author"] == "authkit-setup contributors"
    assert "render" in meta["Keywords"].split(",")
    runtime = {
        Requirement(r).name: Requirement(r)
        for r in meta.get_all("Requires-Dist") or []
        if "extra ==" not in r
    }
    assert set(runtime) == set(lower_bounds())
    assert {name: str(r.specifier) for name, r in runtime.items()} == {
        name: f">={bound}" for name, bound in lower_bounds().items()
    }


def test_every_runtime_dependency_has_a_lower_bound() -> None:
    bounds = lower_bounds()
    assert set(bounds) == {"typer", "httpx", "rich", "psycopg", "redis", "python-dotenv", "pyyaml"}


def test_lower_bounds_refuses_a_dependency_without_one(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["typer>=0.28", "httpx"]\n')
    with pytest.raises(ValueError, match="httpx: every runtime dependency needs one >= lower"):
        lower_bounds(pyproject)


def test_sdist_builds_the_same_project(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    assert sdist.name == f"authkit_setup-{__version__}.tar.gz"
    prefix = f"authkit_setup-{__version__}/"
    with tarfile.open(sdist) as archive:
        names = {n.removeprefix(prefix) for n in archive.getnames()}
    for needed in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "action.yml",
        "src/authkit_setup/py.typed",
        "tests/test_package.py",
        "examples/github-actions/preview.yml",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith((".venv", ".ci-venv", "dist/", ".git/"))]


def completion(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_program([str(Path(sys.executable).parent / "authkit-setup"), *args], env=env)


def test_shell_completion_installs_and_completes(tmp_path: Path) -> None:
    # README: `authkit-setup --install-completion`, then a new shell completes commands/flags.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    installed = completion(env, "--install-completion", "bash")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    script = tmp_path / ".bash_completions" / "authkit-setup.sh"
    assert "_AUTHKIT_SETUP_COMPLETE=complete_bash" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    for words, cword, expected in (
        ("authkit-setup tear", "1", "teardown"),
        ("authkit-setup render --prev", "2", "--preview"),
    ):
        done = completion(
            {**env, "_AUTHKIT_SETUP_COMPLETE": "complete_bash", "COMP_WORDS": words,
             "COMP_CWORD": cword},
        )  # fmt: skip
        assert (done.returncode, done.stdout.split()) == (0, [expected]), done.stderr
