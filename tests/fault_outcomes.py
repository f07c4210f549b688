"""The outcomes a fault-matrix cell may declare, and the tally the session summary prints.

A cell declares ONE outcome, derived from the retry policy (http.py and flow/provision.py):

- idempotent calls (GET, PUT, DELETE) are retried on 429, 5xx, timeouts, dropped connections
  and unreadable bodies, so a single fault there is absorbed: the run RECOVERS;
- a POST that creates something is never blindly retried: after an ambiguous failure the
  client looks the name up and creates only if it is not there, so the run RECOVERS too,
  with exactly one store;
- a 401 is no transient fault: the run FAILS CLEANLY (exit 3, the error names the key's flag
  and env var), and the re-run, with the key accepted again, succeeds.

`tests/conftest.py` prints the tally at the end of the session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tests.fakes.common import InjectedFault
from tests.helpers import CliResult


@dataclass(frozen=True)
class Recovers:
    """The first run exits 0: the client absorbed the fault."""

    label = "recovers within the run"


@dataclass(frozen=True)
class FailsCleanly:
    """The first run stops with `exit_code` and one `error:` line holding `error` (plus at most
    one `hint:` line holding each of `hints`); a re-run succeeds."""

    exit_code: int
    error: str
    hints: tuple[str, ...] = ()

    label = "fails cleanly, then the re-run succeeds"


Outcome = Recovers | FailsCleanly

TALLY: Counter[tuple[str, str]] = Counter()  # (matrix, outcome label) -> passed cells


def record(matrix: str, outcome: Outcome) -> None:
    """Count a cell that passed with its declared outcome (called as its last line)."""
    TALLY[(matrix, outcome.label)] += 1


def assert_fails_cleanly(result: CliResult, expected: FailsCleanly) -> None:
    """An `error:` line with the expected text, at most a `hint:` line right after it, the
    declared exit code, nothing else after the error."""
    assert result.exit_code == expected.exit_code, result.output
    lines = result.stderr.strip().splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    tail = lines[errors[0] :]
    assert len(tail) <= 2 and all(line.startswith(("error:", "hint:")) for line in tail), tail
    assert len(tail[0]) < 400, tail[0]
    assert expected.error in tail[0], tail[0]
    if expected.hints:
        assert len(tail) == 2 and all(hint in tail[1] for hint in expected.hints), tail


def assert_cell(
    run: Callable[[], CliResult], injected: InjectedFault, call_name: str, expected: Outcome
) -> None:
    """Run the cell: the run makes the call the fault is injected into, and ends as `expected`
    declares (a run that fails cleanly is followed by a re-run, which must succeed)."""
    first = run()
    assert injected.fired == 1, f"the run never made the {call_name} call"
    if isinstance(expected, Recovers):
        assert first.exit_code == 0, first.output
    else:
        assert_fails_cleanly(first, expected)
        again = run()
        assert again.exit_code == 0, again.output
