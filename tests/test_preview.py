"""Preview environments: `render --preview`, `teardown`, two runs at once, and GitHub Actions."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from authkit_setup.ci import format_lines
from authkit_setup.output import Output
from authkit_setup.pipeline.names import belongs_to_preview, store_names, validate_preview
from tests.action_runner import parse_github_file
from tests.fakes.fixtures import MakeRenderFake
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI, Fault
from tests.helpers import CliResult, assert_no_secret, run_cli, run_cli_process
from tests.render_env import RenderWorld, cli_uses

PAID = ("--postgres-plan", "basic_256mb")
DELETED_KEYS = {"kind", "provider", "name", "id"}


def password(url: str) -> str:
    return unquote(urlsplit(url).password or "")


def secrets_of(fake: FakeRenderAPI) -> list[str]:
    """The API key and every password the fake handed out, for leak checks."""
    found = [FAKE_RENDER_KEY]
    for kind, key in (("postgres", "postgres"), ("key-value", "keyValue")):
        page = httpx.get(
            f"{fake.base_url}/{kind}",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"},
        ).json()
        for entry in page:
            info = fake.connection_info(entry[key]["id"])
            found.append(password(info["externalConnectionString"]))
    return found


def preview_render(world: RenderWorld, preview: str, *args: str) -> CliResult:
    result = run_cli(
        "render", "--service", "authkit-api", "--preview", preview, "--yes", *PAID, *args
    )
    assert_no_secret(result)
    return result


def create_store(fake: FakeRenderAPI, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    """Create a store straight through the API, as someone else (or another tool) would."""
    body: dict[str, Any] = {"name": name, "ownerId": fake.owner_id, "region": "ohio"}
    body["plan"] = "basic_256mb" if kind == "postgres" else "starter"
    if kind == "postgres":
        body["version"] = "16"
    body.update(extra)
    response = httpx.post(
        f"{fake.base_url}/{kind}",
        headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"},
        json=body,
    )
    response.raise_for_status()
    return dict(response.json())


# -- names ---------------------------------------------------------------------------------------


def test_store_names_in_one_place() -> None:
    assert store_names("pr-123") == store_names("pr-123", "authkit-db", "authkit-redis")
    names = store_names("pr-123")
    assert (names.db, names.redis) == ("authkit-db-pr-123", "authkit-redis-pr-123")
    assert store_names(None, "db", "kv") == store_names(None, "db", "kv")
    assert (store_names(None).db, store_names(None).redis) == ("authkit-db", "authkit-redis")
    assert store_names("7", "mydb", "mykv").db == "mydb-7"


@pytest.mark.parametrize("name", ["pr-1", "7", "a" * 40, "feature-x-2", "0-", "pr--1"])
def test_valid_preview_names(name: str) -> None:
    assert validate_preview(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "-pr-1", "PR-1", "pr_1", "pr 1", "pr.1", "a" * 41, "pr-1\n", "prö", "pr-1;rm"],
)
def test_invalid_preview_names_fail_before_any_call(render_fake: FakeRenderAPI, name: str) -> None:
    for command in (
        ["render", "--service", "x", "--preview", name],
        ["teardown", "--preview", name, "--yes"],
        ["status", "--preview", name],
    ):
        result = run_cli(*command)
        assert result.exit_code == 2, (command, result.output)
        assert "not a valid preview name" in result.stderr
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert render_fake.count() == 0


def test_prefix_names_do_not_belong() -> None:
    assert belongs_to_preview("authkit-db-pr-12", "pr-12", "authkit-db")
    assert not belongs_to_preview("authkit-db-pr-1", "pr-12", "authkit-db")
    assert not belongs_to_preview("authkit-db-pr-12", "pr-1", "authkit-db")
    assert not belongs_to_preview("authkit-db-pr-123", "pr-12", "authkit-db")
    assert not belongs_to_preview("authkit-db-pr-12", "12", "authkit-db")
    assert not belongs_to_preview("authkit-db", "pr-12", "authkit-db")
    assert not belongs_to_preview("xauthkit-db-pr-12", "pr-12", "authkit-db")
    assert not belongs_to_preview("authkit-redis-pr-12", "pr-12", "authkit-db")


_preview = st.from_regex(r"[a-z0-9][a-z0-9-]{0,39}", fullmatch=True)


@given(_preview, _preview)
def test_a_store_belongs_to_exactly_one_preview(mine: str, other: str) -> None:
    name = store_names(other).db
    assert belongs_to_preview(name, mine, "authkit-db") == (mine == other)
    assert not belongs_to_preview(store_names(other).redis, mine, "authkit-db")


# -- render --preview ----------------------------------------------------------------------------


def test_free_plan_preview_warns_and_still_works(render_world: RenderWorld) -> None:
    result = run_cli(
        "render", "--service", "authkit-api", "--preview", "pr-5", "--no-verify", "--json"
    )
    assert result.exit_code == 0, result.output
    assert "one free Postgres per workspace" in result.stderr
    assert "--postgres-plan basic_256mb" in result.stderr
    assert [r["name"] for r in result.json()["resources"]] == [
        "authkit-db-pr-5",
        "authkit-redis-pr-5",
    ]
    no_warning = preview_render(render_world, "pr-5", "--no-verify")
    assert no_warning.exit_code == 0 and "free Postgres" not in no_warning.stderr


def test_create_rerun_status_teardown_teardown_again(render_world: RenderWorld) -> None:
    fake, service_id = render_world.fake, render_world.service_id
    before = fake.env(service_id)

    created = preview_render(render_world, "pr-123", "--json")
    assert created.exit_code == 0, created.output
    doc = created.json()
    assert doc["ok"] is True and doc["preview"] == "pr-123"
    assert [(r["name"], r["created"]) for r in doc["resources"]] == [
        ("authkit-db-pr-123", True),
        ("authkit-redis-pr-123", True),
    ]
    (pg,) = fake.postgres_named("authkit-db-pr-123")
    (kv,) = fake.key_values_named("authkit-redis-pr-123")
    assert pg["plan"] == "basic_256mb" and pg["region"] == "ohio"
    env = fake.env(service_id)
    assert env["DATABASE_URL"] == fake.connection_info(pg["id"])["internalConnectionString"]
    assert env["REDIS_URL"] == fake.connection_info(kv["id"])["internalConnectionString"]
    assert doc["checks"][0]["ok"] is True  # verified for real through the external URL

    rerun = preview_render(render_world, "pr-123", "--json")
    assert rerun.exit_code == 0, rerun.output
    assert {e["action"] for e in rerun.json()["env"]} == {"unchanged"}
    assert len(fake.postgres_named("authkit-db-pr-123")) == 1

    status = run_cli("status", "--preview", "pr-123", "--service", "authkit-api", "--json")
    assert status.exit_code == 0, status.output
    stores = status.json()["stores"]
    assert [(s["name"], s["id"], s["status"], s["wired"]) for s in stores] == [
        ("authkit-db-pr-123", pg["id"], "available", True),
        ("authkit-redis-pr-123", kv["id"], "available", True),
    ]

    fake.reset_log()
    down = run_cli("teardown", "--preview", "pr-123", "--service", "authkit-api", "--yes", "--json")
    assert down.exit_code == 0, down.output
    assert down.json() == {
        "ok": True,
        "preview": "pr-123",
        "deleted": [
            {"kind": "postgres", "provider": "render", "name": "authkit-db-pr-123", "id": pg["id"]},
            {"kind": "redis", "provider": "render", "name": "authkit-redis-pr-123", "id": kv["id"]},
        ],
        "env": [
            {"key": "DATABASE_URL", "action": "removed"},
            {"key": "REDIS_URL", "action": "removed"},
        ],
        "already_gone": [],
    }
    assert fake.postgres_named("authkit-db-pr-123") == []
    assert fake.key_values_named("authkit-redis-pr-123") == []
    assert fake.env(service_id) == before  # the 120 other variables, untouched
    assert fake.bulk_env_put_calls == []
    deletes = sorted(r.path for r in fake.requests if r.method == "DELETE")
    assert deletes == sorted(
        [
            f"/postgres/{pg['id']}",
            f"/key-value/{kv['id']}",
            f"/services/{service_id}/env-vars/DATABASE_URL",
            f"/services/{service_id}/env-vars/REDIS_URL",
        ]
    )
    assert "deleted postgres authkit-db-pr-123" in down.stderr

    again = run_cli(
        "teardown", "--preview", "pr-123", "--service", "authkit-api", "--yes", "--json"
    )
    assert again.exit_code == 0, again.output
    assert again.json() == {
        "ok": True,
        "preview": "pr-123",
        "deleted": [],
        "env": [
            {"key": "DATABASE_URL", "action": "absent"},
            {"key": "REDIS_URL", "action": "absent"},
        ],
        "already_gone": [
            {"kind": "postgres", "provider": "render", "name": "authkit-db-pr-123"},
            {"kind": "redis", "provider": "render", "name": "authkit-redis-pr-123"},
        ],
    }
    gone = run_cli("status", "--preview", "pr-123", "--json")
    assert gone.exit_code == 1
    assert [s["status"] for s in gone.json()["stores"]] == ["missing", "missing"]


# -- teardown safety -----------------------------------------------------------------------------


@pytest.fixture
def crowded(make_render_fake: MakeRenderFake, monkeypatch: pytest.MonkeyPatch) -> FakeRenderAPI:
    """Base stores, a neighbouring preview pr-1, look-alike names, and preview pr-12 itself."""
    fake = make_render_fake(postgres_ready_after=0.0, redis_ready_after=0.0)
    cli_uses(fake, monkeypatch)
    base_pg = create_store(fake, "postgres", "authkit-db", plan="free")
    base_kv = create_store(fake, "key-value", "authkit-redis")
    for name in (
        "authkit-db-pr-1",
        "authkit-db-pr-123",
        "authkit-db-pr-12-old",
        "x-authkit-db-pr-12",
    ):
        create_store(fake, "postgres", name)
    for name in ("authkit-redis-pr-1", "authkit-redis-pr-120"):
        create_store(fake, "key-value", name)
    create_store(fake, "postgres", "authkit-db-pr-12")
    create_store(fake, "key-value", "authkit-redis-pr-12")
    base_env = {
        "DATABASE_URL": fake.connection_info(base_pg["id"])["internalConnectionString"],
        "REDIS_URL": fake.connection_info(base_kv["id"])["internalConnectionString"],
        "OTHER": "kept",
    }
    fake.add_service("authkit-api", region="ohio", env=base_env)
    fake.reset_log()
    return fake


def all_names(fake: FakeRenderAPI) -> set[str]:
    headers = {"Authorization": f"Bearer {FAKE_RENDER_KEY}"}
    names = set()
    for kind, key in (("postgres", "postgres"), ("key-value", "keyValue")):
        page = httpx.get(f"{fake.base_url}/{kind}", params={"limit": 100}, headers=headers)
        names |= {e[key]["name"] for e in page.json()}
    return names


def test_teardown_touches_only_the_preview_s_stores(crowded: FakeRenderAPI) -> None:
    fake = crowded
    before = all_names(fake)
    (pr12_pg,) = fake.postgres_named("authkit-db-pr-12")
    (pr12_kv,) = fake.key_values_named("authkit-redis-pr-12")

    result = run_cli(
        "teardown", "--preview", "pr-12", "--service", "authkit-api", "--yes", "--json"
    )
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert [(d["name"], d["id"]) for d in doc["deleted"]] == [
        ("authkit-db-pr-12", pr12_pg["id"]),
        ("authkit-redis-pr-12", pr12_kv["id"]),
    ]
    assert all(set(d) == DELETED_KEYS for d in doc["deleted"])
    # The service points at the base stores: its variables stay.
    assert doc["env"] == [
        {"key": "DATABASE_URL", "action": "kept"},
        {"key": "REDIS_URL", "action": "kept"},
    ]
    assert all_names(fake) == before - {"authkit-db-pr-12", "authkit-redis-pr-12"}
    deletes = [r.path for r in fake.requests if r.method == "DELETE"]
    assert sorted(deletes) == sorted([f"/postgres/{pr12_pg['id']}", f"/key-value/{pr12_kv['id']}"])
    assert fake.count("PUT") == 0

    # pr-1 takes only its own, never pr-12x look-alikes or the base.
    result = run_cli("teardown", "--preview", "pr-1", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert [d["name"] for d in result.json()["deleted"]] == [
        "authkit-db-pr-1",
        "authkit-redis-pr-1",
    ]
    assert result.json()["env"] == []
    assert all_names(fake) == before - {
        "authkit-db-pr-12",
        "authkit-redis-pr-12",
        "authkit-db-pr-1",
        "authkit-redis-pr-1",
    }
    assert {
        "authkit-db",
        "authkit-redis",
        "authkit-db-pr-123",
        "authkit-db-pr-12-old",
    } <= all_names(fake)


def test_base_stores_need_include_base_and_yes(crowded: FakeRenderAPI) -> None:
    fake = crowded
    for args in (["--include-base"], ["--preview", "pr-12", "--include-base"]):
        result = run_cli("teardown", *args, "--json")
        assert result.exit_code == 2, result.output
        assert result.json()["error"]["code"] == "usage"
        assert "--yes" in result.json()["error"]["message"]
    result = run_cli("teardown", "--yes")
    assert result.exit_code == 2 and "--preview" in result.stderr
    assert fake.count() == 0

    result = run_cli(
        "teardown",
        "--preview",
        "pr-12",
        "--include-base",
        "--service",
        "authkit-api",
        "--yes",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert [d["name"] for d in result.json()["deleted"]] == [
        "authkit-db-pr-12",
        "authkit-redis-pr-12",
        "authkit-db",
        "authkit-redis",
    ]
    assert {e["action"] for e in result.json()["env"]} == {"removed"}
    assert fake.env(_service_id(fake)) == {"OTHER": "kept"}
    assert "authkit-db-pr-1" in all_names(fake)


def _service_id(fake: FakeRenderAPI) -> str:
    response = httpx.get(
        f"{fake.base_url}/services",
        params={"name": "authkit-api"},
        headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"},
    )
    return str(response.json()[0]["service"]["id"])


def test_teardown_needs_yes_without_a_terminal(crowded: FakeRenderAPI) -> None:
    result = run_cli("teardown", "--preview", "pr-12")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: teardown deletes stores") and "--yes" in result.stderr
    assert "Traceback" not in result.output
    assert crowded.count() == 0


def test_teardown_dry_run_lists_and_changes_nothing(crowded: FakeRenderAPI) -> None:
    result = run_cli(
        "teardown", "--preview", "pr-12", "--service", "authkit-api", "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["planned"] is True
    assert [d["name"] for d in doc["deleted"]] == ["authkit-db-pr-12", "authkit-redis-pr-12"]
    assert crowded.count("DELETE") == 0
    human = run_cli("teardown", "--preview", "pr-12", "--dry-run")
    assert human.exit_code == 0
    assert "authkit-db-pr-12" in human.stdout and "would delete" in human.stdout


def test_teardown_deletes_duplicates_of_the_exact_name(crowded: FakeRenderAPI) -> None:
    create_store(crowded, "postgres", "authkit-db-pr-12")
    result = run_cli("teardown", "--preview", "pr-12", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert [d["name"] for d in result.json()["deleted"]].count("authkit-db-pr-12") == 2
    assert crowded.postgres_named("authkit-db-pr-12") == []


def test_declined_confirmation_deletes_nothing(crowded: FakeRenderAPI) -> None:
    from authkit_setup.preview.teardown import TeardownDeclined, TeardownOptions, run_teardown
    from authkit_setup.providers.render import RenderClient

    asked: list[str] = []

    def no(question: str) -> bool:
        asked.append(question)
        return False

    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    with RenderClient(token=FAKE_RENDER_KEY, base_url=crowded.base_url) as client:
        with pytest.raises(TeardownDeclined):
            run_teardown(client, TeardownOptions(preview="pr-12"), out, confirm=no)
    assert asked == ["Delete authkit-db-pr-12, authkit-redis-pr-12 and all their data?"]
    assert crowded.count("DELETE") == 0


def test_teardown_with_several_workspaces_needs_a_scope(crowded: FakeRenderAPI) -> None:
    crowded.add_owner("Someone Else")
    result = run_cli("teardown", "--preview", "pr-12", "--yes")
    assert result.exit_code == 2 and "--workspace" in result.stderr
    assert crowded.count("DELETE") == 0
    result = run_cli("teardown", "--preview", "pr-12", "--yes", "--workspace", crowded.owner_id)
    assert result.exit_code == 0, result.output


def test_teardown_resumes_after_a_failed_delete(crowded: FakeRenderAPI) -> None:
    crowded.inject("DELETE", r"/key-value/.*", Fault.status(400, {"message": "try later"}))
    failed = run_cli("teardown", "--preview", "pr-12", "--yes", "--json")
    assert failed.exit_code == 1
    assert failed.json()["ok"] is False and "Traceback" not in failed.output
    resumed = run_cli("teardown", "--preview", "pr-12", "--yes", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert [d["name"] for d in resumed.json()["deleted"]] == ["authkit-redis-pr-12"]
    assert [g["name"] for g in resumed.json()["already_gone"]] == ["authkit-db-pr-12"]


# -- two runs at once ----------------------------------------------------------------------------


def test_two_runs_for_one_preview_end_with_one_store_each(render_world: RenderWorld) -> None:
    fake = render_world.fake
    # Hold the creates (the fake applies a request after the delay) and start the second run
    # while the first one's are held: its look-ups see nothing, so it creates both stores too.
    fake.inject("POST", r"/postgres", Fault.slow(3.0), times=2)
    fake.inject("POST", r"/key-value", Fault.slow(3.0), times=2)
    args = ("render", "--service", "authkit-api", "--preview", "pr-7", *PAID, "--yes", "--json")
    results: list[CliResult] = []

    def run() -> None:
        results.append(run_cli_process(*args, "--no-verify"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    threads[0].start()
    fake.wait_until(lambda: fake.count("POST", "/key-value") > 0, "the first run's creates", 60)
    threads[1].start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a run did not finish within 120 s"
    assert [r.exit_code for r in results] == [0, 0], [r.output for r in results]

    pgs, kvs = fake.postgres_named("authkit-db-pr-7"), fake.key_values_named("authkit-redis-pr-7")
    assert len(pgs) == 1 and len(kvs) == 1
    # Both runs created both stores, then settled on the older ones and deleted the newer ones.
    assert fake.count("POST", "/postgres") == 2 and fake.count("DELETE", "/postgres") == 1
    assert fake.count("POST", "/key-value") == 2 and fake.count("DELETE", "/key-value") == 1
    for result in results:
        ids = [r["id"] for r in result.json()["resources"]]
        assert ids == [pgs[0]["id"], kvs[0]["id"]]
    env = fake.env(render_world.service_id)
    assert env["DATABASE_URL"] == fake.connection_info(pgs[0]["id"])["internalConnectionString"]
    assert env["REDIS_URL"] == fake.connection_info(kvs[0]["id"])["internalConnectionString"]
    assert any("another run created" in r.stderr for r in results)


# -- GitHub Actions ------------------------------------------------------------------------------


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    files = {"output": tmp_path / "github_output", "env": tmp_path / "github_env"}
    for path in files.values():
        path.write_text("")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(files["output"]))
    monkeypatch.setenv("GITHUB_ENV", str(files["env"]))
    return files


def test_github_actions_masks_outputs_and_env(
    render_world: RenderWorld, github: dict[str, Path]
) -> None:
    fake = render_world.fake
    result = run_cli(
        "render", "--service", "authkit-api", "--preview", "pr-9", *PAID, "--github-env",
        "--redis-allow-cidr", "127.0.0.1/32", "--yes", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = result.json()  # stdout is exactly one JSON document: no workflow commands in it
    assert not any(line.startswith("::") for line in result.stdout.splitlines())
    (pg,) = fake.postgres_named("authkit-db-pr-9")
    (kv,) = fake.key_values_named("authkit-redis-pr-9")
    pg_info, kv_info = fake.connection_info(pg["id"]), fake.connection_info(kv["id"])

    lines = result.stderr.splitlines()
    masks = [line.removeprefix("::add-mask::") for line in lines if line.startswith("::add-mask::")]
    kv_password = password(kv_info["externalConnectionString"])
    assert pg_info["password"] in masks and kv_password in masks
    assert pg_info["internalConnectionString"] in masks
    assert pg_info["externalConnectionString"] + "?sslmode=require" in masks
    assert kv_info["externalConnectionString"] in masks
    assert kv_info["internalConnectionString"] not in masks  # no credentials: not a secret
    # Each secret is masked before any line that could carry it.
    first_env_line = next(i for i, line in enumerate(lines) if line.startswith("DATABASE_URL:"))
    last_mask = max(i for i, line in enumerate(lines) if line.startswith("::add-mask::"))
    assert last_mask < first_env_line
    other = "\n".join(line for line in lines if not line.startswith("::add-mask::"))
    for secret in (pg_info["password"], kv_password, FAKE_RENDER_KEY):
        assert secret not in other and secret not in result.stdout

    outputs = parse_github_file(github["output"].read_text())
    assert outputs == {
        "ok": "true",
        "service_id": render_world.service_id,
        "preview": "pr-9",
        "postgres_name": "authkit-db-pr-9",
        "postgres_id": pg["id"],
        "redis_name": "authkit-redis-pr-9",
        "redis_id": kv["id"],
    }
    assert doc["resources"][0]["id"] == pg["id"]
    env = parse_github_file(github["env"].read_text())
    assert env == {
        "DATABASE_URL": pg_info["externalConnectionString"] + "?sslmode=require",
        "REDIS_URL": kv_info["externalConnectionString"],
    }
    # A later step can connect with what --github-env wrote.
    with psycopg.connect(env["DATABASE_URL"], connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    status = run_cli("status", "--preview", "pr-9", "--json")
    assert status.exit_code == 0 and status.json()["ok"] is True
    down = run_cli("teardown", "--preview", "pr-9", "--yes", "--json")
    assert down.exit_code == 0 and len(down.json()["deleted"]) == 2
    outputs = parse_github_file(github["output"].read_text())  # later writes win, as on GitHub
    assert outputs["deleted_count"] == "2" and outputs["postgres_status"] == "available"


def test_github_env_outside_actions_is_a_usage_error(render_world: RenderWorld) -> None:
    result = run_cli("render", "--service", "authkit-api", "--preview", "pr-2", "--github-env")
    assert result.exit_code == 2 and "GITHUB_ENV" in result.stderr
    assert render_world.fake.count() == 0


def test_no_workflow_commands_outside_github_actions(render_world: RenderWorld) -> None:
    result = preview_render(render_world, "pr-3", "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    assert "::add-mask::" not in result.output


def test_github_file_format() -> None:
    text = format_lines({"a": "1", "ok": True, "none": None, "multi": "x\ny"})
    assert text.startswith("a=1\nok=true\nnone=\nmulti<<ghadelimiter_")
    assert parse_github_file(text) == {"a": "1", "ok": "true", "none": "", "multi": "x\ny"}
    with pytest.raises(ValueError):
        format_lines({"bad=key": "1"})


def test_teardown_when_the_preview_service_is_already_gone(crowded: FakeRenderAPI) -> None:
    """Render deletes a pull request's preview service when it closes, maybe first."""
    result = run_cli(
        "teardown", "--preview", "pr-12", "--service", "authkit-api-pr-12", "--yes", "--json"
    )
    assert result.exit_code == 0, result.output
    assert [d["name"] for d in result.json()["deleted"]] == [
        "authkit-db-pr-12",
        "authkit-redis-pr-12",
    ]
    assert result.json()["env"] == []
    assert "no service 'authkit-api-pr-12'" in result.stderr
    # An ambiguous name still stops: two services named alike are not "gone".
    crowded.add_service("twin", region="ohio")
    crowded.add_service("twin", region="ohio")
    twin = run_cli("teardown", "--preview", "pr-1", "--service", "twin", "--yes")
    assert twin.exit_code == 2 and "2 services are named" in twin.stderr
    assert "authkit-db-pr-1" in all_names(crowded)
