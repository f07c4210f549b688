"""`authkit-setup render --postgres neon|supabase|render --redis upstash|render` end to end:
the fake Render API plus the Neon, Supabase and Upstash fakes, whose stores are real logins on
the test PostgreSQL and Redis behind TLS, so the verification step connects for real."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.local_backend import CloudFakes
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import RenderWorld

KEYS_FOR = {"render": {"DATABASE_URL"}, "neon": {"DATABASE_URL", "DIRECT_URL"}}
KEYS_FOR["supabase"] = KEYS_FOR["neon"]


def render(world: RenderWorld, cloud: CloudFakes, *args: str) -> CliResult:
    result = run_cli("render", "--service", "authkit-api", "--yes", *args)
    assert "Traceback" not in result.output
    assert_no_secret(result)
    return result


def render_creates(world: RenderWorld) -> int:
    return world.fake.count("POST", "/postgres") + world.fake.count("POST", "/key-value")


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@pytest.mark.parametrize("redis_provider", ["render", "upstash"])
@pytest.mark.parametrize("pg_provider", ["render", "neon", "supabase"])
def test_every_provider_combination_then_an_idempotent_rerun(
    render_world: RenderWorld, cloud_fakes: CloudFakes, pg_provider: str, redis_provider: str
) -> None:
    fake = render_world.fake
    before = fake.env(render_world.service_id)
    args = ["--postgres", pg_provider, "--redis", redis_provider, "--json"]
    if redis_provider == "render":
        args += ["--redis-allow-cidr", "127.0.0.1/32"]  # so Render Key Value is verified too

    result = render(render_world, cloud_fakes, *args)
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["ok"] is True
    assert [(r["kind"], r["provider"], r["created"]) for r in doc["resources"]] == [
        ("postgres", pg_provider, True),
        ("redis", redis_provider, True),
    ]
    expected_keys = KEYS_FOR[pg_provider] | {"REDIS_URL"}
    assert {e["key"]: e["action"] for e in doc["env"]} == dict.fromkeys(expected_keys, "created")
    assert fake.deploy_count(render_world.service_id) == 1
    assert [(c["target"], c["ok"], c["skipped"]) for c in doc["checks"]] == [
        ("postgres", True, False),
        ("redis", True, False),
    ]
    env = fake.env(render_world.service_id)
    assert {k: v for k, v in env.items() if k not in expected_keys} == before

    # Each provider's URL rules, on what was written into the service.
    database_url, redis_url = env["DATABASE_URL"], env["REDIS_URL"]
    if pg_provider != "render":
        assert query(database_url)["sslmode"] == ["require"]
        assert query(database_url)["pgbouncer"] == ["true"]
        assert "pgbouncer" not in query(env["DIRECT_URL"])
        assert query(env["DIRECT_URL"])["sslmode"] == ["require"]
    if pg_provider == "neon":
        (project,) = cloud_fakes.neon.projects_named("authkit-db")
        assert project["region_id"] == "aws-us-east-2"  # ohio
        body = cloud_fakes.neon.requests.last("POST", "/projects").body["project"]
        assert body["branch"] == {
            "name": "main",
            "database_name": "authkit",
            "role_name": "authkit_user",
        }
    if pg_provider == "supabase":
        (project,) = cloud_fakes.supabase.projects_named("authkit-db")
        assert project["region"] == "us-east-2"
        creds = cloud_fakes.supabase.credentials(project["ref"])
        assert urlsplit(database_url).password == creds.password  # the password we chose
        assert "Supabase never returns the database password" in result.stderr
    if redis_provider == "upstash":
        (db,) = cloud_fakes.upstash.databases_named("authkit-redis")
        assert db["primary_region"] == "us-east-2"
        parts = urlsplit(redis_url)
        assert (parts.scheme, parts.username, parts.password) == (
            "rediss",
            "default",
            db["password"],
        )

    # The re-run: nothing created, nothing written, no deploy.
    fake.reset_log()
    cloud_fakes.reset_logs()
    again = render(render_world, cloud_fakes, *args)
    assert again.exit_code == 0, again.output
    doc = again.json()
    assert render_creates(render_world) == 0 and cloud_fakes.creates() == 0
    assert fake.count("PUT") == 0
    assert fake.deploy_count(render_world.service_id) == 1
    assert {e["action"] for e in doc["env"]} == {"unchanged"}
    assert all(r["created"] is False for r in doc["resources"])
    assert fake.env(render_world.service_id) == env
    assert all(c["ok"] for c in doc["checks"])


def test_dry_run_with_providers_changes_nothing(
    render_world: RenderWorld, cloud_fakes: CloudFakes
) -> None:
    result = render(
        render_world, cloud_fakes, "--postgres", "neon", "--redis", "upstash", "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert [(r["provider"], r["region"], r["action"]) for r in doc["resources"]] == [
        ("neon", "aws-us-east-2", "create"),
        ("upstash", "us-east-2", "create"),
    ]
    assert cloud_fakes.creates() == 0 and render_creates(render_world) == 0
    assert render_world.fake.count("PUT") == 0


def test_provider_region_overrides_the_mapping(
    render_world: RenderWorld, cloud_fakes: CloudFakes
) -> None:
    result = render(
        render_world,
        cloud_fakes,
        *("--postgres", "neon", "--redis", "upstash", "--provider-region", "eu-central-1"),
        "--no-verify",
    )
    assert result.exit_code == 0, result.output
    assert cloud_fakes.neon.projects_named("authkit-db")[0]["region_id"] == "aws-eu-central-1"
    assert cloud_fakes.upstash.databases_named("authkit-redis")[0]["primary_region"] == (
        "eu-central-1"
    )


def test_existing_store_in_another_region_stops_before_any_change(
    render_world: RenderWorld, cloud_fakes: CloudFakes
) -> None:
    cloud_fakes.neon.add_project("authkit-db", region_id="aws-eu-central-1")
    cloud_fakes.reset_logs()
    result = render(render_world, cloud_fakes, "--postgres", "neon", "--redis", "upstash", "--json")
    assert result.exit_code == 1
    error = result.json()["error"]
    assert error["code"] == "plan_conflict" and "aws-eu-central-1" in error["message"]
    assert "--provider-region aws-eu-central-1" in error["hint"]
    assert cloud_fakes.creates() == 0 and render_world.fake.count("PUT") == 0


def test_reused_supabase_project_needs_its_password(
    render_world: RenderWorld, cloud_fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud_fakes.supabase.add_project("authkit-db", "Known-Password-42", region="us-east-2")
    result = render(render_world, cloud_fakes, "--postgres", "supabase", "--redis", "upstash")
    assert result.exit_code == 3
    assert "--supabase-db-password" in result.stderr and "SUPABASE_DB_PASSWORD" in result.stderr
    assert cloud_fakes.creates() == 0 and render_world.fake.count("PUT") == 0

    monkeypatch.setenv("SUPABASE_DB_PASSWORD", "Known-Password-42")
    result = render(
        render_world, cloud_fakes, "--postgres", "supabase", "--redis", "upstash", "--json"
    )
    assert result.exit_code == 0, result.output
    assert_no_secret(result, "Known-Password-42")
    assert result.json()["checks"][0]["ok"] is True
    assert urlsplit(render_world.fake.env(render_world.service_id)["DATABASE_URL"]).password == (
        "Known-Password-42"
    )


@pytest.mark.parametrize(
    ("args", "unset", "flag", "variable"),
    [
        (("--postgres", "neon"), "NEON_API_KEY", "--neon-api-key", "NEON_API_KEY"),
        (
            ("--postgres", "supabase"),
            "SUPABASE_ACCESS_TOKEN",
            "--supabase-access-token",
            "SUPABASE_ACCESS_TOKEN",
        ),
        (("--redis", "upstash"), "UPSTASH_API_KEY", "--upstash-api-key", "UPSTASH_API_KEY"),
        (("--redis", "upstash"), "UPSTASH_EMAIL", "--upstash-email", "UPSTASH_EMAIL"),
    ],
    ids=["neon", "supabase", "upstash-key", "upstash-email"],
)
def test_missing_credentials_fail_before_anything_happens(
    render_world: RenderWorld,
    cloud_fakes: CloudFakes,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    unset: str,
    flag: str,
    variable: str,
) -> None:
    monkeypatch.delenv(unset)
    render_world.fake.reset_log()
    result = render(render_world, cloud_fakes, *args, "--json")
    assert result.exit_code == 3, result.output
    assert result.json()["error"]["code"] == "missing_credentials"
    assert flag in result.stderr and variable in result.stderr
    assert render_world.fake.count() == 0
    assert all(fake.count() == 0 for fake in cloud_fakes.all)


def test_credentials_from_flags_and_dotenv(
    render_world: RenderWorld, cloud_fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.neon_api import FAKE_NEON_KEY
    from tests.fakes.upstash_api import FAKE_UPSTASH_API_KEY

    monkeypatch.delenv("NEON_API_KEY")
    monkeypatch.delenv("UPSTASH_API_KEY")
    Path(".env").write_text(f"NEON_API_KEY={FAKE_NEON_KEY}\n")
    result = render(
        render_world,
        cloud_fakes,
        *("--postgres", "neon", "--redis", "upstash", "--no-verify"),
        *("--upstash-api-key", FAKE_UPSTASH_API_KEY),
    )
    assert result.exit_code == 0, result.output


def test_wrong_provider_names_are_usage_errors(
    render_world: RenderWorld, cloud_fakes: CloudFakes
) -> None:
    result = render(render_world, cloud_fakes, "--postgres", "upstash")
    assert result.exit_code == 2
    assert "--postgres 'upstash' is not a postgres provider" in result.stderr
    assert "use one of neon, render, supabase" in result.stderr
    result = render(render_world, cloud_fakes, "--redis", "neon")
    assert result.exit_code == 2 and "upstash" in result.stderr
    result = render(render_world, cloud_fakes, "--provider-region", "us-east-2")
    assert result.exit_code == 2 and "Neon, Supabase and Upstash" in result.stderr
    result = render(render_world, cloud_fakes, "--postgres", "neon", "--provider-region", "mars-1")
    assert result.exit_code == 2 and "not a Neon region" in result.stderr
    assert cloud_fakes.creates() == 0


def test_neon_on_the_render_flow_writes_direct_url_to_the_env_file(
    render_world: RenderWorld, cloud_fakes: CloudFakes
) -> None:
    path = Path("dev.env")
    path.write_text("# mine\nKEEP=1\n")
    result = render(
        render_world, cloud_fakes, "--postgres", "neon", "--env-file", str(path), "--no-verify"
    )
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text.startswith("# mine\nKEEP=1\n")
    assert "\nDATABASE_URL=postgresql://" in text and "\nDIRECT_URL=postgresql://" in text
