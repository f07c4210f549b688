"""The fake Render API's one-off jobs and logs (tests/fakes/render_jobs.py), pinned so the
--verify-inside tests can lean on it: jobs really run, see only what a Render job would."""

from __future__ import annotations

import shlex
from typing import Any

import httpx
import pytest

from tests.fakes.fixtures import MakeRenderFake
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI


def client(fake: FakeRenderAPI) -> httpx.Client:
    return httpx.Client(
        base_url=fake.base_url, headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"}
    )


@pytest.fixture
def fake(make_render_fake: MakeRenderFake) -> FakeRenderAPI:
    return make_render_fake(deploy_build_after=0.0, deploy_finish_after=0.0)


def live_service(fake: FakeRenderAPI, **kwargs: Any) -> str:
    service_id = str(fake.add_service("api", env={"GREETING": "hello"}, **kwargs)["id"])
    with client(fake) as http:
        http.post(f"/services/{service_id}/deploys", json={}).raise_for_status()
    return service_id


def run_job(fake: FakeRenderAPI, service_id: str, command: str) -> dict[str, Any]:
    with client(fake) as http:
        created = http.post(f"/services/{service_id}/jobs", json={"startCommand": command})
        assert created.status_code == 201, created.text
        assert created.json()["status"] is None  # as Render's docs show right after creation
        fake.jobs.wait_all()
        job = http.get(f"/services/{service_id}/jobs/{created.json()['id']}").json()
        logs = http.get("/logs", params={"ownerId": fake.owner_id, "resource": job["id"]})
    return {**job, "lines": [entry["message"] for entry in logs.json()["logs"]]}


def test_job_sees_the_service_env_and_only_the_runtime_on_path(fake: FakeRenderAPI) -> None:
    service_id = live_service(fake)
    program = 'console.log(process.env.GREETING, process.env.PATH.split(":").length)'
    job = run_job(fake, service_id, f"node -e {shlex.quote(program)}")
    assert job["status"] == "succeeded"
    assert job["lines"] == ["hello 1"]


def test_exit_status_is_the_job_status(fake: FakeRenderAPI) -> None:
    assert run_job(fake, live_service(fake), "echo bye; exit 3")["status"] == "failed"


def test_public_names_do_not_resolve_inside_a_job(fake: FakeRenderAPI) -> None:
    program = 'require("dns").lookup("example.com", (e) => console.log(e && e.code))'
    job = run_job(fake, live_service(fake), f"node -e {shlex.quote(program)}")
    assert job["lines"] == ["ENOTFOUND"]


@pytest.mark.parametrize(
    ("plan", "deployed", "message"),
    [("free", True, "free instance type"), ("starter", False, "no successful build")],
)
def test_jobs_refused(fake: FakeRenderAPI, plan: str, deployed: bool, message: str) -> None:
    service_id = live_service(fake, plan=plan) if deployed else str(fake.add_service("api")["id"])
    with client(fake) as http:
        answer = http.post(f"/services/{service_id}/jobs", json={"startCommand": "true"})
    assert answer.status_code == 400 and message in answer.json()["message"]
    assert fake.jobs.jobs() == []


def test_logs_need_the_owner_and_cancel_needs_a_running_job(fake: FakeRenderAPI) -> None:
    service_id = live_service(fake)
    job = run_job(fake, service_id, "true")
    with client(fake) as http:
        assert http.get("/logs", params={"resource": job["id"]}).status_code == 400
        cancel = http.post(f"/services/{service_id}/jobs/{job['id']}/cancel", json={})
    assert cancel.status_code == 409
