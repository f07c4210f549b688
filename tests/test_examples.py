"""The files in examples/ are executed, not just shown: the GitHub Actions workflow runs job by
job as a runner would (its expressions substituted, each `uses:` of the authkit-setup action run
from this repository by tests/action_runner.py, `run:` steps under bash, `$GITHUB_ENV` and
`$GITHUB_PATH` carried to later steps), and preview.sh runs under bash with the installed entry
point on PATH. Both run against the fake Render API backed by the real test servers."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.action_runner import ActionRun, run_action
from tests.fakes.render_api import FAKE_RENDER_KEY
from tests.helpers import run_program
from tests.render_env import RenderWorld

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKFLOW = EXAMPLES / "github-actions" / "preview.yml"
SCRIPT = EXAMPLES / "preview.sh"
PR = 42
# The published action; this repository's action.yml stands in for it (like `uses: ./`).
ACTION_REF = "authkit-setup/authkit-setup@v1"


@dataclass
class Step:
    id: str | None
    command: str  # the action's `command` input, or the `run:` script
    doc: dict[str, Any]  # the JSON report
    outputs: dict[str, str]
    log: str


def load_workflow() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(workflow, dict)
    return workflow


def substitute(text: str, action: str, steps: dict[str, dict[str, str]]) -> str:
    values = {
        "github.event.number": str(PR),
        "github.event.action": action,
        "secrets.RENDER_API_KEY": FAKE_RENDER_KEY,
    }

    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        step = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression)
        if step:
            return steps[step[1]][step[2]]
        assert expression in values, f"unknown expression in preview.yml: {expression}"
        return values[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def job_runs(condition: str, action: str) -> bool:
    """The two conditions the workflow uses, evaluated like GitHub would."""
    match = re.fullmatch(r"github\.event\.action (==|!=) '(\w+)'", condition)
    assert match, f"unexpected condition: {condition}"
    return (action == match[2]) == (match[1] == "==")


def with_value(value: object) -> str:
    """`with:` values reach an action as strings; YAML booleans as true / false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run_event(workflow: dict[str, Any], action: str, tmp_path: Path) -> list[Step]:
    """Run every job the event triggers, each in a fresh job environment."""
    done: list[Step] = []
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    base.pop("RENDER_API_KEY")  # the workflow hands the key to the action as an input only
    for name, job in workflow["jobs"].items():
        if not job_runs(job["if"], action):
            continue
        env = dict(base)
        outputs: dict[str, dict[str, str]] = {}
        for index, step in enumerate(job["steps"]):
            workdir = tmp_path / f"{len(list(tmp_path.iterdir()))}-{action}-{name}-{index}"
            workdir.mkdir()
            if "uses" in step:
                assert step["uses"] == ACTION_REF
                inputs = {
                    k: substitute(with_value(v), action, outputs) for k, v in step["with"].items()
                }
                # This checkout, already installed here (the install itself is .ci/run's check).
                inputs["python"] = sys.executable
                run: ActionRun = run_action(inputs, env=env, workdir=workdir)
                assert run.returncode == 0, run.log
                env = run.env
                doc = json.loads(Path(run.outputs["json_file"]).read_text())
                done.append(Step(step.get("id"), inputs["command"], doc, run.outputs, run.log))
            else:
                script = substitute(step["run"], action, outputs)
                proc = run_program(
                    ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                    cwd=workdir,
                    env={**env, "GITHUB_ACTIONS": "true", "CI": "true"},
                    timeout=180,
                )
                assert proc.returncode == 0, (script, proc.stdout, proc.stderr)
                doc = json.loads(proc.stdout)  # exactly one JSON document
                done.append(Step(step.get("id"), script, doc, {}, proc.stderr))
            if step.get("id"):
                outputs[step["id"]] = done[-1].outputs
    return done


def test_workflow_shape() -> None:
    workflow = load_workflow()
    text = WORKFLOW.read_text()
    triggers = yaml.safe_load(text)[True]  # YAML 1.1 (PyYAML) reads the key `on` as true
    assert triggers == {"pull_request": {"types": ["opened", "synchronize", "reopened", "closed"]}}
    assert workflow["concurrency"] == {
        "group": "authkit-preview-${{ github.event.number }}",
        "cancel-in-progress": False,
    }
    assert "env" not in workflow  # the key goes to the action as an input, nowhere else
    assert set(workflow["jobs"]) == {"create", "teardown"}
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert "pip install" not in text
    uses = [step for step in steps if "uses" in step]
    assert [step["with"]["command"] for step in uses] == ["render", "status", "teardown"]
    for step in uses:
        assert step["uses"] == ACTION_REF
        assert step["with"]["preview"] == "pr-${{ github.event.number }}"
        assert step["with"]["render-api-key"] == "${{ secrets.RENDER_API_KEY }}"
    assert [step["run"] for step in steps if "run" in step] == ["authkit-setup check --json"]


def test_workflow_runs_against_the_fake(render_world: RenderWorld, tmp_path: Path) -> None:
    fake = render_world.fake
    service = fake.add_service(f"authkit-api-pr-{PR}", region="ohio", env={"KEEP": "me"})
    workflow = load_workflow()

    opened = run_event(workflow, "opened", tmp_path)
    assert [(s.id, s.command.split()[0]) for s in opened] == [
        ("stores", "render"),
        (None, "authkit-setup"),
        ("status", "status"),
    ]
    (pg,) = fake.postgres_named(f"authkit-db-pr-{PR}")
    (kv,) = fake.key_values_named(f"authkit-redis-pr-{PR}")
    assert pg["plan"] == "basic_256mb"
    render_step = opened[0]
    outputs = render_step.outputs
    assert outputs["postgres_id"] == pg["id"] and outputs["redis_id"] == kv["id"]
    assert outputs["postgres_name"] == f"authkit-db-pr-{PR}" and outputs["ok"] == "true"
    lines = render_step.log.splitlines()
    password = fake.connection_info(pg["id"])["password"]
    first_mask = lines.index(f"::add-mask::{password}")
    assert first_mask < next(i for i, line in enumerate(lines) if line.startswith("DATABASE_URL:"))
    assert all(i >= first_mask for i, line in enumerate(lines) if password in line)
    assert [c["ok"] for c in opened[1].doc["checks"]] == [True, True]  # via $GITHUB_ENV
    assert [s["wired"] for s in opened[2].doc["stores"]] == [True, True]
    assert opened[2].outputs["postgres_status"] == "available"

    synchronized = run_event(workflow, "synchronize", tmp_path)
    assert {e["action"] for e in synchronized[0].doc["env"]} == {"unchanged"}
    assert len(fake.postgres_named(f"authkit-db-pr-{PR}")) == 1

    closed = run_event(workflow, "closed", tmp_path)
    (teardown,) = closed
    assert teardown.command == "teardown"
    assert [d["id"] for d in teardown.doc["deleted"]] == [pg["id"], kv["id"]]
    assert teardown.outputs["deleted_count"] == "2"
    assert fake.env(str(service["id"])) == {"KEEP": "me"}

    (again,) = run_event(workflow, "closed", tmp_path)
    assert again.doc["deleted"] == [] and len(again.doc["already_gone"]) == 2


def test_preview_script_runs_against_the_fake(render_world: RenderWorld, tmp_path: Path) -> None:
    fake = render_world.fake
    fake.add_service(f"authkit-api-pr-{PR}", region="ohio")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return run_program(["bash", str(SCRIPT), *args], cwd=tmp_path, env=env, timeout=180)

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
