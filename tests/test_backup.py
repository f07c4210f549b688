"""`authkit-setup backup` and `flow.backup.backup_facts`, end to end against the fake Render API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fakes.fixtures import MakeRenderFake
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import cli_uses

AUTH = {"Authorization": f"Bearer {FAKE_RENDER_KEY}"}
MASKED_URL = re.compile(
    r"^https://exports\.render\.invalid/dpg-[a-z0-9]+-a/exp-[a-z0-9]+\.dir\.tar\.gz\?\*\*\*\*$"
)


@pytest.fixture
def fake(make_render_fake: MakeRenderFake, monkeypatch: pytest.MonkeyPatch) -> FakeRenderAPI:
    fake = make_render_fake()
    fake.add_service("authkit-api", region="ohio", plan="starter")
    return cli_uses(fake, monkeypatch)


def add_postgres(fake: FakeRenderAPI, plan: str, name: str = "authkit-db") -> dict[str, Any]:
    response = httpx.post(
        f"{fake.base_url}/postgres",
        headers=AUTH,
        json={
            "name": name,
            "ownerId": fake.owner_id,
            "plan": plan,
            "version": "16",
            "region": "ohio",
            "databaseName": "authkit",
            "databaseUser": "authkit_user",
            "ipAllowList": [],
        },
    )
    response.raise_for_status()
    return dict(response.json())


def export_urls(fake: FakeRenderAPI, pg_id: str) -> list[str]:
    response = httpx.get(f"{fake.base_url}/postgres/{pg_id}/export", headers=AUTH)
    response.raise_for_status()
    return [e["url"] for e in response.json()]


def tokens(fake: FakeRenderAPI, pg_id: str) -> list[str]:
    return [url.split("?token=", 1)[1] for url in export_urls(fake, pg_id)]


def backup(fake: FakeRenderAPI, *args: str) -> CliResult:
    result = run_cli("backup", "--service", "authkit-api", *args)
    shown: list[str] = []  # --show-secrets prints the export tokens, nothing else
    if "--show-secrets" in args:
        for pg in fake.postgres_named("authkit-db"):
            shown.extend(tokens(fake, pg["id"]))
    assert_no_secret(result, shown=shown)
    assert "Traceback" not in result.output
    return result


def test_free_database_warns_exports_and_masks_the_link(fake: FakeRenderAPI) -> None:
    pg = add_postgres(fake, "free")
    result = backup(fake, "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert fake.count("POST", f"/postgres/{pg['id']}/export") == 1
    assert doc["ok"] is True and doc["export_started"] is True
    assert doc["database"] == {
        "id": pg["id"],
        "name": "authkit-db",
        "plan": "free",
        "region": "ohio",
        "status": doc["database"]["status"],
    }
    assert doc["pitr"] == "NOT_AVAILABLE" and doc["backups"] is False
    assert doc["expires_at"] == fake.postgres_named("authkit-db")[0]["expiresAt"]
    assert doc["expires_in_days"] in (29, 30)
    [export] = doc["exports"]
    assert export["new"] is True and export["id"].startswith("exp-")
    assert MASKED_URL.match(export["url"]), export["url"]
    [warning] = doc["warnings"]
    assert "free database" in warning and "no backups" in warning and "deletes it on" in warning
    assert "warning: authkit-db is a free database" in result.stderr


def test_paid_database_reports_point_in_time_recovery(fake: FakeRenderAPI) -> None:
    add_postgres(fake, "basic_256mb")
    result = backup(fake, "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["pitr"] == "AVAILABLE" and doc["pitr_starts_at"]
    assert doc["backups"] is True
    assert doc["expires_at"] is None and doc["expires_in_days"] is None
    assert doc["warnings"] == [] and "warning:" not in result.stderr


def test_list_starts_no_export(fake: FakeRenderAPI) -> None:
    pg = add_postgres(fake, "basic_256mb")
    assert backup(fake).exit_code == 0
    assert backup(fake).exit_code == 0
    fake.reset_log()
    result = backup(fake, "--list", "--json")
    assert result.exit_code == 0, result.output
    assert fake.count("POST") == 0
    doc = result.json()
    assert doc["export_started"] is False
    assert len(doc["exports"]) == 2 and not any(e["new"] for e in doc["exports"])
    # Newest first, as Render lists them.
    assert [e["id"] for e in doc["exports"]] == [
        url.rsplit("/", 1)[1].split(".", 1)[0] for url in export_urls(fake, pg["id"])
    ]


def test_human_output(fake: FakeRenderAPI) -> None:
    add_postgres(fake, "free")
    result = backup(fake)
    assert result.exit_code == 0, result.output
    assert "point-in-time recovery: NOT_AVAILABLE" in result.stdout
    assert "backups kept by Render: no (free plan)" in result.stdout
    assert "export: requested" in result.stdout
    export_line = [line for line in result.stdout.splitlines() if "exp-" in line]
    assert len(export_line) == 1 and export_line[0].endswith("?****  (new)")
    assert "warning:" not in result.stdout  # messages stay on stderr


def test_show_secrets_prints_the_links(fake: FakeRenderAPI) -> None:
    pg = add_postgres(fake, "basic_256mb")
    assert backup(fake).exit_code == 0
    [url] = export_urls(fake, pg["id"])
    result = backup(fake, "--list", "--show-secrets", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["exports"][0]["url"] == url
    human = backup(fake, "--list", "--show-secrets")
    assert url in human.stdout
    # Everything else is still masked.
    assert_no_secret(human, shown=tokens(fake, pg["id"]))


def test_db_name_override_and_missing_database(fake: FakeRenderAPI) -> None:
    result = backup(fake)
    assert result.exit_code == 2
    assert "no Postgres named 'authkit-db'" in result.stderr and "--db-name" in result.stderr
    add_postgres(fake, "basic_256mb", name="prod-db")
    result = backup(fake, "--db-name", "prod-db", "--list", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["database"]["name"] == "prod-db"


def test_duplicate_databases_stop(fake: FakeRenderAPI) -> None:
    add_postgres(fake, "basic_256mb")
    add_postgres(fake, "basic_256mb")
    result = backup(fake, "--json")
    assert result.exit_code == 1 and result.json()["error"]["code"] == "plan_conflict"
    assert fake.count("POST", "/postgres/") == 0


def test_unknown_service_is_a_usage_error(fake: FakeRenderAPI) -> None:
    result = run_cli("backup", "--service", "nope")
    assert result.exit_code == 2 and "authkit-api" in result.stderr


def test_backup_facts_for_the_status_command(fake: FakeRenderAPI) -> None:
    from authkit_setup.production.backup import backup_facts
    from authkit_setup.providers.base import Kind
    from authkit_setup.providers.render import RenderClient, RenderStores

    add_postgres(fake, "free")
    with RenderClient(token=FAKE_RENDER_KEY, base_url=fake.base_url) as client:
        [store] = RenderStores(client, fake.owner_id).find(Kind.POSTGRES, "authkit-db")
        assert store.expires_at is not None
        expires = datetime.fromisoformat(store.expires_at.replace("Z", "+00:00"))
        facts = backup_facts(client, store, now=expires - timedelta(days=3, hours=2))
        assert facts == {
            "pitr": "NOT_AVAILABLE",
            "pitr_starts_at": None,
            "expires_at": store.expires_at,
            "expires_in_days": 3,
            "backups": False,
            "plan": "free",
        }
        expired = backup_facts(client, store, now=expires + timedelta(hours=1))
        assert expired["expires_in_days"] == -1
        assert backup_facts(client, store)["expires_in_days"] in (29, 30)


def test_backup_facts_unknown_recovery(fake: FakeRenderAPI) -> None:
    from authkit_setup.production.backup import backup_facts
    from authkit_setup.providers.base import Kind
    from authkit_setup.providers.render import RenderClient, RenderStores
    from tests.fakes.render_api import Fault

    add_postgres(fake, "basic_256mb")
    fake.inject("GET", r"/postgres/[^/]+/recovery", Fault.status(404))
    with RenderClient(token=FAKE_RENDER_KEY, base_url=fake.base_url) as client:
        [store] = RenderStores(client, fake.owner_id).find(Kind.POSTGRES, "authkit-db")
        facts = backup_facts(client, store, now=datetime.now(UTC))
    assert facts["pitr"] == "UNKNOWN" and facts["backups"] is True


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://h.example/p/x.tar.gz?token=abc&sig=def", "https://h.example/p/x.tar.gz?****"),
        ("https://h.example/p/x.tar.gz", "https://h.example/p/x.tar.gz"),
        ("https://user:pw@h.example/p?X-Amz-Signature=s", "https://h.example/p?****"),
        ("https://h.example/p#frag", "https://h.example/p?****"),
        ("not a url", "****"),
    ],
)
def test_mask_export_url(url: str, masked: str) -> None:
    from authkit_setup.production.backup import mask_export_url

    assert mask_export_url(url) == masked
