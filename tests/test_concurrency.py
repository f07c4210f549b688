"""Several `authkit-setup render` runs at once end with exactly one store of each kind.

Each run is its own process (as two CI jobs would be) against one fake Render API. The fake
holds every create for a moment, so all runs look the names up, find nothing and create:
pipeline/provision.settle must then keep the oldest store of each kind and delete the others,
and every run must wire the service to the survivors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI, Fault
from tests.render_env import EXISTING, SERVICE, fabricated_render, service_id

CREATE_DELAY = 1.5  # longer than the start-up skew between the processes


@pytest.fixture
def fake() -> Iterator[FakeRenderAPI]:
    yield from fabricated_render(EXISTING)


@pytest.mark.parametrize(
    ("runs", "plan"),
    [(2, "basic_256mb"), (3, "basic_256mb"), (2, "free")],
    ids=["2-runs-paid", "3-runs-paid", "2-runs-free-postgres"],
)
def test_simultaneous_runs_make_one_store_of_each_kind(
    fake: FakeRenderAPI, runs: int, plan: str
) -> None:
    """Paid plans: every create succeeds and settle deletes the newer stores. The free plan:
    Render refuses a second free Postgres per workspace, so the later runs look the name up and
    use the first run's database."""
    fake.inject("POST", r"/(postgres|key-value)", Fault.slow(CREATE_DELAY), times=None)
    env = {**os.environ, "RENDER_API_URL": fake.base_url, "RENDER_API_KEY": FAKE_RENDER_KEY}
    command = [sys.executable, "-m", "authkit_setup", "render", "--service", SERVICE, "--yes"]
    procs = [
        subprocess.Popen(
            [*command, "--postgres-plan", plan, "--no-verify", "--json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(runs)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr

    # The race really happened: every run created both stores.
    assert fake.count("POST", "/postgres") == runs
    assert fake.count("POST", "/key-value") == runs
    refused = runs - 1 if plan == "free" else 0  # free: 400, nothing to delete
    assert fake.count("DELETE", "/postgres") == runs - 1 - refused
    assert fake.count("DELETE", "/key-value") == runs - 1

    pgs, kvs = fake.postgres_named("authkit-db"), fake.key_values_named("authkit-redis")
    assert len(pgs) == 1 and len(kvs) == 1
    sid = service_id(fake)
    env_vars = fake.env(sid)
    assert (
        env_vars["DATABASE_URL"] == fake.connection_info(pgs[0]["id"])["internalConnectionString"]
    )
    assert env_vars["REDIS_URL"] == fake.connection_info(kvs[0]["id"])["internalConnectionString"]
    assert {k: v for k, v in env_vars.items() if k.startswith("EXISTING_")} == EXISTING
    assert fake.bulk_env_put_calls == []

    docs = [json.loads(stdout) for stdout, _ in outputs]
    survivors = {(pgs[0]["id"], kvs[0]["id"])}
    assert {(d["resources"][0]["id"], d["resources"][1]["id"]) for d in docs} == survivors
    # Exactly one run reports each store as created by it; the others reused the winner.
    assert sum(d["resources"][0]["created"] for d in docs) == 1
    assert sum(d["resources"][1]["created"] for d in docs) == 1
