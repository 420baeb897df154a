"""Requirements, hazards and risk controls as JSON: {"items": [...]}, each problem named by its JSON path."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import ParseError

from common.api_parsers import SURROGATES, check_json
from common.safe_formats import UnreadableDocument, decode_json, json_type_name
from traceability.formats.records import (
    HAZARD_FIELDS,
    LINK_KINDS,
    RESERVED_NAMES,
    ImportResult,
    ItemFormatError,
    ItemRecord,
    LinkRecord,
    check_item_fields,
    clean,
    column_key,
    decode_text,
    make_record,
    sorted_records,
    target_kind_problems,
)

_JSON_STRING_FIELDS = ("id", "kind", "title", "text", "status", *HAZARD_FIELDS)
_JSON_FIELDS = (*_JSON_STRING_FIELDS, "attributes", "links")


def read_json(data: bytes) -> ImportResult:
    """Read `{"items": [...]}` (or a bare list of items); every problem names its JSON path."""
    text = decode_text(data, what="JSON")
    try:
        document = decode_json(text, what="the file")
        # What the items become is stored: unpaired surrogates and nesting past the limit are refused here, by the
        # rule every API body follows, naming the JSON path (NUL is dropped from each field, as in CSV and ReqIF).
        check_json(document, refused=SURROGATES)
    except UnreadableDocument as exc:
        raise ItemFormatError(str(exc).removeprefix(f"{exc.location}: "), location=exc.location) from None
    except ParseError as exc:
        raise ItemFormatError(str(exc.detail)) from None
    warnings: list[str] = []
    tool = ""
    if isinstance(document, list):
        items, prefix = document, ""
    elif isinstance(document, dict):
        if "items" not in document:
            raise ItemFormatError('the JSON object has no "items" list', location="items")
        items, prefix = document["items"], "items"
        if not isinstance(items, list):
            raise ItemFormatError(f"must be a list of items, not {json_type_name(items)}", location="items")
        tool = document.get("tool", "")
        if not isinstance(tool, str):
            raise ItemFormatError(f"must be a string, not {json_type_name(tool)}", location="tool")
        for key in sorted(set(document) - {"items", "tool"}):
            warnings.append(f"{key}: ignored (only 'items' and 'tool' are read at the top level)")
    else:
        raise ItemFormatError(
            f'the JSON must be {{"items": [...]}} or a list of items, not {json_type_name(document)}', location="$"
        )

    problems: list[tuple[str, str]] = []
    records: list[ItemRecord] = []
    record_paths: list[str] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(items):
        path = f"{prefix}[{index}]"
        record = _json_record(item=item, path=path, problems=problems, warnings=warnings)
        if record is None:
            continue
        if record.identifier in seen:
            problems.append((f"{path}.id", f"id {record.identifier} is already used at {seen[record.identifier]}"))
            continue
        seen[record.identifier] = path
        records.append(record)
        record_paths.append(path)
    for index, message in target_kind_problems(records):
        problems.append((f"{record_paths[index]}.links", message))
    if problems:
        raise ItemFormatError.from_problems(what="JSON", problems=problems)
    return ImportResult(records=records, warnings=warnings, source_format="json", tool=clean(tool))


def _json_scalar(*, value: Any, path: str, problems: list[tuple[str, str]]) -> str:
    """A string field; numbers are accepted as their text (severity 4), other shapes are refused."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    problems.append((path, f"must be a string, not {json_type_name(value)}"))
    return ""


def _json_record(*, item: Any, path: str, problems: list[tuple[str, str]], warnings: list[str]) -> ItemRecord | None:
    if not isinstance(item, dict):
        problems.append((path, f"must be an object with id, title, ..., not {json_type_name(item)}"))
        return None
    before = len(problems)
    for key in item:
        if key not in _JSON_FIELDS:
            hint = (
                "test links come from CI test reports"
                if key == "verifies"
                else f"put tool-specific fields under {path}.attributes"
            )
            problems.append((f"{path}.{key}", f"unknown field; {hint}"))
    values = {
        name: _json_scalar(value=item.get(name), path=f"{path}.{name}", problems=problems)
        for name in _JSON_STRING_FIELDS
    }
    attributes = _json_attributes(value=item.get("attributes"), path=f"{path}.attributes", problems=problems)
    links = _json_links(value=item.get("links"), path=f"{path}.links", problems=problems)
    found = check_item_fields(
        identifier=values["id"],
        title=values["title"],
        kind=values["kind"],
        hazard=values,
        links=links,
        where={"id": "id", "title": "title", "kind": "kind", "hazard": "fields"},
    )
    if found.warning:
        warnings.append(f"{path}: {found.warning}")
    problems.extend((path, message) for message in found.problems)
    if len(problems) > before:
        return None
    return make_record(
        identifier=values["id"],
        kind=found.kind,
        title=values["title"],
        text=values["text"],
        status=values["status"],
        attributes=attributes,
        hazard=values,
        links=links,
    )


def _json_attributes(*, value: Any, path: str, problems: list[tuple[str, str]]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append((path, f"must be an object of name: text, not {json_type_name(value)}"))
        return {}
    attributes = {}
    for name, raw in value.items():
        if not clean(name):
            problems.append((path, "an attribute has an empty name"))
            continue
        if column_key(name) in RESERVED_NAMES:
            hint = "test links come from CI test reports" if column_key(name) == "verifies" else "move it up one level"
            problems.append((f"{path}.{name}", f"'{name}' is an item field, not an attribute; {hint}"))
            continue
        attributes[name] = _json_scalar(value=raw, path=f"{path}.{name}", problems=problems)
    return attributes


def _json_links(*, value: Any, path: str, problems: list[tuple[str, str]]) -> list[LinkRecord]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append((path, f'must be a list of {{"kind", "target"}} objects, not {json_type_name(value)}'))
        return []
    links = []
    for index, link in enumerate(value):
        link_path = f"{path}[{index}]"
        if not isinstance(link, dict):
            problems.append((link_path, f'must be an object {{"kind", "target"}}, not {json_type_name(link)}'))
            continue
        kind = link.get("kind")
        target = link.get("target")
        if kind == "verifies":
            problems.append(
                (f"{link_path}.kind", "'verifies' links cannot be imported: they come from CI test reports")
            )
        elif not isinstance(kind, str) or kind not in LINK_KINDS:
            problems.append((f"{link_path}.kind", f"must be one of {', '.join(LINK_KINDS)}, not {kind!r}"))
        elif not isinstance(target, str) or not clean(target):
            problems.append((f"{link_path}.target", "must be the target item's ID as a non-empty string"))
        else:
            links.append(LinkRecord(kind=kind, target=clean(target)))
    return links


def write_json(records: Iterable[ItemRecord]) -> bytes:
    """`{"items": [...]}` sorted by identifier, every field present, stable key order, UTF-8, trailing newline."""
    items = [
        {
            "id": record.identifier,
            "kind": record.kind,
            "title": record.title,
            "text": record.text,
            "status": record.status,
            **record.hazard_fields(),
            "attributes": dict(record.attributes),
            "links": [{"kind": link.kind, "target": link.target} for link in record.links],
        }
        for record in sorted_records(records)
    ]
    return (json.dumps({"items": items}, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
