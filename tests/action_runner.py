"""Runs the repository's action.yml the way a GitHub runner runs a composite action.

Each step in order: its `if:` evaluated, `${{ inputs.* }}`, `${{ github.action_path }}` and
`${{ steps.<id>.outputs.* }}` substituted into its `env:` and `run:`, the script run with
`bash --noprofile --norc -eo pipefail` (the runner's `shell: bash`) with a fresh
`$GITHUB_OUTPUT`, `$GITHUB_ENV` and `$GITHUB_PATH` file per step and `GITHUB_ACTION_PATH` and
`RUNNER_TEMP` set; what a step appends to `$GITHUB_ENV` is exported to the later steps and what
it appends to `$GITHUB_PATH` goes in front of their PATH (both returned, for the job's later
steps); the first failing step ends the run; finally the action's `outputs:` are evaluated.

A `uses:` step (actions/setup-python) cannot run here: reaching one is an error.

    python -m tests.action_runner install

runs the action's Python and install steps for real (a virtualenv under a temporary
RUNNER_TEMP, `pip install` of this checkout from the package index), then its installed
`authkit-setup --version`: .ci/run's check that the install path users get works.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}")
_CONDITION = re.compile(r"^(steps\.[\w-]+\.outputs\.[\w-]+) (==|!=) '([^']*)'$")


class RunnerError(Exception):
    """The action asked for something this runner (or any runner) cannot do."""


@dataclass
class StepRun:
    index: int
    id: str | None
    returncode: int
    log: str
    outputs: dict[str, str]


@dataclass
class ActionRun:
    steps: list[StepRun]
    skipped: list[int]  # indexes of the steps whose `if:` was false
    outputs: dict[str, str]  # the action's `outputs:`
    exported: dict[str, str]  # appended to $GITHUB_ENV by its steps
    env: dict[str, str]  # the job's environment after the action

    @property
    def returncode(self) -> int:
        return self.steps[-1].returncode if self.steps else 0

    @property
    def log(self) -> str:
        return "".join(step.log for step in self.steps)

    def step(self, step_id: str) -> StepRun:
        (found,) = [s for s in self.steps if s.id == step_id]
        return found


def load_action(path: Path = ACTION) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def parse_github_file(text: str) -> dict[str, str]:
    """GitHub's file-command format: `k=v` lines and `k<<DELIM` … `DELIM` blocks."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            values[key] = "\n".join(block)
        elif line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


@dataclass
class _Context:
    inputs: dict[str, str]
    steps: dict[str, dict[str, str]] = field(default_factory=dict)

    def value(self, expression: str) -> str:
        parts = expression.strip().split(".")
        if parts[0] == "inputs" and len(parts) == 2:
            if parts[1] not in self.inputs:
                raise RunnerError(f"${{{{ {expression.strip()} }}}}: no such input")
            return self.inputs[parts[1]]
        if parts == ["github", "action_path"]:
            return str(ROOT)
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return self.steps.get(parts[1], {}).get(parts[3], "")
        raise RunnerError(f"unsupported expression ${{{{ {expression.strip()} }}}}")

    def substitute(self, text: str) -> str:
        return _EXPRESSION.sub(lambda m: self.value(m.group(1)), text)

    def condition(self, text: str) -> bool:
        match = _CONDITION.match(text.strip())
        if not match:
            raise RunnerError(f"unsupported if: {text}")
        left = self.value(match[1])
        return (left == match[3]) == (match[2] == "==")


def run_action(
    inputs: Mapping[str, str],
    *,
    env: Mapping[str, str],
    workdir: Path,
    stop_after: str | None = None,
    timeout: float = 300,
) -> ActionRun:
    """Run action.yml with `inputs` (by input name) in a job whose environment is `env`."""
    action = load_action()
    declared: dict[str, Any] = action["inputs"]
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise RunnerError(f"unexpected inputs {unknown}")  # the runner warns; tests should not
    context = _Context({name: str(spec.get("default", "")) for name, spec in declared.items()})
    context.inputs.update(inputs)
    job_env = {
        **env,
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_WORKSPACE": str(workdir),
    }
    job_env.setdefault("RUNNER_TEMP", str(workdir / "runner-temp"))
    Path(job_env["RUNNER_TEMP"]).mkdir(parents=True, exist_ok=True)
    files = workdir / "runner-files"
    files.mkdir(exist_ok=True)
    runs: list[StepRun] = []
    skipped: list[int] = []
    exported: dict[str, str] = {}
    for index, step in enumerate(action["runs"]["steps"]):
        if "if" in step and not context.condition(str(step["if"])):
            skipped.append(index)
            continue
        if "uses" in step:
            raise RunnerError(f"step {index} uses {step['uses']}, which cannot run here")
        if step.get("shell") != "bash":
            raise RunnerError(f"step {index}: shell {step.get('shell')!r}, expected bash")
        serial = len(list(files.iterdir()))
        output_file = files / f"{serial}-output"
        env_file = files / f"{serial}-env"
        path_file = files / f"{serial}-path"
        script = files / f"{serial}-script.sh"
        output_file.write_text("")
        env_file.write_text("")
        path_file.write_text("")
        script.write_text(context.substitute(str(step["run"])))
        step_env = {
            **job_env,
            **{str(k): context.substitute(str(v)) for k, v in (step.get("env") or {}).items()},
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_ENV": str(env_file),
            "GITHUB_PATH": str(path_file),
        }
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workdir,
            env=step_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            check=False,
        )
        outputs = parse_github_file(output_file.read_text())
        step_id = step.get("id")
        runs.append(StepRun(index, step_id, proc.returncode, proc.stdout, outputs))
        if step_id:
            context.steps[str(step_id)] = outputs
        added = parse_github_file(env_file.read_text())
        exported.update(added)
        job_env.update(added)
        for directory in path_file.read_text().splitlines():
            if directory:
                job_env["PATH"] = f"{directory}{os.pathsep}{job_env.get('PATH', '')}"
        if proc.returncode != 0 or (stop_after is not None and step_id == stop_after):
            break
    outputs = {
        name: context.substitute(str(spec["value"])) for name, spec in action["outputs"].items()
    }
    for key in ("GITHUB_ACTION_PATH", "GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH"):
        job_env.pop(key, None)
    return ActionRun(runs, skipped, outputs, exported, job_env)


def main(argv: list[str]) -> int:
    if argv != ["install"]:
        print("usage: python -m tests.action_runner install", file=sys.stderr)
        return 2
    from authkit_setup import __version__

    with tempfile.TemporaryDirectory(prefix="authkit-action-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
        env["RUNNER_TEMP"] = tmp
        run = run_action({"command": "status"}, env=env, workdir=Path(tmp), stop_after="install")
        python = run.step("install").outputs.get("python", "")
        print(run.step("python").log + run.step("install").log, end="")
        if run.step("install").returncode != 0:
            print("action install step failed", file=sys.stderr)
            return 1
        if not python.startswith(tmp):
            print(f"the action did not install into RUNNER_TEMP: {python}", file=sys.stderr)
            return 1
        version = subprocess.run(
            [python, "-m", "authkit_setup", "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        if version != f"authkit-setup {__version__}":
            print(f"installed {version!r}, expected {__version__}", file=sys.stderr)
            return 1
        print(f"action install: {version} in a fresh virtualenv from this checkout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
