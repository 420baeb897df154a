"""Shared pieces of every evidence parser: the safe readers (common.safe_formats) and small value helpers.

`EvidenceParseError` is the one "this document cannot be read" error, `common.safe_formats.UnreadableDocument`,
under the name the parsers have always raised.
"""

from __future__ import annotations

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
    "iterparse_xml",
    "json_type_name",
    "local_name",
    "parse_json",
    "parse_xml",
    "refuse_declared_entities",
    "secure_xml_parser",
    "seconds",
    "utc_now",
]
