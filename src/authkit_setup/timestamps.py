"""Timestamps as the APIs send them (ISO 8601, `Z` or an offset; none means UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An aware datetime, or None when `value` is missing or not a timestamp."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def days_until(value: Any, now: datetime) -> int | None:
    """Whole days from `now` until the timestamp `value` (rounded down, negative once past),
    or None when `value` is not a timestamp."""
    moment = parse_time(value)
    return None if moment is None else (moment - now).days
