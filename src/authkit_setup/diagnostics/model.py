"""Results of the `check` ladder. The JSON keys are a contract: keep them stable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from authkit_setup.kinds import CheckName
from authkit_setup.secrets import mask_url

Target = CheckName  # a kind, as a check result names it (kinds.py)
RungName = Literal["url", "dns", "tcp", "tls", "auth", "database", "query"]
RUNGS: tuple[RungName, ...] = ("url", "dns", "tcp", "tls", "auth", "database", "query")


@dataclass
class Rung:
    name: RungName
    ok: bool
    ms: float
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "ms": round(self.ms, 1), "detail": self.detail}


@dataclass(frozen=True)
class TlsStatus:
    """What the TLS rung proved: encryption only, or a certificate verified against what."""

    in_use: bool
    verified: bool = False
    trust: str | None = None  # "system CAs", or the CA file the URL names
    hostname_checked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "in_use": self.in_use,
            "verified": self.verified,
            "trust": self.trust,
            "hostname_checked": self.hostname_checked,
        }


class RungFailed(Exception):
    """Raised inside a rung: stops the ladder there with a named error and one fix."""

    def __init__(self, code: str, message: str, hint: str, *, rung: RungName | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.rung = rung


@dataclass
class CheckResult:
    target: Target
    url: str
    rungs: list[Rung] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed_rung: RungName | None = None
    error_code: str | None = None
    error_message: str | None = None
    hint: str | None = None
    server_version: str | None = None
    latency_ms: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    tls: TlsStatus | None = None  # None: the TLS rung was not reached
    skipped: bool = False
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_rung is None and not self.skipped

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    @contextmanager
    def rung(self, name: RungName) -> Iterator[list[str]]:
        """Time one rung. Yield a one-item list the rung fills with its detail line."""
        detail: list[str] = [""]
        start = time.perf_counter()
        try:
            yield detail
        except RungFailed as failure:
            ms = (time.perf_counter() - start) * 1000
            failed_at = failure.rung or name
            # A failure can belong to another rung than the one running (a plaintext login the
            # server rejects for lack of TLS is a tls failure): replace that rung's entry, and
            # record the running rung as passed only if it comes before the failing one.
            self.rungs = [r for r in self.rungs if r.name != failed_at]
            if RUNGS.index(name) < RUNGS.index(failed_at):
                self.rungs.append(Rung(name, True, ms, detail[0] or "ok"))
                ms = 0.0
            self.rungs.append(Rung(failed_at, False, ms, failure.message))
            self.failed_rung = failed_at
            self.error_code = failure.code
            self.error_message = failure.message
            self.hint = failure.hint
            raise
        self.rungs.append(Rung(name, True, (time.perf_counter() - start) * 1000, detail[0] or "ok"))

    def to_json(self, *, with_skip: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "target": self.target,
            "url": mask_url(self.url),
            "ok": self.ok,
            "failed_rung": self.failed_rung,
            "rungs": [r.to_json() for r in self.rungs],
            "error": (
                {"code": self.error_code, "message": self.error_message}
                if self.error_code is not None
                else None
            ),
            "hint": self.hint,
            "warnings": list(self.warnings),
            "server_version": self.server_version,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "tls": None if self.tls is None else self.tls.to_json(),
        }
        if with_skip or self.skipped:
            doc["skipped"] = self.skipped
            doc["reason"] = self.reason
        return doc
