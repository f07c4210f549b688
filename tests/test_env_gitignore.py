""".env files that hold secrets stay out of git (`local`, `provision`, `render --env-file`).

Inside a git work tree, a file git does not already ignore (`git check-ignore`) is added to the
.gitignore beside it, and the run says so; outside a work tree nothing is created; a file git
already tracks gets a warning (ignoring would not untrack it). Real git, real CLI.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from authkit_setup.envfile import keep_out_of_git
from tests.fakes.local_backend import CloudFakes
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import RenderWorld
from tests.test_local import _no_servers_left  # noqa: F401  (autouse: no local server left)


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def git_init() -> None:
    assert git("init", "-q", ".").returncode == 0


def ignored(name: str) -> bool:
    return git("check-ignore", "-q", "--", name).returncode == 0


def provision(cloud: CloudFakes, env_file: str = ".env") -> CliResult:
    result = run_cli("provision", "--postgres", "neon", "--env-file", env_file, "--no-verify")
    assert result.exit_code == 0, result.output
    assert_no_secret(result)
    return result


def test_provision_adds_the_env_file_to_gitignore(cloud_fakes: CloudFakes) -> None:
    git_init()
    Path(".gitignore").write_text("node_modules/")  # no final newline
    result = provision(cloud_fakes)
    assert Path(".gitignore").read_text() == "node_modules/\n/.env\n"
    assert ignored(".env")
    assert "/.env added (it holds secrets; git now ignores it)" in result.stderr
    again = provision(cloud_fakes)
    assert Path(".gitignore").read_text() == "node_modules/\n/.env\n"
    assert "git now ignores it" not in again.stderr


def test_a_file_git_already_ignores_is_left_alone(cloud_fakes: CloudFakes) -> None:
    git_init()
    Path(".gitignore").write_text("*.env\n")
    result = provision(cloud_fakes, "app.env")
    assert Path(".gitignore").read_text() == "*.env\n"
    assert "gitignore" not in result.stderr


def test_in_a_subfolder_the_gitignore_beside_the_file_is_created(
    cloud_fakes: CloudFakes,
) -> None:
    git_init()
    Path("backend").mkdir()
    result = provision(cloud_fakes, "backend/.env")
    assert Path("backend/.gitignore").read_text() == "/.env\n"
    assert not Path(".gitignore").exists()
    assert ignored("backend/.env")
    assert "created (it holds secrets" in result.stderr


def test_outside_a_work_tree_no_gitignore_is_written(cloud_fakes: CloudFakes) -> None:
    assert git("rev-parse", "--is-inside-work-tree").returncode != 0
    provision(cloud_fakes)
    assert not Path(".gitignore").exists()


def test_a_tracked_env_file_gets_a_warning(cloud_fakes: CloudFakes) -> None:
    git_init()
    Path(".env").write_text("APP=1\n")
    assert git("add", ".env").returncode == 0
    result = provision(cloud_fakes)
    assert "holds secrets and git tracks it: run `git rm --cached .env`" in result.stderr
    assert not Path(".gitignore").exists()


def test_keep_out_of_git_keeps_crlf_endings(tmp_path: Path) -> None:
    git_init()
    Path(".gitignore").write_bytes(b"dist/\r\n")
    Path("secrets.env").write_text("A=1\n")
    assert keep_out_of_git(tmp_path / "secrets.env") == ("added", tmp_path / ".gitignore")
    assert Path(".gitignore").read_bytes() == b"dist/\r\n/secrets.env\r\n"
    assert keep_out_of_git(tmp_path / "secrets.env") == ("ignored", None)


def test_local_adds_the_env_file_to_gitignore() -> None:
    git_init()
    result = run_cli("local")
    assert result.exit_code == 0, result.output
    lines = Path(".gitignore").read_text().splitlines()
    assert lines == [".authkit/", "/.env"]
    assert ignored(".env") and ignored(".authkit/state.json")
    assert "/.env added (it holds secrets; git now ignores it)" in result.stderr


def test_render_env_file_is_added_to_gitignore(render_world: RenderWorld) -> None:
    git_init()
    result = run_cli(
        "render", "--service", "authkit-api", "--yes", "--env-file", "dev.env", "--no-verify"
    )
    assert result.exit_code == 0, result.output
    for pg in render_world.fake.postgres_named("authkit-db"):
        assert_no_secret(result, str(render_world.fake.connection_info(pg["id"])["password"]))
    assert Path(".gitignore").read_text() == "/dev.env\n"
    assert ignored("dev.env")
    assert "/dev.env created (it holds secrets; git now ignores it)" in result.stderr
