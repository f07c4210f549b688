"""Render one-off jobs and their logs: the calls `--verify-inside` needs.

Facts (shared/reference/render-api.md §6.2): `POST /services/{id}/jobs {"startCommand"}` → 201
job; `GET /services/{id}/jobs/{jobId}`; `GET /services/{id}/jobs` (items `{job, cursor}`);
`POST /services/{id}/jobs/{jobId}/cancel`; a job's `status` is null, `pending` or `running` until
it ends `succeeded`, `failed` or `canceled`. Its output is read through
`GET /logs?ownerId=…&resource=<jobId>` → `{hasMore, nextStartTime, nextEndTime, logs[]}`.

UNCONFIRMED, so parsed defensively: the shape of one log entry (we read `message`, falling back to
`text`), whether the logs of a finished job are complete at once, and the paging of `/logs`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from authkit_setup.errors import BadResponseError
from authkit_setup.http import ApiClient, expect_type, paginate_cursor
from authkit_setup.providers.render import RenderClient

JOBS_PAGE = 20
LOG_PAGE_LIMIT = 100
LOG_PAGES_MAX = (
    10  # a probe prints one line; more pages than this means we are reading the wrong logs
)


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


@dataclass(frozen=True)
class Job:
    id: str
    start_command: str
    status: str | None  # null right after creation (Render's docs show it)
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def from_api(cls, body: Any) -> Job:
        body = expect_type(body, dict, "job")
        job_id = body.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise BadResponseError("Render returned a job without an id")
        status = body.get("status")
        return cls(
            id=str(job_id),
            start_command=str(body.get("startCommand") or ""),
            status=status if isinstance(status, str) and status else None,
            created_at=_text(body.get("createdAt")),
            started_at=_text(body.get("startedAt")),
            finished_at=_text(body.get("finishedAt")),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def start_job(client: ApiClient, service_id: str, start_command: str) -> Job:
    """Start one job. Never retried: a lost answer may still have started it (look it up)."""
    body = client.request(
        "POST",
        f"/services/{service_id}/jobs",
        json_body={"startCommand": start_command},
        idempotent=False,
    )
    return Job.from_api(body)


def get_job(client: ApiClient, service_id: str, job_id: str) -> Job:
    return Job.from_api(client.get(f"/services/{service_id}/jobs/{job_id}"))


def recent_jobs(client: ApiClient, service_id: str) -> Iterator[Job]:
    """The service's jobs, as listed (one page is enough to find one still running)."""
    for entry in paginate_cursor(
        client, f"/services/{service_id}/jobs", item_key="job", limit=JOBS_PAGE
    ):
        yield Job.from_api(entry)


def cancel_job(client: ApiClient, service_id: str, job_id: str) -> None:
    client.request(
        "POST", f"/services/{service_id}/jobs/{job_id}/cancel", json_body={}, expect_json=False
    )


def has_live_deploy(client: RenderClient, service_id: str) -> bool:
    """Whether the service has a successful build a job can start from (a `live` deploy)."""
    return any(d.get("status") == "live" for d in client.deploys(service_id, status="live"))


def job_log_lines(client: ApiClient, owner_id: str, job_id: str) -> list[str]:
    """Every log message of the job, in the order served (the logs API pages by time)."""
    params: dict[str, Any] = {"ownerId": owner_id, "resource": job_id, "limit": LOG_PAGE_LIMIT}
    lines: list[str] = []
    for _ in range(LOG_PAGES_MAX):
        body = client.get("/logs", params)
        entries = body.get("logs") if isinstance(body, dict) else body
        if not isinstance(entries, list):
            break
        for entry in entries:
            if isinstance(entry, str):
                lines.append(entry)
            elif isinstance(entry, dict):
                text = entry.get("message", entry.get("text"))
                if isinstance(text, str):
                    lines.append(text)
        if not (isinstance(body, dict) and body.get("hasMore")):
            break
        start, end = body.get("nextStartTime"), body.get("nextEndTime")
        if not isinstance(start, str) or not isinstance(end, str):
            break
        params = {**params, "startTime": start, "endTime": end}
    return lines
