"""Shared pieces of every evidence parser: the safe readers (common.safe_formats) and small value helpers.

`EvidenceParseError` is the one "this document cannot be read" error, `common.safe_formats.UnreadableDocument`,
under the name the parsers have always raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from common.safe_formats import (
    UnreadableDocument,
    clean_text,
    iterparse_xml,
    json_type_name,
    local_name,
    parse_json,
    parse_xml,
    refuse_declared_entities,
    secure_xml_parser,
)

EvidenceParseError = UnreadableDocument

WARNING_LIMIT = 50  # distinct warnings kept per document; repeats of one are counted, not listed
_WARNINGS: ContextVar[dict[str, list] | None] = ContextVar("evidence_parse_warnings", default=None)


def warn(text: str, *, location: str = "") -> None:
    """Record something the parser had to interpret (a tool quirk it tolerated); shown with the evidence.

    Repeats of one text are counted against its first location. Outside `collecting_warnings` it does nothing,
    so the parsers stay usable on their own.
    """
    found = _WARNINGS.get()
    if found is None:
        return
    entry = found.get(text)
    if entry is not None:
        entry[1] += 1
    elif len(found) < WARNING_LIMIT:
        found[text] = [location, 1]


@contextmanager
def collecting_warnings() -> Iterator[list[str]]:
    """Collect the warnings of the parsing done inside; the list is filled when the block ends."""
    found: dict[str, list] = {}
    token = _WARNINGS.set(found)
    written: list[str] = []
    try:
        yield written
    finally:
        _WARNINGS.reset(token)
        written.extend(_warning_line(text, location, count) for text, (location, count) in found.items())


def _warning_line(text: str, location: str, count: int) -> str:
    where = f" (at {location}" + (f" and {count - 1} more place{'s' if count > 2 else ''})" if count > 1 else ")")
    return text + (where if location else (f" ({count} times)" if count > 1 else ""))


def seconds(value: Any) -> float | None:
    """A duration in seconds from a number or numeric string; None when absent or unreadable."""
    if value in (None, ""):
        return None
    try:
        number = float(str(value).replace(",", ""))
    except ValueError:
        return None
    if number != number or number < 0:  # NaN or negative
        return None
    return number


def utc_now() -> datetime:
    return datetime.now(tz=UTC)


__all__ = [
    "EvidenceParseError",
    "clean_text",
    "collecting_warnings",
    "iterparse_xml",
    "json_type_name",
    "local_name",
    "parse_json",
    "parse_xml",
    "refuse_declared_entities",
    "secure_xml_parser",
    "seconds",
    "utc_now",
    "warn",
]
