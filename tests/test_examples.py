"""The files in examples/ are executed, not just shown: every authkit-setup command in the GitHub
Actions workflow runs in-process as the runner would run it (its expressions substituted, the
workflow `env:` applied, `$GITHUB_OUTPUT` / `$GITHUB_ENV` files per step, `$GITHUB_ENV` carried
to later steps), and preview.sh runs under bash with the installed entry point on PATH. Both run
against the fake Render API backed by the real test servers."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.render_api import FAKE_RENDER_KEY
from tests.helpers import CliResult, run_cli
from tests.render_env import RenderWorld
from tests.test_preview import parse_github_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKFLOW = EXAMPLES / "github-actions" / "preview.yml"
SCRIPT = EXAMPLES / "preview.sh"
PR = 42


@dataclass
class Job:
    name: str
    condition: str = ""
    runs: list[tuple[str | None, str]] = field(default_factory=list)  # (step id, command)


@dataclass
class Workflow:
    text: str
    env: dict[str, str]
    jobs: dict[str, Job]


def parse_workflow(text: str) -> Workflow:
    """Just enough YAML for this file: top-level `env:`, `jobs:` → `if:` and `run:` steps
    (single-line or `|` blocks), each step's `id:`. No YAML dependency."""
    env: dict[str, str] = {}
    jobs: dict[str, Job] = {}
    section = ""
    job: Job | None = None
    step_id: str | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            section = line.split(":", 1)[0]
            continue
        if section == "env" and indent == 2:
            key, value = line.strip().split(":", 1)
            env[key] = value.strip()
        elif section == "jobs" and indent == 2:
            job = Job(line.strip().rstrip(":"))
            jobs[job.name] = job
        elif section == "jobs" and job is not None:
            stripped = line.strip()
            if indent == 4 and stripped.startswith("if:"):
                job.condition = stripped[3:].strip()
            item = stripped[2:] if stripped.startswith("- ") else stripped
            if stripped.startswith("- "):
                step_id = None
            if item.startswith("id:"):
                step_id = item[3:].strip()
            elif item.startswith("run:"):
                command = item[4:].strip()
                if command in ("|", ">"):
                    block = []
                    while i < len(lines) and (
                        not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
                    ):
                        block.append(lines[i].strip())
                        i += 1
                    command = "\n".join(block)
                job.runs.append((step_id, command))
    return Workflow(text, env, jobs)


def substitute(text: str, action: str) -> str:
    values = {
        "github.event.number": str(PR),
        "github.event.action": action,
        "secrets.RENDER_API_KEY": FAKE_RENDER_KEY,
    }

    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert expression in values, f"unknown expression in preview.yml: {expression}"
        return values[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def job_runs(job: Job, action: str) -> bool:
    """The two conditions the workflow uses, evaluated like GitHub would."""
    match = re.fullmatch(r"github\.event\.action (==|!=) '(\w+)'", job.condition)
    assert match, f"unexpected condition: {job.condition}"
    return (action == match[2]) == (match[1] == "==")


def run_event(
    workflow: Workflow, action: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[tuple[str | None, list[str], CliResult, dict[str, str]]]:
    """Run every job the event triggers; returns (step id, argv, result, step outputs)."""
    done = []
    for key, value in workflow.env.items():
        monkeypatch.setenv(key, substitute(value, action))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("CI", "true")
    for job in workflow.jobs.values():
        if not job_runs(job, action):
            continue
        for index, (step_id, raw) in enumerate(job.runs):
            for command in substitute(raw, action).splitlines():
                argv = shlex.split(command)
                if argv[:1] != ["authkit-setup"]:
                    assert argv == ["pip", "install", "authkit-setup"], command
                    continue
                files = {
                    name: tmp_path / f"{action}-{job.name}-{index}-{name}"
                    for name in ("output", "env")
                }
                for name, path in files.items():
                    path.write_text("")
                    monkeypatch.setenv(f"GITHUB_{name.upper()}", str(path))
                result = run_cli(*argv[1:])
                assert result.exit_code == 0, (command, result.output)
                if "--json" in argv:
                    json.loads(result.stdout)  # exactly one JSON document
                for key, value in parse_github_file(files["env"].read_text()).items():
                    monkeypatch.setenv(key, value)  # the runner exports it to later steps
                outputs = parse_github_file(files["output"].read_text())
                done.append((step_id, argv, result, outputs))
    return done


def test_workflow_shape() -> None:
    workflow = parse_workflow(WORKFLOW.read_text())
    text = workflow.text
    assert "types: [opened, synchronize, reopened, closed]" in text
    assert "group: authkit-preview-${{ github.event.number }}" in text
    assert "cancel-in-progress: false" in text
    assert workflow.env == {"RENDER_API_KEY": "${{ secrets.RENDER_API_KEY }}"}
    assert set(workflow.jobs) == {"create", "teardown"}
    commands = [command for job in workflow.jobs.values() for _, command in job.runs]
    assert commands.count("pip install authkit-setup") == 2
    for command in commands:
        if command.startswith("authkit-setup") and " check" not in command:
            assert "--preview pr-${{ github.event.number }}" in command
            assert "--json" in command
        if command.startswith(("authkit-setup render", "authkit-setup teardown")):
            assert "--yes" in command


def test_workflow_runs_against_the_fake(
    render_world: RenderWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = render_world.fake
    service = fake.add_service(f"authkit-api-pr-{PR}", region="ohio", env={"KEEP": "me"})
    workflow = parse_workflow(WORKFLOW.read_text())

    opened = run_event(workflow, "opened", monkeypatch, tmp_path)
    assert [argv[1] for _, argv, _, _ in opened] == ["render", "check", "status"]
    (pg,) = fake.postgres_named(f"authkit-db-pr-{PR}")
    (kv,) = fake.key_values_named(f"authkit-redis-pr-{PR}")
    assert pg["plan"] == "basic_256mb"
    step_id, _, render_result, outputs = opened[0]
    assert step_id == "stores"
    assert outputs["postgres_id"] == pg["id"] and outputs["redis_id"] == kv["id"]
    assert outputs["postgres_name"] == f"authkit-db-pr-{PR}" and outputs["ok"] == "true"
    lines = render_result.stderr.splitlines()
    first_mask = next(i for i, line in enumerate(lines) if line.startswith("::add-mask::"))
    assert first_mask < next(i for i, line in enumerate(lines) if line.startswith("DATABASE_URL:"))
    assert f"::add-mask::{fake.connection_info(pg['id'])['password']}" in lines
    check_doc = opened[1][2].json()
    assert [c["ok"] for c in check_doc["checks"]] == [True, True]  # via $GITHUB_ENV
    assert os.environ["DATABASE_URL"].endswith("?sslmode=require")
    status_doc = opened[2][2].json()
    assert [s["wired"] for s in status_doc["stores"]] == [True, True]

    synchronized = run_event(workflow, "synchronize", monkeypatch, tmp_path)
    assert {e["action"] for e in synchronized[0][2].json()["env"]} == {"unchanged"}
    assert len(fake.postgres_named(f"authkit-db-pr-{PR}")) == 1

    closed = run_event(workflow, "closed", monkeypatch, tmp_path)
    ((_, argv, result, outputs),) = closed
    assert argv[1] == "teardown"
    assert [d["id"] for d in result.json()["deleted"]] == [pg["id"], kv["id"]]
    assert outputs["deleted_count"] == "2"
    assert fake.env(str(service["id"])) == {"KEEP": "me"}

    again = run_event(workflow, "closed", monkeypatch, tmp_path)
    assert again[0][2].json()["deleted"] == [] and len(again[0][2].json()["already_gone"]) == 2


def test_preview_script_runs_against_the_fake(render_world: RenderWorld, tmp_path: Path) -> None:
    fake = render_world.fake
    fake.add_service(f"authkit-api-pr-{PR}", region="ohio")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=180,
            check=False,
        )

    up = script("up", str(PR))
    assert up.returncode == 0, up.stdout + up.stderr
    doc = json.loads((tmp_path / f"authkit-pr-{PR}.json").read_text())
    assert doc["ok"] is True and [r["name"] for r in doc["resources"]] == [
        f"authkit-db-pr-{PR}",
        f"authkit-redis-pr-{PR}",
    ]
    assert [c["ok"] for c in doc["checks"]] == [True, True]
    env_file = tmp_path / ".env.preview"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "DATABASE_URL=postgresql://" in env_file.read_text()

    again = script("up", str(PR))
    assert again.returncode == 0, again.stderr
    assert len(fake.postgres_named(f"authkit-db-pr-{PR}")) == 1

    status = script("status", str(PR))
    assert status.returncode == 0, status.stderr
    assert f"authkit-db-pr-{PR}" in status.stdout and "available" in status.stdout

    down = script("down", str(PR))
    assert down.returncode == 0, down.stderr
    assert len(json.loads(down.stdout)["deleted"]) == 2
    assert not env_file.exists()
    assert fake.postgres_named(f"authkit-db-pr-{PR}") == []

    gone = script("down", str(PR))
    assert gone.returncode == 0 and json.loads(gone.stdout)["deleted"] == []
    assert script("status", str(PR)).returncode == 1
    assert script("sideways", str(PR)).returncode == 2
