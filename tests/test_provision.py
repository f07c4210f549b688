"""`authkit-setup provision`: Neon / Supabase + Upstash into a local .env (or stdout), end to end
against the fakes, whose stores are real logins on the test servers behind TLS."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fakes.local_backend import CloudFakes
from tests.helpers import CliResult, assert_no_secret, run_cli

ENV_TEXT = "# my app\nexport APP_NAME=authkit\n\n# keep me\nSECRET_THING='x y'\n"


def provision(cloud: CloudFakes, *args: str, secrets_may_show: bool = False) -> CliResult:
    result = run_cli("provision", *args)
    assert "Traceback" not in result.output
    if not secrets_may_show:
        assert_no_secret(result)
    return result


def dotenv(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@pytest.mark.parametrize("pg_provider", ["neon", "supabase"])
def test_provision_into_a_dotenv_then_rerun(cloud_fakes: CloudFakes, pg_provider: str) -> None:
    path = Path(".env")
    path.write_text(ENV_TEXT)
    args = ("--postgres", pg_provider, "--redis", "upstash", "--env-file", ".env", "--json")

    result = provision(cloud_fakes, *args)
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["ok"] is True
    assert [(r["kind"], r["provider"], r["created"]) for r in doc["resources"]] == [
        ("postgres", pg_provider, True),
        ("redis", "upstash", True),
    ]
    assert doc["env_file"] == {
        "path": ".env",
        "changes": {"DATABASE_URL": "created", "DIRECT_URL": "created", "REDIS_URL": "created"},
    }
    assert [(c["target"], c["ok"]) for c in doc["checks"]] == [("postgres", True), ("redis", True)]
    assert all("****" in url for url in doc["urls"].values())  # masked without --show-secrets

    text = path.read_text()
    assert text.startswith(ENV_TEXT)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    values = dotenv(path)
    assert values["APP_NAME"] == "authkit" and values["SECRET_THING"] == "x y"
    assert values["DATABASE_URL"].endswith("sslmode=require&pgbouncer=true")
    assert values["DIRECT_URL"].endswith("sslmode=require")
    assert values["REDIS_URL"].startswith("rediss://default:")
    assert len(cloud_fakes.upstash.databases_named("authkit-redis")) == 1

    cloud_fakes.reset_logs()
    again = provision(cloud_fakes, *args)
    assert again.exit_code == 0, again.output
    doc = again.json()
    assert cloud_fakes.creates() == 0
    assert set(doc["env_file"]["changes"].values()) == {"unchanged"}
    assert all(r["created"] is False for r in doc["resources"])
    assert path.read_text() == text
    assert all(c["ok"] for c in doc["checks"])


def test_show_secrets_prints_working_urls(cloud_fakes: CloudFakes) -> None:
    result = provision(
        cloud_fakes,
        *("--postgres", "neon", "--redis", "upstash", "--json", "--show-secrets", "--no-verify"),
        secrets_may_show=True,
    )
    assert result.exit_code == 0, result.output
    urls = result.json()["urls"]
    assert set(urls) == {"DATABASE_URL", "DIRECT_URL", "REDIS_URL"}
    (project,) = cloud_fakes.neon.projects_named("authkit-db")
    assert urlsplit(urls["DATABASE_URL"]).password == (
        cloud_fakes.neon.credentials(project["id"]).password
    )
    (db,) = cloud_fakes.upstash.databases_named("authkit-redis")
    assert urlsplit(urls["REDIS_URL"]).password == db["password"]
    # The store passwords are shown, as asked; API keys and tokens stay hidden.
    shown = [cloud_fakes.neon.credentials(project["id"]).password, db["password"]]
    assert_no_secret(result, shown=shown)

    check = run_cli("check", "--database-url", urls["DATABASE_URL"], "--json")
    assert check.exit_code == 0, check.output


def test_human_output_masks_the_urls(cloud_fakes: CloudFakes) -> None:
    result = provision(cloud_fakes, "--postgres", "supabase", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "DATABASE_URL=postgresql://" in result.stdout and ":****@" in result.stdout
    assert "DIRECT_URL=postgresql://" in result.stdout
    assert "Supabase never returns the database password" in result.stderr


def test_supabase_rerun_takes_the_password_from_the_dotenv(
    cloud_fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = ("--postgres", "supabase", "--env-file", "app.env", "--no-verify")
    assert provision(cloud_fakes, *args).exit_code == 0
    written = dotenv(Path("app.env"))["DATABASE_URL"]
    cloud_fakes.reset_logs()
    again = provision(cloud_fakes, *args, "--json")
    assert again.exit_code == 0, again.output
    assert dotenv(Path("app.env"))["DATABASE_URL"] == written
    assert cloud_fakes.creates() == 0

    # On another machine (no saved password), without the .env file and without
    # SUPABASE_DB_PASSWORD, the password is unknown: exit 3 before anything changes.
    monkeypatch.setenv("AUTHKIT_STATE_DIR", str(tmp_path / "other-machine"))
    other = provision(cloud_fakes, "--postgres", "supabase", "--env-file", "fresh.env")
    assert other.exit_code == 3
    assert "--supabase-db-password" in other.stderr and "SUPABASE_DB_PASSWORD" in other.stderr
    assert not Path("fresh.env").exists()


def test_region_maps_to_each_providers_spelling(cloud_fakes: CloudFakes) -> None:
    result = provision(
        cloud_fakes,
        *("--postgres", "neon", "--redis", "upstash", "--region", "frankfurt", "--no-verify"),
    )
    assert result.exit_code == 0, result.output
    assert cloud_fakes.neon.projects_named("authkit-db")[0]["region_id"] == "aws-eu-central-1"
    assert cloud_fakes.upstash.databases_named("authkit-redis")[0]["primary_region"] == (
        "eu-central-1"
    )
    result = provision(
        cloud_fakes, *("--postgres", "supabase", "--provider-region", "aws-ap-southeast-1")
    )
    assert result.exit_code == 0, result.output
    body = cloud_fakes.supabase.requests.last("POST", "/v1/projects").body
    assert body["region"] == "ap-southeast-1"
    assert body["organization_slug"] == cloud_fakes.supabase.org_slug


def test_foreign_url_in_the_dotenv_needs_force(cloud_fakes: CloudFakes) -> None:
    path = Path(".env")
    path.write_text("DATABASE_URL=postgresql://me:hunter2secret@db.example.com/app\n")
    result = provision(
        cloud_fakes, "--postgres", "neon", "--env-file", ".env", "--json", "--no-verify"
    )
    assert result.exit_code == 1
    assert result.json()["error"]["code"] == "plan_conflict"
    assert "--force" in result.json()["error"]["hint"]
    assert_no_secret(result, "hunter2secret")
    assert cloud_fakes.creates() == 0
    result = provision(cloud_fakes, "--postgres", "neon", "--env-file", ".env", "--force")
    assert result.exit_code == 0, result.output
    assert "db.example.com" not in path.read_text()


def test_dry_run_creates_nothing(cloud_fakes: CloudFakes) -> None:
    result = provision(
        cloud_fakes, "--postgres", "neon", "--redis", "upstash", "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["planned"] is True
    assert [(r["region"], r["action"]) for r in doc["resources"]] == [
        ("aws-us-east-2", "create"),
        ("us-east-2", "create"),
    ]
    assert cloud_fakes.creates() == 0


@pytest.mark.parametrize(
    ("args", "unset", "flag"),
    [
        (("--postgres", "neon"), "NEON_API_KEY", "--neon-api-key"),
        (("--postgres", "supabase"), "SUPABASE_ACCESS_TOKEN", "--supabase-access-token"),
        (("--redis", "upstash"), "UPSTASH_API_KEY", "--upstash-api-key"),
        (("--redis", "upstash"), "UPSTASH_EMAIL", "--upstash-email"),
    ],
    ids=["neon", "supabase", "upstash-key", "upstash-email"],
)
def test_missing_credentials_exit_3_before_any_call(
    cloud_fakes: CloudFakes,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    unset: str,
    flag: str,
) -> None:
    monkeypatch.delenv(unset)
    both = ("--postgres", "neon", "--redis", "upstash") if "--redis" in args else args
    result = provision(cloud_fakes, *both, "--env-file", ".env")
    assert result.exit_code == 3, result.output
    assert flag in result.stderr and unset in result.stderr
    assert all(fake.count() == 0 for fake in cloud_fakes.all)
    assert not Path(".env").exists()


def test_rejected_key_is_exit_3_and_masked(
    cloud_fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEON_API_KEY", "napi_wrong_wrong_wrong_wrong")
    result = provision(cloud_fakes, "--postgres", "neon")
    assert result.exit_code == 3
    assert "Neon rejected the API key" in result.stderr
    assert_no_secret(result, "napi_wrong_wrong_wrong_wrong")


def test_usage_errors(cloud_fakes: CloudFakes) -> None:
    assert provision(cloud_fakes).exit_code == 2
    result = provision(cloud_fakes, "--postgres", "render")
    assert result.exit_code == 2 and "render --service" in result.stderr
    result = provision(cloud_fakes, "--postgres", "neon", "--region", "mars")
    assert result.exit_code == 2 and "not a Render region" in result.stderr
    result = provision(cloud_fakes, "--postgres", "neon", "--postgres-version", "12")
    assert result.exit_code == 2 and "14 to 18" in result.stderr
    assert all(fake.count() == 0 for fake in cloud_fakes.all)


def test_provision_help_is_fast_and_lists_examples() -> None:
    result = run_cli("provision", "--help")
    assert result.exit_code == 0
    assert "authkit-setup provision --postgres neon --redis upstash --env-file .env" in (
        result.stdout
    )


def test_supabase_password_survives_a_run_stopped_after_the_create(cloud_fakes: CloudFakes) -> None:
    """Supabase never returns the password: it is saved (mode 600) before the create, so a run
    that fails before writing the URLs does not lose it, and the re-run finishes the job."""
    from tests.fakes.common import Fault

    cloud_fakes.supabase.inject(
        "GET", r"/v1/projects/[a-z]+/config/database/pooler", Fault.status(400), times=1
    )
    args = ("--postgres", "supabase", "--env-file", ".env", "--no-verify")
    first = provision(cloud_fakes, *args)
    assert first.exit_code == 1, first.output
    assert not Path(".env").exists()
    vault_file = Path(os.environ["AUTHKIT_STATE_DIR"]) / "secrets.json"
    assert stat.S_IMODE(os.stat(vault_file).st_mode) == 0o600

    again = provision(cloud_fakes, *args)
    assert again.exit_code == 0, again.output
    assert len(cloud_fakes.supabase.projects_named("authkit-db")) == 1
    checked = run_cli("check", "--env-file", ".env")  # the recalled password really logs in
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize("uri_sslmode", [None, "require"], ids=["bare-uri", "sslmode-require"])
def test_neon_uris_with_and_without_sslmode(
    cloud_fakes: CloudFakes, uri_sslmode: str | None
) -> None:
    """Whether Neon's `connection_uri` carries `?sslmode=require` is UNCONFIRMED (the 2024
    recording has none): both shapes must give URLs that require TLS exactly once, and
    verify against the TLS-only test server."""
    from urllib.parse import parse_qs

    cloud_fakes.neon.uri_sslmode = uri_sslmode
    Path(".env").write_text(ENV_TEXT)
    args = ("--postgres", "neon", "--redis", "upstash", "--env-file", ".env", "--json")
    result = provision(cloud_fakes, *args)
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert [(c["target"], c["ok"]) for c in doc["checks"]] == [("postgres", True), ("redis", True)]
    values = dotenv(Path(".env"))
    for key in ("DATABASE_URL", "DIRECT_URL"):
        assert parse_qs(urlsplit(values[key]).query)["sslmode"] == ["require"], key


def test_supabase_pooler_wait_end_to_end(
    cloud_fakes: CloudFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after ACTIVE_HEALTHY the pooler config can still be empty: the run keeps waiting
    until a PRIMARY entry exists, then writes pooler URLs that log in for real."""
    monkeypatch.setattr("authkit_setup.pipeline.wait.FIRST_POLL", 0.2)
    monkeypatch.setattr("authkit_setup.pipeline.wait.MIN_INTERVAL", 0.2)
    cloud_fakes.supabase.pooler_delay_seconds = 1.5
    Path(".env").write_text(ENV_TEXT)
    args = ("--postgres", "supabase", "--redis", "upstash", "--env-file", ".env", "--json")
    result = provision(cloud_fakes, *args)
    assert result.exit_code == 0, result.output
    assert "ACTIVE_HEALTHY, pooler not ready yet" in result.stderr  # it did wait for the pooler
    pooler_reads = [
        r for r in cloud_fakes.supabase.requests if r.path.endswith("/config/database/pooler")
    ]
    # the empty answer at the settle look-up, at least one poll, the read for the URLs
    assert len(pooler_reads) >= 3, [(r.method, r.path) for r in cloud_fakes.supabase.requests]
    doc = result.json()
    assert [(c["target"], c["ok"]) for c in doc["checks"]] == [("postgres", True), ("redis", True)]
    values = dotenv(Path(".env"))
    assert values["DATABASE_URL"].endswith("sslmode=require&pgbouncer=true")  # the pooler's
    assert values["DIRECT_URL"].endswith("sslmode=require")
