"""Previews on Neon / Supabase / Upstash: `render --preview`, `status`, `teardown` end to end.

A Neon preview is the branch `preview/pr-N` in the base project `authkit-db` (Neon's
recommendation, neon-supabase-upstash.md §1.4); Supabase and Upstash previews are stores named
with the preview suffix, like Render's. The fake Render API holds the service; the cloud fakes'
stores are real logins on the test servers, so verification connects for real.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.local_backend import CloudFakes
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import RenderWorld

PREVIEW = "pr-123"
SERVICE = ("--service", "authkit-api")


def cli(cloud: CloudFakes, *args: str) -> CliResult:
    result = run_cli(*args)
    assert "Traceback" not in result.output
    assert_no_secret(result)
    return result


def neon_base(cloud: CloudFakes) -> dict[str, Any]:
    """The base project a Neon preview branches from (as `render --postgres neon` makes it)."""
    created = cloud.neon.add_project(
        "authkit-db", region_id="aws-us-east-2", database_name="authkit", role_name="authkit_user"
    )
    return dict(created["project"])


def branch_names(cloud: CloudFakes, project_id: str) -> list[str]:
    return sorted(b["name"] for b in cloud.neon.branches(project_id))


@pytest.mark.parametrize("pg_provider", ["neon", "supabase"])
def test_preview_create_rerun_status_teardown_teardown_again(
    render_world: RenderWorld, cloud_fakes: CloudFakes, pg_provider: str
) -> None:
    fake, service_id = render_world.fake, render_world.service_id
    before = fake.env(service_id)
    providers = ("--postgres", pg_provider, "--redis", "upstash")
    db_name = "preview/pr-123" if pg_provider == "neon" else "authkit-db-pr-123"
    project: dict[str, Any] = neon_base(cloud_fakes) if pg_provider == "neon" else {}

    created = cli(
        cloud_fakes, "render", *SERVICE, "--preview", PREVIEW, *providers, "--yes", "--json"
    )
    assert created.exit_code == 0, created.output
    doc = created.json()
    assert doc["ok"] is True and doc["preview"] == PREVIEW
    assert [(r["provider"], r["name"], r["created"]) for r in doc["resources"]] == [
        (pg_provider, db_name, True),
        ("upstash", "authkit-redis-pr-123", True),
    ]
    assert [(c["target"], c["ok"]) for c in doc["checks"]] == [("postgres", True), ("redis", True)]
    env = fake.env(service_id)
    assert {"DATABASE_URL", "DIRECT_URL", "REDIS_URL"} <= set(env)
    (redis_db,) = cloud_fakes.upstash.databases_named("authkit-redis-pr-123")
    assert cloud_fakes.upstash.databases_named("authkit-redis") == []
    if pg_provider == "neon":
        # A branch in the base project, not a project of its own.
        assert [p["id"] for p in cloud_fakes.neon.projects_named("authkit-db")] == [project["id"]]
        posts = [r.path for r in cloud_fakes.neon.requests if r.method == "POST"]
        assert posts == [f"/projects/{project['id']}/branches"]  # no project created
        assert branch_names(cloud_fakes, project["id"]) == ["main", "preview/pr-123"]
        body = cloud_fakes.neon.requests.last("POST", f"/projects/{project['id']}/branches").body
        assert body["branch"]["name"] == "preview/pr-123" and "parent_id" in body["branch"]
        assert body["endpoints"] == [{"type": "read_write"}]
        assert env["DIRECT_URL"] != env["DATABASE_URL"]
        (branch,) = [
            b for b in cloud_fakes.neon.branches(project["id"]) if b["name"] == "preview/pr-123"
        ]
        db_id = branch["id"]
    else:
        (sb,) = cloud_fakes.supabase.projects_named("authkit-db-pr-123")
        assert cloud_fakes.supabase.projects_named("authkit-db") == []
        db_id = sb["ref"]

    # The re-run creates nothing and changes nothing.
    cloud_fakes.reset_logs()
    fake.reset_log()
    rerun = cli(
        cloud_fakes, "render", *SERVICE, "--preview", PREVIEW, *providers, "--yes", "--json"
    )
    assert rerun.exit_code == 0, rerun.output
    assert all(r["created"] is False for r in rerun.json()["resources"])
    assert {e["action"] for e in rerun.json()["env"]} == {"unchanged"}
    assert cloud_fakes.creates() == 0 and cloud_fakes.neon.count("POST") == 0
    assert fake.count("PUT") == 0
    assert fake.env(service_id) == env

    status = cli(cloud_fakes, "status", "--preview", PREVIEW, *SERVICE, *providers, "--json")
    assert status.exit_code == 0, status.output
    stores = status.json()["stores"]
    assert [(s["provider"], s["name"], s["id"], s["wired"]) for s in stores] == [
        (pg_provider, db_name, db_id, True),
        ("upstash", "authkit-redis-pr-123", redis_db["database_id"], True),
    ]
    for entry in stores:
        assert entry["region"] and entry["created_at"]
        assert entry["pitr"] is None and entry["expires_at"] is None
    assert stores[0]["plan"] is None  # Neon / Supabase do not say

    down = cli(
        cloud_fakes, "teardown", "--preview", PREVIEW, *SERVICE, *providers, "--yes", "--json"
    )
    assert down.exit_code == 0, down.output
    doc = down.json()
    assert [(d["provider"], d["name"], d["id"]) for d in doc["deleted"]] == [
        (pg_provider, db_name, db_id),
        ("upstash", "authkit-redis-pr-123", redis_db["database_id"]),
    ]
    assert {e["key"]: e["action"] for e in doc["env"]} == {
        "DATABASE_URL": "removed",
        "REDIS_URL": "removed",
        "DIRECT_URL": "removed",
    }
    assert fake.env(service_id) == before
    assert cloud_fakes.upstash.databases_named("authkit-redis-pr-123") == []
    if pg_provider == "neon":
        assert branch_names(cloud_fakes, project["id"]) == ["main"]  # the project stays
    else:
        assert cloud_fakes.supabase.projects_named("authkit-db-pr-123") == []

    again = cli(
        cloud_fakes, "teardown", "--preview", PREVIEW, *SERVICE, *providers, "--yes", "--json"
    )
    assert again.exit_code == 0, again.output
    doc = again.json()
    assert doc["deleted"] == []
    assert [(g["provider"], g["name"]) for g in doc["already_gone"]] == [
        (pg_provider, db_name),
        ("upstash", "authkit-redis-pr-123"),
    ]
    gone = cli(cloud_fakes, "status", "--preview", PREVIEW, *providers, "--json")
    assert gone.exit_code == 1
    assert [s["status"] for s in gone.json()["stores"]] == ["missing", "missing"]


def test_neon_teardown_deletes_only_its_own_branch(
    render_world: RenderWorld, cloud_fakes: CloudFakes
) -> None:
    neon = cloud_fakes.neon
    project = neon_base(cloud_fakes)
    other = neon.add_project("authkit-db-pr-12", region_id="aws-us-east-2")["project"]
    for name in ("preview/pr-1", "preview/pr-12", "preview/pr-123", "pr-12"):
        neon.add_branch(project["id"], name)
    (mine,) = [b for b in neon.branches(project["id"]) if b["name"] == "preview/pr-12"]
    neon.reset_log()

    result = cli(
        cloud_fakes, "teardown", "--preview", "pr-12", "--postgres", "neon", "--yes", "--json"
    )
    assert result.exit_code == 0, result.output
    assert [(d["provider"], d["name"], d["id"]) for d in result.json()["deleted"]] == [
        ("neon", "preview/pr-12", mine["id"]),
    ]
    deletes = [r.path for r in neon.requests if r.method == "DELETE"]
    assert deletes == [f"/projects/{project['id']}/branches/{mine['id']}"]
    assert branch_names(cloud_fakes, project["id"]) == [
        "main",
        "pr-12",
        "preview/pr-1",
        "preview/pr-123",
    ]
    assert [p["id"] for p in neon.projects_named("authkit-db")] == [project["id"]]
    assert neon.projects_named("authkit-db-pr-12") == [neon.project(other["id"])]


def test_neon_preview_needs_the_base_project(
    render_world: RenderWorld, cloud_fakes: CloudFakes
) -> None:
    result = cli(
        cloud_fakes, "render", *SERVICE, "--preview", PREVIEW, "--postgres", "neon", "--yes"
    )
    assert result.exit_code == 2, result.output
    assert "no Neon project named 'authkit-db'" in result.stderr
    assert cloud_fakes.neon.count("POST") == 0
    assert render_world.fake.count("PUT") == 0


def test_neon_branch_that_already_exists_is_reused(
    render_world: RenderWorld, cloud_fakes: CloudFakes
) -> None:
    """A 409 "branch already exists" (e.g. a concurrent run) means: look it up and use it."""
    from authkit_setup.providers.base import Kind, StoreSpec
    from authkit_setup.providers.neon import NeonBranchStores, NeonClient, NeonStores
    from tests.fakes.neon_api import FAKE_NEON_KEY

    project = neon_base(cloud_fakes)
    existing = cloud_fakes.neon.add_branch(project["id"], "preview/pr-7")["branch"]
    client = NeonClient(token=FAKE_NEON_KEY, base_url=cloud_fakes.neon.base_url)
    try:
        branches = NeonBranchStores(NeonStores(client, role="authkit_user"), "authkit-db")
        spec = StoreSpec(Kind.POSTGRES, "preview/pr-7", "aws-us-east-2", "default")
        store = branches.create(spec)
    finally:
        client.close()
    assert (store.id, store.name, store.created) == (existing["id"], "preview/pr-7", False)
    assert cloud_fakes.neon.count("POST", f"/projects/{project['id']}/branches") == 1
