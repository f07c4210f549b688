"""One error tree for the whole tool. Domain code raises; `outcome.failure_exit_code` maps to
exit codes (for `cli.main` and launch's `check` alike).

AuthkitError                  exit 1 unless a subclass says otherwise
├── UsageError                exit 2  bad input, conflicting flags, unreadable files
├── CredentialsError          exit 3  missing or rejected API key / token
│   └── MissingCredentialsError       every credential nobody gave, named at once
├── ApiError                  exit 1  a provider API answered with an error
│   ├── NotFoundError                 404
│   ├── RateLimitedError              429 after the retry budget
│   ├── ServerError                   5xx after the retry budget
│   ├── ApiConnectionError            no answer: refused, reset, timed out
│   └── BadResponseError              malformed or empty body where JSON was expected
├── PlanConflictError         exit 1  the plan stops before any change (region, duplicates, foreign value)
├── ResourceFailedError       exit 1  a store or deploy reached a failing status
├── WaitTimeoutError          exit 1  a store or deploy did not become ready in time
├── LocalServerError          exit 1  `authkit-setup local` could not start or reach a server
└── InterruptedByUser         exit 130 Ctrl-C; the next run resumes
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CREDENTIALS = 3
EXIT_INTERRUPTED = 130

ErrorCode = Literal[
    "failed",
    "usage",
    "missing_credentials",
    "invalid_credentials",
    "api_error",
    "not_found",
    "rate_limited",
    "server_error",
    "network_error",
    "bad_response",
    "plan_conflict",
    "resource_failed",
    "timeout",
    "local_server",
    "interrupted",
]


class AuthkitError(Exception):
    """Base of every error the tool reports. `str()` is the one-line message."""

    code: ErrorCode = "failed"
    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(AuthkitError):
    code: ErrorCode = "usage"
    exit_code = EXIT_USAGE


class CredentialsError(AuthkitError):
    code: ErrorCode = "missing_credentials"
    exit_code = EXIT_CREDENTIALS


@dataclass(frozen=True)
class MissingCredential:
    """A credential nobody gave: what it is, the flag and the variable that give it, and where
    to get one."""

    what: str  # "Neon API key"
    flag: str  # "--neon-api-key"
    variable: str  # "NEON_API_KEY"
    where: str  # "Neon Console → Account settings → API keys"
    hint: str | None = None  # when it is the only one missing; default: "create one at <where>"


class MissingCredentialsError(CredentialsError):
    """Every credential a command lacks, in one error: a run that needs a Neon key and an
    Upstash login says so for all three at once, not one per try."""

    def __init__(self, missing: Sequence[MissingCredential]) -> None:
        self.missing = tuple({c.variable: c for c in missing}.values())
        if len(self.missing) == 1:
            (only,) = self.missing
            super().__init__(
                f"no {only.what}: pass {only.flag} or set {only.variable} "
                "(in the environment or in .env)",
                hint=only.hint or f"create one at {only.where}",
            )
            return
        named = "; ".join(f"{c.what} ({c.flag} or {c.variable})" for c in self.missing)
        super().__init__(
            f"{len(self.missing)} credentials missing: {named}. Pass the flags or set the "
            "variables (in the environment or in .env)",
            hint="get them at " + "; ".join(dict.fromkeys(c.where for c in self.missing)),
        )

    @classmethod
    def joined(cls, errors: Iterable[MissingCredentialsError]) -> MissingCredentialsError:
        return cls([c for err in errors for c in err.missing])


class ApiError(AuthkitError):
    code: ErrorCode = "api_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.request_id = request_id
        # The API's own words (its `message`), without our "API: METHOD /path: status" frame,
        # for callers that explain a refusal in their own sentence.
        self.detail = detail


class NotFoundError(ApiError):
    code: ErrorCode = "not_found"


class RateLimitedError(ApiError):
    code: ErrorCode = "rate_limited"


class ServerError(ApiError):
    code: ErrorCode = "server_error"


class ApiConnectionError(ApiError):
    code: ErrorCode = "network_error"


class BadResponseError(ApiError):
    code: ErrorCode = "bad_response"


class PlanConflictError(AuthkitError):
    code: ErrorCode = "plan_conflict"


class ResourceFailedError(AuthkitError):
    code: ErrorCode = "resource_failed"


class WaitTimeoutError(AuthkitError):
    code: ErrorCode = "timeout"


class LocalServerError(AuthkitError):
    code: ErrorCode = "local_server"


class InterruptedByUser(AuthkitError):
    code: ErrorCode = "interrupted"
    exit_code = EXIT_INTERRUPTED
