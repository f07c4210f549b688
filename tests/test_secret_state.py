"""Nothing is lost around secrets: the saved-password file and Render's recovery call.

- A saved-password file that cannot be read or parsed is an error naming it; it is never
  treated as empty and overwritten (it may hold the only copy of a generated password).
- A generated password that cannot be saved stops the run before the create.
- Render answers 400 to `GET /postgres/{id}/recovery` for a free database: `status` and
  `backup` report "no recovery" instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.common import Fault
from tests.fakes.fixtures import MakeRenderFake
from tests.fakes.local_backend import CloudFakes
from tests.fakes.render_api import FakeRenderAPI
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import cli_uses
from tests.test_backup import add_postgres


def provision_supabase(cloud: CloudFakes) -> CliResult:
    result = run_cli(
        "provision", "--postgres", "supabase", "--env-file", ".env", "--no-verify", "--json"
    )
    assert "Traceback" not in result.output
    assert_no_secret(result)
    return result


def state_file() -> Path:
    return Path(os.environ["AUTHKIT_STATE_DIR"]) / "secrets.json"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"supabase/org/other": "only-copy-of-a-pass', "is not valid JSON"),
        (b'["not", "an", "object"]', "is not a JSON object"),
        (b'{"supabase/org/other": 42}', "is not a JSON object"),
        (b"\xff\xfe not utf-8", "cannot be read"),
    ],
)
def test_a_corrupt_saved_password_file_stops_before_anything(
    cloud_fakes: CloudFakes, content: bytes, problem: str
) -> None:
    path = state_file()
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    result = provision_supabase(cloud_fakes)
    assert result.exit_code == 2, result.output
    assert result.json()["error"]["code"] == "usage"
    assert f"the saved-password file {path} {problem}" in result.stderr
    assert "never overwrites it" in result.stderr
    assert path.read_bytes() == content
    assert cloud_fakes.creates() == 0 and not Path(".env").exists()


def test_an_unreadable_saved_password_file_is_an_error_naming_it(
    cloud_fakes: CloudFakes,
) -> None:
    path = state_file()
    path.mkdir(parents=True)  # unreadable as a file, even for root
    result = provision_supabase(cloud_fakes)
    assert result.exit_code == 2, result.output
    assert f"the saved-password file {path} cannot be read (Is a directory)" in result.stderr
    assert path.is_dir() and cloud_fakes.creates() == 0


def test_a_password_that_cannot_be_saved_stops_before_the_create(
    cloud_fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be\n")
    monkeypatch.setenv("AUTHKIT_STATE_DIR", str(blocker))
    result = provision_supabase(cloud_fakes)
    assert result.exit_code == 2, result.output
    assert "cannot save the generated password to" in result.stderr
    assert "nothing was created" in result.stderr
    assert cloud_fakes.creates() == 0 and not Path(".env").exists()
    assert blocker.read_text() == "a file where the state folder should be\n"


def test_a_saved_password_survives_a_later_run_for_another_project(
    cloud_fakes: CloudFakes,
) -> None:
    path = state_file()
    path.parent.mkdir(parents=True)
    path.write_text('{"supabase/elsewhere/keep": "the-only-copy-of-this"}\n')
    result = provision_supabase(cloud_fakes)
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert '"supabase/elsewhere/keep": "the-only-copy-of-this"' in text
    assert text.count('"supabase/') == 2


# -- Render recovery: 400 on a free database ----------------------------------------------


@pytest.fixture
def fake(make_render_fake: MakeRenderFake, monkeypatch: pytest.MonkeyPatch) -> FakeRenderAPI:
    fake = make_render_fake()
    fake.add_service("authkit-api", region="ohio", plan="starter")
    return cli_uses(fake, monkeypatch)


def test_backup_of_a_free_database_survives_a_400_from_recovery(fake: FakeRenderAPI) -> None:
    add_postgres(fake, "free")
    fake.inject("GET", r"/postgres/[^/]+/recovery", Fault.status(400))
    result = run_cli("backup", "--service", "authkit-api", "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["pitr"] == "NOT_AVAILABLE" and doc["backups"] is False
    assert doc["export_started"] is True


def test_a_400_from_recovery_on_a_paid_database_is_still_an_error(fake: FakeRenderAPI) -> None:
    add_postgres(fake, "basic_256mb")
    fake.inject("GET", r"/postgres/[^/]+/recovery", Fault.status(400))
    result = run_cli("backup", "--service", "authkit-api", "--json")
    assert result.exit_code == 1, result.output
    assert result.json()["error"]["code"] == "api_error"
