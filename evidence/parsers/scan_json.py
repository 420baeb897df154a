"""Reading scanner JSON: every complaint names the JSON path at fault; null where a list belongs is empty."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from common.safe_formats import json_type_name
from evidence.parsers.base import EvidenceParseError, clean_text, parse_json
from evidence.parsers.results import Vulnerability

TITLE_LIMIT = 500


def load_json(data: Any) -> Any:
    """Accept raw bytes, text, or an already-decoded JSON value."""
    if isinstance(data, bytes | bytearray | memoryview):
        return parse_json(bytes(data))
    if isinstance(data, str):
        return parse_json(data.encode("utf-8"))
    return data


def json_object(value: Any, path: str, *, what: str = "an object") -> dict:
    if not isinstance(value, dict):
        raise EvidenceParseError(f"expected {what}, found {json_type_name(value)}", location=path)
    return value


def json_optional_object(value: Any, path: str) -> dict:
    return {} if value is None else json_object(value, path)


def json_array(value: Any, path: str) -> list:
    """A JSON array; null or absent counts as empty, as several scanners write null for "nothing"."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise EvidenceParseError(f"expected an array, found {json_type_name(value)}", location=path)
    return value


def json_required_text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not clean_text(value).strip():
        raise EvidenceParseError(f"expected a non-empty string, found {json_type_name(value)}", location=path)
    return clean_text(value).strip()


def json_text(value: Any, *, limit: int | None = None) -> str:
    """Optional scalar text; objects and arrays where text belongs are ignored, not stringified."""
    if isinstance(value, dict | list):
        return ""
    return clean_text(value, limit=limit).strip()


def json_number(value: Any) -> float | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def unique_texts(values: Any) -> tuple[str, ...]:
    """Cleaned, non-empty, first-seen-order strings."""
    seen: dict[str, None] = {}
    for value in values:
        text = json_text(value)
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def dedupe_vulnerabilities(vulnerabilities: list[Vulnerability]) -> list[Vulnerability]:
    """Scanners repeat a match once per file location; one row per (id, package, version) is enough."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for vulnerability in vulnerabilities:
        key = (vulnerability.vuln_id, vulnerability.package_name, vulnerability.package_version)
        if key not in seen:
            seen.add(key)
            unique.append(vulnerability)
    return unique
