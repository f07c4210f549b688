"""The probe that checks the stores from inside a Render service, and how its answer is read.

The probe is a small program in the service's own runtime, using only that runtime's standard
library (probes/node_probe.js for `node -e`, probes/python_probe.py.txt for `python3 -c`). It
reads DATABASE_URL / REDIS_URL from the job's own environment, so the start command carries no
secret: only the program, a per-step timeout and the targets to check. It prints one JSON line
starting with `{"authkit_probe":` and exits non-zero when any check failed.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, cast

from authkit_setup.diagnostics.model import RUNGS, CheckResult, Rung, RungName, Target

PROBE_KEY = "authkit_probe"  # the key of the probe's one JSON line; in every start command
VIA_INSIDE = "inside"


@dataclass(frozen=True)
class Probe:
    runtime: str
    launcher: str  # the interpreter and its "run this source" flag
    source_file: str
    comment: str  # a whole-line comment prefix, dropped to keep the command short
    strip_indent: bool  # JavaScript does not need its indentation; Python does
    step_unit: float  # the probe takes its per-step timeout in ms (node) or seconds (python)


PROBES: dict[str, Probe] = {
    "node": Probe("node", "node -e", "node_probe.js", "//", True, 1000.0),
    "python": Probe("python", "python3 -c", "python_probe.py.txt", "#", False, 1.0),
}


@cache
def probe_source(runtime: str) -> str:
    probe = PROBES[runtime]
    text = resources.files("authkit_setup.diagnostics").joinpath("probes", probe.source_file)
    lines = []
    for line in text.read_text(encoding="utf-8").splitlines():
        bare = line.strip()
        if not bare or bare.startswith(probe.comment):
            continue
        lines.append(bare if probe.strip_indent else line.rstrip())
    return "\n".join(lines)


def probe_command(runtime: str, targets: Sequence[Target], *, step_timeout: float) -> str | None:
    """The job's start command, or None when the runtime has no probe. It holds no secret."""
    probe = PROBES.get(runtime)
    if probe is None:
        return None
    step = max(1, round(step_timeout * probe.step_unit))
    return f"{probe.launcher} {shlex.quote(probe_source(runtime))} {step} {','.join(targets)}"


def find_probe_report(lines: Iterable[str]) -> dict[str, Any] | None:
    """The probe's JSON line among the job's log lines (the last one wins), or None."""
    found: dict[str, Any] | None = None
    for message in lines:
        for line in message.splitlines():
            mark = line.find(f'"{PROBE_KEY}"')  # with or without a space after the colon
            start = line.rfind("{", 0, mark + 1) if mark >= 0 else -1
            if start < 0:
                continue
            try:
                doc = json.loads(line[start:])
            except ValueError:
                continue
            if isinstance(doc, dict) and isinstance(doc.get("checks"), list):
                found = doc
    return found


@dataclass
class InsideCheckResult(CheckResult):
    """A check made by a probe job inside the service (`"via": "inside"` in JSON).

    `unexplained`: the job failed but its output could not be read, so no rung can be named;
    the check is still a failure (never a pass without a succeeded probe)."""

    job: dict[str, Any] | None = None
    unexplained: bool = False

    @property
    def ok(self) -> bool:
        return super().ok and not self.unexplained

    @property
    def via(self) -> str:
        return VIA_INSIDE

    def to_json(self, *, with_skip: bool = False) -> dict[str, Any]:
        doc = super().to_json(with_skip=with_skip)
        doc["via"] = VIA_INSIDE
        doc["job"] = self.job
        return doc


def _rung(entry: Any) -> Rung | None:
    if not isinstance(entry, dict) or entry.get("name") not in RUNGS:
        return None
    ms = entry.get("ms")
    return Rung(
        name=cast(RungName, entry["name"]),
        ok=entry.get("ok") is True,
        ms=float(ms) if isinstance(ms, int | float) else 0.0,
        detail=str(entry.get("detail") or ""),
    )


def result_from_probe(
    target: Target, url: str, entry: dict[str, Any], *, hint: str, job: dict[str, Any]
) -> InsideCheckResult:
    """One probe check as a check result. It passes only if the probe says so, rung by rung."""
    result = InsideCheckResult(target, url, job=job)
    result.rungs = [r for r in map(_rung, entry.get("rungs") or []) if r is not None]
    version = entry.get("server_version")
    if isinstance(version, str) and version:
        result.server_version = f"PostgreSQL {version}" if target == "postgres" else version
    failed = entry.get("failed_rung")
    if (
        entry.get("ok") is True
        and failed is None
        and result.rungs
        and all(r.ok for r in result.rungs)
    ):
        return result
    raw_error = entry.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    if failed in RUNGS:
        result.failed_rung = cast(RungName, failed)
    else:  # a report that is neither a clean pass nor names its failing rung
        result.unexplained = True
    result.error_code = str(error.get("code") or "probe_failed")
    result.error_message = str(error.get("message") or "the probe reported a failure")
    result.hint = hint
    return result
