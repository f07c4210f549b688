"""`authkit-setup migrations` and `render --migrate-command`, end to end against the fake Render API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.fixtures import MakeRenderFake
from tests.fakes.render_api import FakeRenderAPI
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import RenderWorld, cli_uses

MIGRATE = "pnpm db:push"


@pytest.fixture
def fake(make_render_fake: MakeRenderFake, monkeypatch: pytest.MonkeyPatch) -> FakeRenderAPI:
    fake = make_render_fake(postgres_ready_after=0.0, redis_ready_after=0.0)
    return cli_uses(fake, monkeypatch)


def migrations(*args: str) -> CliResult:
    result = run_cli("migrations", *args)
    assert_no_secret(result)
    assert "Traceback" not in result.output
    return result


def commands(fake: FakeRenderAPI, service_id: str) -> dict[str, Any]:
    return dict(fake.service(service_id)["serviceDetails"]["envSpecificDetails"])


def patches(fake: FakeRenderAPI) -> list[Any]:
    return [r.body for r in fake.requests if r.method == "PATCH"]


# -- free services: the build command -----------------------------------------------------------
def test_free_service_gets_migration_before_the_build_step(fake: FakeRenderAPI) -> None:
    service = fake.add_service(
        "authkit-api", plan="free", build_command="pnpm install && pnpm build"
    )
    result = migrations("--service", "authkit-api", "--command", MIGRATE, "--json")
    assert result.exit_code == 0, result.output
    after = commands(fake, service["id"])
    assert after["buildCommand"] == "pnpm install && pnpm db:push && pnpm build"
    assert "preDeployCommand" not in after
    assert patches(fake) == [
        {
            "serviceDetails": {
                "envSpecificDetails": {"buildCommand": "pnpm install && pnpm db:push && pnpm build"}
            }
        }
    ]
    assert fake.deploy_count(service["id"]) == 1
    doc = result.json()
    assert doc["ok"] is True
    assert doc["service"] == {"id": service["id"], "name": "authkit-api", "region": "oregon"}
    assert doc["migration"] == {
        "command": MIGRATE,
        "target": "buildCommand",
        "action": "updated",
        "before": "pnpm install && pnpm build",
        "after": "pnpm install && pnpm db:push && pnpm build",
        "reason": "free instance: no pre-deploy command, so it runs in the build",
    }
    assert doc["deploy"]["id"].startswith("dep-")


def test_rerun_changes_nothing_and_does_not_deploy(fake: FakeRenderAPI) -> None:
    service = fake.add_service(
        "authkit-api", plan="free", build_command="pnpm install && pnpm build"
    )
    assert migrations("--service", "authkit-api", "--command", MIGRATE).exit_code == 0
    fake.reset_log()
    result = migrations("--service", "authkit-api", "--command", MIGRATE, "--json")
    assert result.exit_code == 0, result.output
    assert fake.count("PATCH") == 0
    assert fake.deploy_count(service["id"]) == 1
    doc = result.json()
    assert doc["migration"]["action"] == "unchanged" and doc["deploy"] is None
    assert commands(fake, service["id"])["buildCommand"] == (
        "pnpm install && pnpm db:push && pnpm build"
    )


def test_no_recognizable_build_step_appends(fake: FakeRenderAPI) -> None:
    service = fake.add_service("authkit-api", plan="free", build_command="npm install")
    result = migrations("--service", "authkit-api", "--command", MIGRATE, "--no-deploy")
    assert result.exit_code == 0, result.output
    assert commands(fake, service["id"])["buildCommand"] == "npm install && pnpm db:push"
    assert fake.deploy_count(service["id"]) == 0
    assert "next deploy" in result.stderr


def test_command_already_in_build_is_left_alone(fake: FakeRenderAPI) -> None:
    # Also on a paid service: it already runs on every deploy, so no pre-deploy copy is added.
    service = fake.add_service(
        "authkit-api", plan="starter", build_command="pnpm install && pnpm  db:push && pnpm build"
    )
    result = migrations("--service", "authkit-api", "--command", MIGRATE, "--json")
    assert result.exit_code == 0, result.output
    assert fake.count("PATCH") == 0 and fake.deploy_count(service["id"]) == 0
    assert result.json()["migration"]["action"] == "unchanged"
    assert "preDeployCommand" not in commands(fake, service["id"])


# -- paid services: the pre-deploy command ------------------------------------------------------
def test_paid_service_gets_a_pre_deploy_command(fake: FakeRenderAPI) -> None:
    service = fake.add_service("authkit-api", plan="starter", build_command="npm ci")
    result = migrations("--service", service["id"], "--command", MIGRATE, "--json")
    assert result.exit_code == 0, result.output
    # The PATCH puts it directly under serviceDetails; GET shows it in envSpecificDetails (§7).
    assert patches(fake) == [{"serviceDetails": {"preDeployCommand": MIGRATE}}]
    after = commands(fake, service["id"])
    assert after["preDeployCommand"] == MIGRATE and after["buildCommand"] == "npm ci"
    doc = result.json()
    assert doc["migration"]["target"] == "preDeployCommand"
    assert doc["migration"]["action"] == "created" and doc["migration"]["before"] is None
    assert fake.deploy_count(service["id"]) == 1

    fake.reset_log()
    again = migrations("--service", service["id"], "--command", MIGRATE, "--json")
    assert again.exit_code == 0, again.output
    assert fake.count("PATCH") == 0 and fake.deploy_count(service["id"]) == 1
    assert again.json()["migration"]["action"] == "unchanged"


def test_other_pre_deploy_command_needs_force(fake: FakeRenderAPI) -> None:
    service = fake.add_service(
        "authkit-api", plan="standard", pre_deploy_command="python manage.py migrate"
    )
    result = migrations("--service", "authkit-api", "--command", MIGRATE, "--json")
    assert result.exit_code == 1
    error = result.json()["error"]
    assert error["code"] == "plan_conflict" and "python manage.py migrate" in error["message"]
    assert "--force" in error["hint"]
    assert fake.count("PATCH") == 0 and fake.deploy_count(service["id"]) == 0

    result = migrations("--service", "authkit-api", "--command", MIGRATE, "--force", "--json")
    assert result.exit_code == 0, result.output
    assert commands(fake, service["id"])["preDeployCommand"] == MIGRATE
    assert result.json()["migration"]["action"] == "updated"


def test_paid_docker_service_uses_pre_deploy(fake: FakeRenderAPI) -> None:
    service = fake.add_service("authkit-api", plan="starter", runtime="docker")
    result = migrations("--service", "authkit-api", "--command", MIGRATE, "--no-deploy")
    assert result.exit_code == 0, result.output
    assert commands(fake, service["id"])["preDeployCommand"] == MIGRATE
    assert patches(fake) == [{"serviceDetails": {"preDeployCommand": MIGRATE}}]


def test_free_docker_service_is_a_clear_error(fake: FakeRenderAPI) -> None:
    fake.add_service("authkit-api", plan="free", runtime="docker")
    result = migrations("--service", "authkit-api", "--command", MIGRATE)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-2].startswith("error: authkit-api is a Docker service on a free instance")
    assert lines[-1].startswith("hint: upgrade the instance type")
    assert fake.count("PATCH") == 0


# -- dry run, bad input ------------------------------------------------------------------------
def test_dry_run_shows_before_and_after(fake: FakeRenderAPI) -> None:
    service = fake.add_service(
        "authkit-api", plan="free", build_command="pnpm install && pnpm build"
    )
    result = migrations("--service", "authkit-api", "--command", MIGRATE, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Plan (dry run, nothing changed)" in result.stdout
    assert "before: pnpm install && pnpm build" in result.stdout
    assert "after:  pnpm install && pnpm db:push && pnpm build" in result.stdout
    doc = migrations("--service", "authkit-api", "--command", MIGRATE, "--dry-run", "--json")
    assert doc.json()["planned"] is True and doc.json()["migration"]["action"] == "updated"
    assert fake.count("PATCH") == 0 and fake.deploy_count(service["id"]) == 0
    assert commands(fake, service["id"])["buildCommand"] == "pnpm install && pnpm build"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--service", "authkit-api", "--command", "  "], "--command is empty"),
        (["--service", "authkit-api", "--command", "a\nb"], "one line"),
        (
            ["--service", "authkit-api", "--command", "x", "--no-deploy", "--wait-deploy"],
            "contradict",
        ),
        (["--service", "nope", "--command", MIGRATE], "no service named 'nope'"),
        (["--service", "authkit-api"], "--command"),
    ],
    ids=["empty", "multiline", "flags", "unknown-service", "missing"],
)
def test_bad_input_is_one_line_and_exit_2(
    fake: FakeRenderAPI, args: list[str], needle: str
) -> None:
    fake.add_service("authkit-api", plan="free")
    result = migrations(*args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert fake.count("PATCH") == 0


def test_missing_api_key(fake: FakeRenderAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RENDER_API_KEY")
    result = migrations("--service", "authkit-api", "--command", MIGRATE)
    assert result.exit_code == 3 and "RENDER_API_KEY" in result.stderr


def test_wait_deploy(fake: FakeRenderAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.deploy_build_after = 0.0
    fake.deploy_finish_after = 0.0
    fake.add_service("authkit-api", plan="starter")
    result = migrations("--service", "authkit-api", "--command", MIGRATE, "--wait-deploy", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["deploy"]["status"] == "live"


# -- render --migrate-command ------------------------------------------------------------------
def render(*args: str) -> CliResult:
    result = run_cli("render", "--service", "authkit-api", "--yes", "--no-verify", *args)
    assert "Traceback" not in result.output
    return result


def test_render_migrate_command_free_service_one_deploy(fake: FakeRenderAPI) -> None:
    service = fake.add_service(
        "authkit-api", plan="free", build_command="pnpm install && pnpm build"
    )
    result = render("--migrate-command", MIGRATE, "--json")
    assert result.exit_code == 0, result.output
    assert_no_secret(result)
    assert commands(fake, service["id"])["buildCommand"] == (
        "pnpm install && pnpm db:push && pnpm build"
    )
    assert fake.deploy_count(service["id"]) == 1  # one deploy covers env and migration
    doc = result.json()
    assert doc["migration"]["target"] == "buildCommand"
    assert doc["migration"]["action"] == "updated"
    # The PATCH came after the env writes and before the deploy.
    order = [
        (r.method, r.path)
        for r in fake.requests
        if r.method in ("PUT", "PATCH") or r.path.endswith("/deploys") and r.method == "POST"
    ]
    assert [m for m, _ in order] == ["PUT", "PUT", "PATCH", "POST"]

    fake.reset_log()
    again = render("--migrate-command", MIGRATE, "--json")
    assert again.exit_code == 0, again.output
    assert fake.count("PATCH") == 0 and fake.count("PUT") == 0
    assert fake.deploy_count(service["id"]) == 1
    assert again.json()["migration"]["action"] == "unchanged"


def test_render_migrate_command_alone_triggers_the_deploy(fake: FakeRenderAPI) -> None:
    service = fake.add_service("authkit-api", plan="starter")
    assert render().exit_code == 0
    assert fake.deploy_count(service["id"]) == 1
    result = render("--migrate-command", MIGRATE)  # env unchanged, migration new
    assert result.exit_code == 0, result.output
    assert commands(fake, service["id"])["preDeployCommand"] == MIGRATE
    assert fake.deploy_count(service["id"]) == 2
    assert "pre-deploy command: created" in result.stdout


def test_render_migrate_command_dry_run_and_conflict(fake: FakeRenderAPI) -> None:
    service = fake.add_service("authkit-api", plan="starter", pre_deploy_command="./migrate.sh")
    result = render("--migrate-command", MIGRATE, "--dry-run", "--json")
    assert result.exit_code == 1
    assert result.json()["error"]["code"] == "plan_conflict"
    assert fake.count("POST", "/postgres") == 0 and fake.count("PATCH") == 0
    result = render("--migrate-command", MIGRATE, "--dry-run", "--force", "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["planned"] is True
    assert doc["migration"]["before"] == "./migrate.sh" and doc["migration"]["after"] == MIGRATE
    assert commands(fake, service["id"])["preDeployCommand"] == "./migrate.sh"


def test_render_rejects_empty_migrate_command(fake: FakeRenderAPI) -> None:
    fake.add_service("authkit-api", plan="free")
    result = render("--migrate-command", " ")
    assert result.exit_code == 2 and "--migrate-command is empty" in result.stderr


# -- the build-command rewrite, unit by unit ----------------------------------------------------
@pytest.mark.parametrize(
    ("build", "expected"),
    [
        ("pnpm install && pnpm build", "pnpm install && pnpm db:push && pnpm build"),
        ("pnpm install&&pnpm build", "pnpm install&&pnpm db:push && pnpm build"),
        (
            "npm ci && npm run build:prod && npm prune",
            "npm ci && pnpm db:push && npm run build:prod && npm prune",
        ),
        ("yarn && yarn workspace api build", "yarn && pnpm db:push && yarn workspace api build"),
        ("go build -o app .", "pnpm db:push && go build -o app ."),
        ("npm install", "npm install && pnpm db:push"),
        ("pip install -r requirements.txt", "pip install -r requirements.txt && pnpm db:push"),
        ("", "pnpm db:push"),
        (
            "pnpm install && pnpm db:push && pnpm build",
            "pnpm install && pnpm db:push && pnpm build",
        ),
        # Not a plain && chain: never splice inside quotes or after `;`/`||`; append instead.
        ('sh -c "npm ci && npm run build"', 'sh -c "npm ci && npm run build" && pnpm db:push'),
        ("npm ci; npm run build", "npm ci; npm run build && pnpm db:push"),
        ("npm ci || true && npm run build", "npm ci || true && npm run build && pnpm db:push"),
        ("./build.sh", "./build.sh && pnpm db:push"),
    ],
)
def test_insert_migration(build: str, expected: str) -> None:
    from authkit_setup.pipeline.migrate import insert_migration

    assert insert_migration(build, MIGRATE) == expected


def test_runs_command_matches_whole_steps_only() -> None:
    from authkit_setup.pipeline.migrate import runs_command

    assert runs_command("a &&  pnpm   db:push && b", MIGRATE)
    assert not runs_command("pnpm db:push:all && b", MIGRATE)
    assert runs_command("x && pnpm gen && pnpm db:push", "pnpm gen && pnpm db:push")
    assert not runs_command(None, MIGRATE)


def test_render_migrate_command_with_real_stores(render_world: RenderWorld) -> None:
    """The whole pipeline against real Postgres/Redis behind the fake: verified, one deploy."""
    fake = render_world.fake
    result = run_cli("render", "--service", "authkit-api", "--yes", "--migrate-command", MIGRATE)
    assert result.exit_code == 0, result.output
    assert_no_secret(result)
    assert commands(fake, render_world.service_id)["preDeployCommand"] == MIGRATE
    assert fake.deploy_count(render_world.service_id) == 1
    assert "pre-deploy command: created" in result.stdout
    assert "postgres" in result.stdout.lower()
