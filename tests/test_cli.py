"""The package surface: entry points, --version, --help everywhere, README coverage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from authkit_setup import __version__
from authkit_setup.cli import app
from tests.helpers import run_cli, run_cli_process

README = (Path(__file__).parent.parent / "README.md").read_text()


def command_paths() -> list[list[str]]:
    import typer.main

    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        sub = getattr(command, "commands", None)
        if isinstance(sub, dict):
            for name, child in sub.items():
                walk(child, [*prefix, name])
        else:
            paths.append(prefix)

    walk(root, [])
    return paths


def test_version() -> None:
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"authkit-setup {__version__}"


def test_python_dash_m_entry_point() -> None:
    result = run_cli_process("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p))
def test_every_command_has_help_with_examples(path: list[str]) -> None:
    result = run_cli(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    top = path[0]
    if top in {
        "render",
        "check",
        "provision",
        "teardown",
        "status",
        "migrations",
        "backup",
        "blueprint",
    }:
        assert "Examples:" in result.stdout
    assert f"authkit-setup {top}" in README, f"README does not document {top}"


def test_unknown_command_is_one_line_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "frobnicate" in result.stderr


def test_readme_lists_exit_codes_and_env_vars() -> None:
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 130 |"):
        assert code in README
    from authkit_setup import settings

    names = [
        v
        for k, v in vars(settings).items()
        if k.isupper()
        and isinstance(v, str)
        and re.fullmatch(r"[A-Z_]+", v)
        and not k.startswith("DEFAULT")
    ]
    for name in names:
        if name in ("RENDER", "DIRECT_URL"):
            continue
        assert name in README, f"README does not list {name}"


def test_shell_completion_is_offered() -> None:
    result = run_cli("--help")
    assert "--install-completion" in result.stdout
