"""Reading times: the one parser for what tools write and the one parser for what people type in a query.

Custody stores and prints UTC. A time without an offset is taken as UTC, as CI runners and Custody itself write UTC.
Standard library only: the offline verifier (`custody_cli`) reads bundle times with it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any

from common.errors import ValidationFailed

_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: Any) -> datetime | None:
    """A timestamp as real tools write it, as an aware UTC datetime; None for an empty or unreadable value.

    Accepts ISO 8601 with 'Z' or an offset, nanosecond fractions (Trivy, Grype, OpenVEX), a trailing ' UTC'
    (TestNG), naive values (jest-junit, pytest), epoch numbers in seconds or milliseconds (Cobertura, JaCoCo), and a
    datetime already parsed.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        number = float(value)
        if number > 1e11:  # milliseconds: 1e11 seconds is the year 5138
            number /= 1000.0
        try:
            return datetime.fromtimestamp(number, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = text.replace(" ", "T", 1) if "T" not in text and len(text) > 10 else text
    # Python reads at most 6 fractional digits: cut nanoseconds to microseconds.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def query_moment(value: str | None, *, end_of_day: bool = False, name: str = "") -> datetime | None:
    """A query-string date (YYYY-MM-DD) or ISO 8601 date-time as an aware UTC datetime; None when not given.

    A plain date covers its whole UTC day: its first microsecond, or with `end_of_day` its last, so `until=2025-01-31`
    includes that day. Anything else is a 400 that says how to write it.
    """
    value = (value or "").strip()
    if not value:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            day = None
        if day is not None:
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    elif (moment := parse_timestamp(value)) is not None and not value.isdigit():
        return moment
    label = f"{name}=" if name else ""
    raise ValidationFailed(
        f"{label}{value[:40]!r} is not a date: use YYYY-MM-DD or an ISO 8601 date-time (2025-01-31T09:30:00Z)",
        **({"field": name} if name else {}),
    )


def query_day(value: str | None, *, name: str) -> date:
    """A required query-string day (YYYY-MM-DD); a 400 that says which parameter is wrong and how to write it."""
    moment = query_moment(value, name=name) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", (value or "").strip()) else None
    if moment is None:
        raise ValidationFailed(f"{name}={value or ''!r} is not a date: give it as YYYY-MM-DD", field=name)
    return moment.date()
