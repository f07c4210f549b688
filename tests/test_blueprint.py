"""`authkit-setup blueprint`: a render.yaml checked field by field (render-api.md §10) with PyYAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.fixtures import MakeRenderFake
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import cli_uses

AUTH = {"Authorization": f"Bearer {FAKE_RENDER_KEY}"}

WIRING = [
    {
        "key": "DATABASE_URL",
        "fromDatabase": {"name": "authkit-db", "property": "connectionString"},
    },
    {
        "key": "REDIS_URL",
        "fromService": {
            "name": "authkit-redis",
            "type": "keyvalue",
            "property": "connectionString",
        },
    },
]


@pytest.fixture
def fake(make_render_fake: MakeRenderFake, monkeypatch: pytest.MonkeyPatch) -> FakeRenderAPI:
    fake = make_render_fake()
    return cli_uses(fake, monkeypatch)


def blueprint(fake: FakeRenderAPI | None, *args: str) -> CliResult:
    result = run_cli("blueprint", *args)
    extra = []  # the central check knows the passwords; a whole URL must not show either
    if fake is not None:
        for kv in fake.key_values_named("authkit-redis"):
            extra.append(fake.connection_info(kv["id"])["externalConnectionString"])
    assert_no_secret(result, *extra)
    assert "Traceback" not in result.output
    return result


def create(fake: FakeRenderAPI, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{fake.base_url}{path}", headers=AUTH, json={"ownerId": fake.owner_id, **body}
    )
    response.raise_for_status()
    return dict(response.json())


def test_defaults_match_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    # No API key and no API: the defaults need neither.
    monkeypatch.setenv("RENDER_API_URL", "http://127.0.0.1:9/v1")
    result = blueprint(None)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# render.yaml written by authkit-setup")
    assert yaml.safe_load(result.stdout) == {
        "databases": [
            {
                "name": "authkit-db",
                "databaseName": "authkit",
                "user": "authkit_user",
                "plan": "free",
                "region": "oregon",
                "postgresMajorVersion": "16",  # a string, as Blueprints want it
                "ipAllowList": [],
            }
        ],
        "services": [
            {
                "type": "keyvalue",
                "name": "authkit-redis",
                "plan": "free",
                "region": "oregon",
                "maxmemoryPolicy": "noeviction",
                "ipAllowList": [],  # required for keyvalue
            },
            {
                "type": "web",
                "name": "authkit-api",
                "runtime": "node",
                "region": "oregon",
                "plan": "free",
                "buildCommand": "pnpm install && pnpm db:push && pnpm build",
                "startCommand": "pnpm start",
                "envVars": WIRING,
            },
        ],
    }


def test_paid_service_and_existing_stores(fake: FakeRenderAPI) -> None:
    service = fake.add_service(
        "authkit-api",
        region="ohio",
        plan="starter",
        build_command="pnpm install && pnpm build",
        start_command="node dist/main.js",
        pre_deploy_command="pnpm db:push",
    )
    pg = create(
        fake,
        "/postgres",
        {
            "name": "authkit-db",
            "plan": "basic_256mb",
            "version": "15",
            "region": "ohio",
            "databaseName": "authkit",
            "databaseUser": "authkit_user",
            "ipAllowList": [{"cidrBlock": "0.0.0.0/0", "description": "authkit-setup"}],
        },
    )
    create(
        fake,
        "/key-value",
        {
            "name": "authkit-redis",
            "plan": "starter",
            "region": "ohio",
            "maxmemoryPolicy": "allkeys_lru",
            "ipAllowList": [],
        },
    )
    result = blueprint(fake, "--service", "authkit-api")
    assert result.exit_code == 0, result.output
    assert f"from Render service authkit-api ({service['id']})" in result.stdout
    doc = yaml.safe_load(result.stdout)
    [database] = doc["databases"]
    assert database == {
        "name": "authkit-db",
        "databaseName": pg["databaseName"],  # the real name, with Render's suffix
        "user": "authkit_user",
        "plan": "basic-256mb",
        "region": "ohio",
        "postgresMajorVersion": "15",
        "ipAllowList": [{"source": "0.0.0.0/0", "description": "authkit-setup"}],
    }
    assert database["databaseName"].startswith("authkit")
    key_value, web = doc["services"]
    assert key_value == {
        "type": "keyvalue",
        "name": "authkit-redis",
        "plan": "starter",
        "region": "ohio",
        "maxmemoryPolicy": "allkeys-lru",
        "ipAllowList": [],
    }
    assert web == {
        "type": "web",
        "name": "authkit-api",
        "runtime": "node",
        "region": "ohio",
        "plan": "starter",
        "buildCommand": "pnpm install && pnpm build",
        "startCommand": "node dist/main.js",
        "preDeployCommand": "pnpm db:push",
        "envVars": WIRING,
    }
    assert fake.count("POST") == 2 and fake.count("PATCH") == 0  # only the test's creates


def test_free_service_without_stores_gets_defaults_in_its_region(fake: FakeRenderAPI) -> None:
    fake.add_service("authkit-api", region="frankfurt", plan="free", build_command="npm ci")
    result = blueprint(fake, "--service", "authkit-api", "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["source"] == "service" and doc["stores"] == {"postgres": None, "redis": None}
    assert doc["path"] is None
    assert yaml.safe_load(doc["yaml"]) == doc["blueprint"]
    database = doc["blueprint"]["databases"][0]
    assert (database["plan"], database["region"], database["postgresMajorVersion"]) == (
        "free",
        "frankfurt",
        "16",
    )
    key_value, web = doc["blueprint"]["services"]
    assert key_value["region"] == "frankfurt" and key_value["maxmemoryPolicy"] == "noeviction"
    assert web["plan"] == "free" and web["buildCommand"] == "npm ci"
    assert "preDeployCommand" not in web


def test_docker_service_and_spaced_plan_names(fake: FakeRenderAPI) -> None:
    fake.add_service("authkit-api", plan="pro_plus", runtime="docker")
    create(
        fake,
        "/key-value",
        {"name": "authkit-redis", "plan": "pro_plus", "region": "oregon", "ipAllowList": []},
    )
    result = blueprint(fake, "--service", "authkit-api", "--json")
    assert result.exit_code == 0, result.output
    key_value, web = result.json()["blueprint"]["services"]
    assert web["runtime"] == "docker" and web["plan"] == "pro plus"
    assert "buildCommand" not in web and "startCommand" not in web
    assert key_value["plan"] == "pro plus" and key_value["maxmemoryPolicy"] == "allkeys-lru"


def test_output_file_refuses_to_overwrite(fake: FakeRenderAPI) -> None:
    fake.add_service("authkit-api", plan="free")
    path = Path("render.yaml")
    result = blueprint(fake, "--service", "authkit-api", "--output", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "wrote render.yaml" in result.stderr
    first = path.read_text()
    assert yaml.safe_load(first)["services"][1]["name"] == "authkit-api"

    path.write_text("# mine\n")
    result = blueprint(fake, "--output", str(path), "--json")
    assert result.exit_code == 2
    assert result.json()["error"]["code"] == "usage" and "--force" in result.json()["error"]["hint"]
    assert path.read_text() == "# mine\n"

    result = blueprint(fake, "--output", str(path), "--force", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["path"] == "render.yaml"
    assert yaml.safe_load(path.read_text()) == result.json()["blueprint"]
    assert [p.name for p in Path(".").iterdir() if p.name.startswith(".render")] == []


def test_output_into_missing_folder_is_a_usage_error() -> None:
    result = blueprint(None, "--output", "no/such/dir/render.yaml")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_secret_in_a_build_command_is_masked_on_stdout_only(fake: FakeRenderAPI) -> None:
    build = "curl -fsS https://setup.example/get?token=s3cr3tvalue1 | sh && npm run build"
    fake.add_service("authkit-api", plan="free", build_command=build)
    result = run_cli("blueprint", "--service", "authkit-api")
    assert result.exit_code == 0, result.output
    assert "is masked below" in result.stderr
    assert_no_secret(result, "s3cr3tvalue1")
    assert run_cli("blueprint", "--service", "authkit-api", "-o", "r.yaml").exit_code == 0
    assert yaml.safe_load(Path("r.yaml").read_text())["services"][1]["buildCommand"] == build


AWKWARD_COMMANDS = {
    "build": 'pnpm install && echo "key: value" # not a comment',
    "start": "node -e 'console.log(\"a: b\")' --title=#1",
    "pre_deploy": "set -e\npnpm db:push\n\tpnpm seed: --yes  \n",
}


def test_awkward_commands_round_trip_through_the_file(fake: FakeRenderAPI) -> None:
    # `:`, ` #`, both quote kinds, tabs, trailing blanks and newlines in a command: the file
    # Render reads holds each command exactly as the service has it.
    fake.add_service(
        "authkit-api: #1",
        plan="starter",
        build_command=AWKWARD_COMMANDS["build"],
        start_command=AWKWARD_COMMANDS["start"],
        pre_deploy_command=AWKWARD_COMMANDS["pre_deploy"],
    )
    result = blueprint(fake, "--service", "authkit-api: #1", "--output", "render.yaml", "--json")
    assert result.exit_code == 0, result.output
    text = Path("render.yaml").read_text()
    web = yaml.safe_load(text)["services"][1]
    assert web["name"] == "authkit-api: #1"
    assert (web["buildCommand"], web["startCommand"], web["preDeployCommand"]) == (
        AWKWARD_COMMANDS["build"],
        AWKWARD_COMMANDS["start"],
        AWKWARD_COMMANDS["pre_deploy"],
    )
    assert yaml.safe_load(text) == result.json()["blueprint"]


def test_bad_input(fake: FakeRenderAPI) -> None:
    assert blueprint(fake, "--service", "nope").exit_code == 2
    assert blueprint(fake, "--db-name", " ").exit_code == 2


# -- the emitter ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "16", "yes", "No", "on", "null", "~", "", " lead", "trail ", "a: b", "a #b", "#x",
        "- x", "[x]", "{x}", "*x", "&x", "!x", "|", ">", "'q'", '"q"', "%x", "@x", "`x`",
        "1e3", "0x1F", ".inf", ".NaN", "2026-01-01", "1:20", "<<", "=", "a\nb", "tab\there",
        "uni\u2028code", "nel\x85", "bom\ufeff", "del\x7f", "bell\x07", "émoji 🚀",
        "pnpm install && pnpm build", "./Dockerfile", "0.0.0.0/0",
    ],
)  # fmt: skip
def test_strings_survive_a_yaml_parser(value: str) -> None:
    from authkit_setup.production.blueprint import to_yaml

    assert yaml.safe_load(to_yaml({"k": value, "l": [value], "m": [{"n": value}]})) == {
        "k": value,
        "l": [value],
        "m": [{"n": value}],
    }


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_survives_a_yaml_parser(value: str) -> None:
    from authkit_setup.production.blueprint import to_yaml

    assert yaml.safe_load(to_yaml({"databases": [{"name": value}], "x": {"y": value}})) == {
        "databases": [{"name": value}],
        "x": {"y": value},
    }
