"""action.yml, the GitHub Action: its metadata validated against GitHub's schema, and its steps
run as a runner runs them (tests/action_runner.py) against the fake Render API backed by the
real test servers: create (render --preview), status and teardown of one preview."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.action_runner import ACTION, ActionRun, RunnerError, load_action, run_action
from tests.conftest import PgServer, RedisServer
from tests.fakes.local_backend import CloudFakes
from tests.fakes.neon_api import FAKE_NEON_KEY
from tests.fakes.render_api import FAKE_RENDER_KEY
from tests.fakes.render_jobs import InternalEndpoint
from tests.fakes.upstash_api import FAKE_UPSTASH_API_KEY, FAKE_UPSTASH_EMAIL
from tests.helpers import run_program
from tests.render_env import RenderWorld

PR = 42
SERVICE = f"authkit-api-pr-{PR}"
PREVIEW = f"pr-{PR}"
REQUIRED_OUTPUTS = {
    "ok",
    "service_id",
    "preview",
    "postgres_id",
    "postgres_name",
    "redis_id",
    "redis_name",
}


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    """GitHub's action metadata schema as vendored by check-jsonschema: no download (a proxy
    that refuses every connection stands in for the network, so one would fail the check)."""
    no_network = "http://127.0.0.1:9"
    env = {**os.environ, "NO_PROXY": "", "no_proxy": ""}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = no_network
    return run_program(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-actions",
            "--no-cache",
            str(path),
        ],
        env=env,
        timeout=120,
    )


def test_action_metadata_matches_the_schema() -> None:
    result = check_jsonschema(ACTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_action(tmp_path: Path) -> None:
    # The same check fails for a composite step without `shell:` (GitHub refuses it too).
    action = load_action()
    del action["runs"]["steps"][0]["shell"]
    broken = tmp_path / "action.yml"
    broken.write_text(yaml.safe_dump(action, sort_keys=False))
    result = check_jsonschema(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "shell" in result.stdout


def test_inputs_outputs_and_steps() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    assert REQUIRED_OUTPUTS <= set(action["outputs"])
    inputs = action["inputs"]
    for name in (
        "command",
        "service",
        "preview",
        "postgres",
        "redis",
        "region",
        "postgres-plan",
        "verify-inside",
        "github-env",
        "render-api-key",
        "neon-api-key",
        "supabase-access-token",
        "upstash-api-key",
    ):
        assert name in inputs, name
        assert inputs[name]["required"] is False, name
    text = ACTION.read_text()
    run_steps = [s for s in action["runs"]["steps"] if "run" in s]
    for step in run_steps:
        # Inputs reach scripts through env:, never pasted into the script text (injection).
        assert "${{" not in step["run"], step["id"]
    # Every credential input goes to the tool through its environment only.
    run_env = next(s for s in run_steps if s["id"] == "run")["env"]
    for name in inputs:
        if name.endswith(("-key", "-token", "-password")):
            variable = "INPUT_" + name.upper().replace("-", "_")
            assert run_env[variable] == f"${{{{ inputs.{name} }}}}", name
            assert text.count(f"inputs.{name} }}}}") == 1, name
    setup_python = next(s for s in action["runs"]["steps"] if "uses" in s)
    assert setup_python["uses"].startswith("actions/setup-python@")
    assert setup_python["if"] == "steps.python.outputs.path == ''"


@pytest.fixture
def recording_python(tmp_path: Path) -> tuple[str, Path]:
    """This environment's Python (which has this checkout installed) behind a wrapper that
    records every command line it is started with."""
    argv_log = tmp_path / "argv.log"
    wrapper = tmp_path / "bin" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{argv_log}"\nexec "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper), argv_log


def job_env() -> dict[str, str]:
    """The job's environment: the fake's URL and CA, and no RENDER_API_KEY (the action's
    render-api-key input is the only source of the key)."""
    env = dict(os.environ)
    env.pop("RENDER_API_KEY", None)
    for key in list(env):
        if key.startswith(("GITHUB_", "INPUT_")):
            del env[key]
    return env


def assert_masked_first(run: ActionRun, secret: str) -> None:
    """`::add-mask::SECRET` comes before any other line holding the secret."""
    lines = run.log.splitlines()
    masks = [i for i, line in enumerate(lines) if line == f"::add-mask::{secret}"]
    assert masks, f"never masked: {secret[:4]}…"
    uses = [i for i, line in enumerate(lines) if secret in line and i not in masks]
    assert all(i > masks[0] for i in uses), "printed before it was masked"


def test_create_status_and_teardown_a_preview(
    render_world: RenderWorld, recording_python: tuple[str, Path], tmp_path: Path
) -> None:
    fake = render_world.fake
    service = fake.add_service(SERVICE, region="ohio", env={"KEEP": "me"})
    python, argv_log = recording_python
    common = {"service": SERVICE, "preview": PREVIEW, "python": python}
    key = {"render-api-key": FAKE_RENDER_KEY}

    created = run_action(
        {
            **common,
            **key,
            "command": "render",
            "postgres-plan": "basic_256mb",
            "postgres-allow-cidr": "0.0.0.0/0",
            "redis-allow-cidr": "0.0.0.0/0 127.0.0.1/32",
            "github-env": "true",
        },
        env=job_env(),
        workdir=tmp_path,
    )
    assert created.returncode == 0, created.log
    assert created.skipped == [1]  # actions/setup-python: the runner's Python is enough
    (pg,) = fake.postgres_named(f"authkit-db-{PREVIEW}")
    (kv,) = fake.key_values_named(f"authkit-redis-{PREVIEW}")
    assert pg["plan"] == "basic_256mb"
    report = json.loads(Path(created.outputs.pop("json_file")).read_text())
    assert report["ok"] is True and [r["id"] for r in report["resources"]] == [pg["id"], kv["id"]]
    assert [c["ok"] for c in report["checks"]] == [True, True]
    assert created.outputs == {
        "ok": "true",
        "service_id": str(service["id"]),
        "preview": PREVIEW,
        "postgres_id": pg["id"],
        "postgres_name": f"authkit-db-{PREVIEW}",
        "redis_id": kv["id"],
        "redis_name": f"authkit-redis-{PREVIEW}",
        "postgres_status": "",
        "redis_status": "",
        "deleted_count": "",
        "already_gone_count": "",
    }
    pg_info = fake.connection_info(pg["id"])
    kv_info = fake.connection_info(kv["id"])
    # The URLs only through $GITHUB_ENV, masked before anything could print them.
    assert created.exported == {
        "DATABASE_URL": pg_info["externalConnectionString"] + "?sslmode=require",
        "REDIS_URL": kv_info["externalConnectionString"],
    }
    assert "postgresql://" not in "".join(created.outputs.values())
    assert_masked_first(created, FAKE_RENDER_KEY)
    assert_masked_first(created, pg_info["password"])
    redis_password = urlsplit(kv_info["externalConnectionString"]).password
    assert redis_password
    assert_masked_first(created, redis_password)
    for url in created.exported.values():  # each URL as later steps get it
        assert_masked_first(created, url)
    assert FAKE_RENDER_KEY not in created.log.replace(f"::add-mask::{FAKE_RENDER_KEY}", "")
    # The key went to the tool in its environment: on no command line.
    argv = argv_log.read_text()
    assert FAKE_RENDER_KEY not in argv and pg_info["password"] not in argv
    render_argv = [line for line in argv.splitlines() if line.startswith("-m authkit_setup render")]
    assert render_argv == [
        f"-m authkit_setup render --service {SERVICE} --preview {PREVIEW} --postgres render "
        "--redis render --postgres-plan basic_256mb --postgres-allow-cidr 0.0.0.0/0 "
        "--redis-allow-cidr 0.0.0.0/0 --redis-allow-cidr 127.0.0.1/32 --github-env --yes --json"
    ]

    # A later step of the job connects with what $GITHUB_ENV carried.
    check = run_program(
        [sys.executable, "-m", "authkit_setup", "check", "--json"], env=created.env, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # The base names, given explicitly, reach every command (here: the defaults).
    names = {"db-name": "authkit-db", "redis-name": "authkit-redis"}
    status = run_action(
        {**common, **key, **names, "command": "status"}, env=created.env, workdir=tmp_path
    )
    assert status.returncode == 0, status.log
    assert argv_log.read_text().splitlines()[-1] == (
        f"-m authkit_setup status --service {SERVICE} --preview {PREVIEW} --postgres render "
        "--redis render --db-name authkit-db --redis-name authkit-redis --json"
    )
    report = json.loads(Path(status.outputs.pop("json_file")).read_text())
    assert [s["wired"] for s in report["stores"]] == [True, True]
    assert status.outputs == {
        **created.outputs,
        "postgres_status": "available",
        "redis_status": "available",
    }

    down = run_action({**common, **key, "command": "teardown"}, env=created.env, workdir=tmp_path)
    assert down.returncode == 0, down.log
    report = json.loads(Path(down.outputs.pop("json_file")).read_text())
    assert [d["id"] for d in report["deleted"]] == [pg["id"], kv["id"]]
    assert down.outputs == {
        **created.outputs,  # asserted in full above
        "service_id": "",
        "deleted_count": "2",
        "already_gone_count": "0",
    }
    assert fake.postgres_named(f"authkit-db-{PREVIEW}") == []
    assert fake.env(str(service["id"])) == {"KEEP": "me"}
    assert_masked_first(down, FAKE_RENDER_KEY)

    again = run_action({**common, **key, "command": "teardown"}, env=created.env, workdir=tmp_path)
    assert again.returncode == 0, again.log
    assert (again.outputs["deleted_count"], again.outputs["already_gone_count"]) == ("0", "2")
    assert (again.outputs["postgres_id"], again.outputs["postgres_name"]) == (
        "",
        f"authkit-db-{PREVIEW}",
    )

    # status fails the step while the stores are missing, and still reports why.
    gone = run_action({**common, **key, "command": "status"}, env=created.env, workdir=tmp_path)
    assert gone.returncode == 1, gone.log
    assert gone.outputs["ok"] == "false" and gone.outputs["postgres_status"] == "missing"


def test_bad_inputs_stop_before_the_tool_runs(
    recording_python: tuple[str, Path], tmp_path: Path
) -> None:
    python, argv_log = recording_python
    cases = [
        ({"command": "deploy"}, "input command must be render, status or teardown"),
        ({"command": "render", "github-env": "yes"}, "input github-env must be true or false"),
        ({"command": "status", "postgres-plan": "basic_256mb"}, "input postgres-plan is for"),
        (
            {"command": "teardown", "github-env": "true"},
            "inputs github-env and verify-inside are for command: render",
        ),
    ]
    for inputs, says in cases:
        run = run_action({**inputs, "python": python}, env=job_env(), workdir=tmp_path)
        assert run.returncode == 2, run.log
        assert f"::error title=authkit-setup::{says}" in run.log, run.log
    started = argv_log.read_text().splitlines()
    assert "-m authkit_setup --version" in started  # the wrapper was the action's Python
    assert [line for line in started if line.startswith("-m authkit_setup ")] == [
        "-m authkit_setup --version"
    ] * len(cases)
    with pytest.raises(RunnerError, match="unexpected inputs"):
        run_action({"comand": "render"}, env=job_env(), workdir=tmp_path)


def test_a_python_with_another_version_is_refused(tmp_path: Path) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho 0.0.1\n")
    fake_python.chmod(0o755)
    run = run_action(
        {"command": "status", "python": str(fake_python)}, env=job_env(), workdir=tmp_path
    )
    assert run.returncode == 1 and run.steps[-1].id == "install"
    assert f"python: {fake_python} has authkit-setup 0.0.1, this action is" in run.log


def shellcheck(script: str, tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"{name}.sh"
    path.write_text(script)
    return run_program([str(Path(sys.executable).parent / "shellcheck"), "--shell=bash", str(path)])


def test_step_scripts_pass_shellcheck(tmp_path: Path) -> None:
    steps = [s for s in load_action()["runs"]["steps"] if "run" in s]
    assert [s["id"] for s in steps] == ["python", "install", "run"]
    for step in steps:
        result = shellcheck(step["run"], tmp_path, step["id"])
        assert result.returncode == 0, result.stdout
    # The same call does report a finding (an unquoted expansion).
    flagged = shellcheck("dir=$1\ncd $dir\n", tmp_path, "flagged")
    assert flagged.returncode == 1 and "SC2086" in flagged.stdout


def test_neon_and_upstash_credentials_come_from_inputs(
    render_world: RenderWorld,
    cloud_fakes: CloudFakes,
    recording_python: tuple[str, Path],
    tmp_path: Path,
) -> None:
    render_world.fake.add_service(SERVICE, region="ohio")
    cloud_fakes.neon.add_project(
        "authkit-db", region_id="aws-us-east-2", database_name="authkit", role_name="authkit_user"
    )
    python, argv_log = recording_python
    env = job_env()
    for name in ("NEON_API_KEY", "UPSTASH_EMAIL", "UPSTASH_API_KEY"):
        env.pop(name)  # the inputs are the only source
    inputs = {
        "service": SERVICE,
        "preview": PREVIEW,
        "postgres": "neon",
        "redis": "upstash",
        "python": python,
        "render-api-key": FAKE_RENDER_KEY,
        "neon-api-key": FAKE_NEON_KEY,
        "upstash-email": FAKE_UPSTASH_EMAIL,
        "upstash-api-key": FAKE_UPSTASH_API_KEY,
    }
    created = run_action({**inputs, "command": "render"}, env=env, workdir=tmp_path)
    assert created.returncode == 0, created.log
    (redis_db,) = cloud_fakes.upstash.databases_named(f"authkit-redis-{PREVIEW}")
    assert (created.outputs["postgres_name"], created.outputs["redis_id"]) == (
        f"preview/{PREVIEW}",
        redis_db["database_id"],
    )
    for secret in (FAKE_RENDER_KEY, FAKE_NEON_KEY, FAKE_UPSTASH_API_KEY):
        assert_masked_first(created, secret)
    assert f"::add-mask::{FAKE_UPSTASH_EMAIL}" not in created.log  # an account name, not a secret

    down = run_action({**inputs, "command": "teardown"}, env=env, workdir=tmp_path)
    assert down.returncode == 0, down.log
    assert down.outputs["deleted_count"] == "2"
    assert cloud_fakes.upstash.databases_named(f"authkit-redis-{PREVIEW}") == []
    argv = argv_log.read_text()
    for secret in (FAKE_RENDER_KEY, FAKE_NEON_KEY, FAKE_UPSTASH_API_KEY, FAKE_UPSTASH_EMAIL):
        assert secret not in argv


def test_verify_inside_input_verifies_from_inside(
    render_world: RenderWorld,
    pg: PgServer,
    redis_srv: RedisServer,
    recording_python: tuple[str, Path],
    tmp_path: Path,
) -> None:
    """`verify-inside: true` reaches render as --verify-inside: one probe job on the service,
    both stores verified from inside (tests/test_verify_inside.py covers the job itself)."""
    fake = render_world.fake
    fake.deploy_build_after = fake.deploy_finish_after = 0.0  # a live build for the job
    fake.jobs.internal_network(
        postgres=InternalEndpoint(pg.host, pg.port),
        redis=InternalEndpoint(redis_srv.host, redis_srv.port, redis_srv.password),
    )
    fake.add_service(SERVICE, region="ohio")
    python, argv_log = recording_python
    inputs = {"service": SERVICE, "python": python, "render-api-key": FAKE_RENDER_KEY}
    created = run_action(
        {**inputs, "command": "render", "verify-inside": "true"}, env=job_env(), workdir=tmp_path
    )
    assert created.returncode == 0, created.log
    report = json.loads(Path(created.outputs["json_file"]).read_text())
    assert [(c["ok"], c["via"]) for c in report["checks"]] == [(True, "inside"), (True, "inside")]
    assert [job["status"] for job in fake.jobs.jobs()] == ["succeeded"]
    render_argv = [
        line
        for line in argv_log.read_text().splitlines()
        if line.startswith("-m authkit_setup render")
    ]
    assert len(render_argv) == 1 and " --verify-inside " in f"{render_argv[0]} "
