"""Ctrl-C at the slow moments of `authkit-setup render`, then a re-run that finishes the job.

The CLI runs as a child process (SIGINT needs a real process); the fake Render API holds the
state. Each interrupted run must exit 130 within a few seconds of the signal with one `error:`
line (and a `hint:`), no traceback, and the re-run must end with one store of each kind, the
variables written once and the 120 other variables intact.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI, Fault
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import EXISTING, SERVICE, fabricated_render, service_id

PROMPT_EXIT = 3.0  # seconds from SIGINT to exit
ARGS = ("render", "--service", SERVICE, "--yes", "--no-verify")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRenderAPI]:
    yield from fabricated_render(EXISTING, monkeypatch)


@dataclass
class Run:
    """The CLI in a child process, its stderr read line by line as it comes (so a test can
    act when the run says something, not after a guessed sleep)."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    said: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None

    def read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.said:
                self.lines.append(line)
                self.said.notify_all()

    def wait_for_line(self, text: str, timeout: float = 20.0) -> None:
        with self.said:
            if not self.said.wait_for(lambda: any(text in line for line in self.lines), timeout):
                raise AssertionError(f"the run never said {text!r}: {self.lines}")


def start(api: FakeRenderAPI, *args: str) -> Run:
    env = {
        **os.environ,
        "RENDER_API_URL": api.base_url,
        "RENDER_API_KEY": FAKE_RENDER_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    # `python -m authkit_setup`, with SIGINT handled as Python normally does: a suite started
    # in the background (`pytest &`, some CI runners) hands its children SIGINT ignored, and
    # Python keeps an ignored SIGINT ignored, so the interrupt would never arrive.
    launcher = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'authkit-setup'; runpy.run_module('authkit_setup', run_name='__main__')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    run = Run(proc)
    run.reader = threading.Thread(target=run.read_stderr, daemon=True)
    run.reader.start()
    return run


def interrupt(run: Run) -> tuple[CliResult, float]:
    """Send SIGINT; return the result and the seconds the process took to exit."""
    proc = run.proc
    assert proc.poll() is None, "the run ended before the interrupt"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    seconds = time.monotonic() - sent
    assert proc.stdout is not None and run.reader is not None
    stdout = proc.stdout.read()
    run.reader.join(timeout=10)  # stderr is at its end once the process is gone
    assert not run.reader.is_alive(), "stderr never reached its end"
    return CliResult(proc.returncode, stdout, "".join(run.lines)), seconds


def assert_clean_interrupt(result: CliResult, seconds: float) -> None:
    assert result.exit_code == 130, result.output
    assert seconds < PROMPT_EXIT, f"took {seconds:.1f} s to stop after SIGINT"
    assert "Traceback" not in result.output, result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1 and "interrupted" in lines[errors[0]], result.stderr
    assert all(line.startswith(("error:", "hint:")) for line in lines[errors[0] :]), lines
    assert len(lines[errors[0] :]) <= 2
    assert_no_secret(result)


def assert_finished(api: FakeRenderAPI) -> None:
    pgs, kvs = api.postgres_named("authkit-db"), api.key_values_named("authkit-redis")
    assert len(pgs) == 1 and len(kvs) == 1
    sid = service_id(api)
    env = api.env(sid)
    assert {k: v for k, v in env.items() if k.startswith("EXISTING_")} == EXISTING
    assert env["DATABASE_URL"] == api.connection_info(pgs[0]["id"])["internalConnectionString"]
    assert env["REDIS_URL"] == api.connection_info(kvs[0]["id"])["internalConnectionString"]
    assert api.bulk_env_put_calls == []
    assert api.count("POST", "/postgres") == 1 and api.count("POST", "/key-value") == 1
    assert api.deploy_count(sid) == 1


def rerun() -> CliResult:
    result = run_cli(*ARGS)
    assert result.exit_code == 0, result.output
    return result


def test_interrupt_while_waiting_for_the_stores(fake: FakeRenderAPI) -> None:
    fake.postgres_ready_after = 30.0
    fake.redis_ready_after = 30.0
    run = start(fake, *ARGS)
    run.wait_for_line("authkit-redis: unknown (0 s)")  # the wait loop has begun
    result, seconds = interrupt(run)
    assert_clean_interrupt(result, seconds)
    assert fake.count("PUT") == 0

    fake.postgres_ready_after = fake.redis_ready_after = 0.0  # Render finished meanwhile
    rerun()
    assert_finished(fake)


def test_interrupt_while_writing_the_variables(fake: FakeRenderAPI) -> None:
    # The second PUT (REDIS_URL) hangs: DATABASE_URL is written, REDIS_URL is not.
    fake.inject("PUT", r"/services/[^/]+/env-vars/.*", Fault.slow(0.0), times=1)
    fake.inject("PUT", r"/services/[^/]+/env-vars/.*", Fault.slow(20.0), times=1)
    run = start(fake, *ARGS)
    # The second PUT has reached the fake, which holds it: the client is blocked inside it.
    fake.wait_until(lambda: fake.count("PUT") >= 2, "the second variable write")
    result, seconds = interrupt(run)
    assert_clean_interrupt(result, seconds)
    assert "DATABASE_URL" in fake.env(service_id(fake))

    rerun()
    assert_finished(fake)


def test_interrupt_while_creating_the_stores(fake: FakeRenderAPI) -> None:
    # Both creates hang inside worker threads while the main thread waits for them.
    # Far longer than PROMPT_EXIT: a process that waits for its workers cannot pass.
    slow = fake.inject("POST", r"/(postgres|key-value)", Fault.slow(PROMPT_EXIT + 2.0), times=2)
    run = start(fake, *ARGS)
    fake.wait_until(lambda: slow.fired == 2, "both creates to reach the fake")
    result, seconds = interrupt(run)
    assert_clean_interrupt(result, seconds)

    # Render applies a create it received even when the client is gone: the re-run reuses it.
    fake.wait_until_idle(timeout=PROMPT_EXIT + 10.0)  # the hung creates are applied
    rerun()
    assert_finished(fake)


def test_interrupt_while_waiting_for_a_rate_limit(fake: FakeRenderAPI) -> None:
    fake.inject("GET", r"/services", Fault.rate_limited(reset=60))
    run = start(fake, *ARGS)
    run.wait_for_line("waiting 60 s for the Render rate limit (429)")  # asleep in its backoff
    result, seconds = interrupt(run)
    assert_clean_interrupt(result, seconds)
    assert "waiting 60 s for the Render rate limit (429)" in result.stderr

    rerun()
    assert_finished(fake)
