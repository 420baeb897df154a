"""Requirement, hazard and risk-control exchange formats: CSV, JSON and ReqIF 1.0 in, CSV and JSON out.

Pure format layer: no Django, no database. Readers return `ItemRecord`s; the versioning service decides
what is new, changed or unchanged with `ItemRecord.content_fingerprint()`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from common.times import parse_timestamp
from evidence.parsers.base import EvidenceParseError, clean_text, local_name, parse_xml

ITEM_KINDS = ("requirement", "hazard", "risk_control")
LINK_KINDS = ("implements", "mitigates", "derives_from")
HAZARD_FIELDS = (
    "hazardous_situation",
    "harm",
    "severity",
    "probability",
    "initial_risk",
    "residual_risk",
    "acceptability",
)
# ISO 14971 chain: risk controls implement requirements and mitigate hazards; requirements derive from
# requirements. `verifies` is deliberately absent: test links come from CI evidence, never from an import.
LINK_DIRECTIONS = {
    "implements": ("risk_control", "requirement"),
    "mitigates": ("risk_control", "hazard"),
    "derives_from": ("requirement", "requirement"),
}
ID_PREFIX_KINDS = (("REQ-", "requirement"), ("HAZ-", "hazard"), ("RC-", "risk_control"))
CORE_COLUMNS = ("id", "kind", "title", "text", "status", *HAZARD_FIELDS, *LINK_KINDS)
# Names an attribute may not have: CSV would read them back as item fields (or refuse them, for verifies).
RESERVED_NAMES = frozenset({*CORE_COLUMNS, "verifies"})
# Attributes that do not make a new version when they change (review chatter, not content).
UNVERSIONED_ATTRIBUTES = frozenset({"comment", "comments"})

REQIF_NAMESPACE = "http://www.omg.org/spec/ReqIF/20110401/reqif.xsd"
_MAX_LISTED_PROBLEMS = 50


class ItemFormatError(ValueError):
    """The file cannot be imported; every problem names its line (CSV/XML) or JSON path and what to fix."""

    def __init__(self, message: str, *, location: str = "", problems: tuple[str, ...] = ()):
        self.location = location
        self.problems = problems or ((f"{location}: {message}" if location else message),)
        super().__init__(f"{location}: {message}" if location else message)

    @classmethod
    def from_problems(cls, *, what: str, problems: list[tuple[str, str]]) -> ItemFormatError:
        """One error carrying every (location, message) problem found, so the author can fix them in one go."""
        lines = tuple(f"{location}: {message}" for location, message in problems)
        listed = list(lines[:_MAX_LISTED_PROBLEMS])
        if len(lines) > _MAX_LISTED_PROBLEMS:
            listed.append(f"... and {len(lines) - _MAX_LISTED_PROBLEMS} more")
        noun = "problem" if len(lines) == 1 else "problems"
        message = f"the {what} has {len(lines)} {noun}:\n" + "\n".join(f"- {line}" for line in listed)
        error = cls(message, problems=lines)
        error.location = problems[0][0]
        return error


@dataclass(frozen=True, order=True)
class LinkRecord:
    """A trace link from the item that holds it to another item, by the target's identifier."""

    kind: str
    target: str


@dataclass(frozen=True)
class ItemRecord:
    """One requirement, hazard or risk control as a file describes it (no database identity)."""

    identifier: str
    kind: str
    title: str
    text: str = ""
    status: str = ""
    attributes: tuple[tuple[str, str], ...] = ()
    hazardous_situation: str = ""
    harm: str = ""
    severity: str = ""
    probability: str = ""
    initial_risk: str = ""
    residual_risk: str = ""
    acceptability: str = ""
    links: tuple[LinkRecord, ...] = ()

    def __post_init__(self):
        if self.kind not in ITEM_KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(ITEM_KINDS)}")

    def hazard_fields(self) -> dict[str, str]:
        """The ISO 14971 risk-analysis fields by name."""
        return {name: getattr(self, name) for name in HAZARD_FIELDS}

    def content_fingerprint(self) -> str:
        """Hex sha256 of what makes a new version: title, text, hazard fields, attributes (not status or comment)."""
        content = {
            "title": self.title,
            "text": self.text,
            **self.hazard_fields(),
            "attributes": [[name, value] for name, value in self.attributes if not _is_unversioned(name)],
        }
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class ImportResult:
    """What a reader found: the records in file order, warnings worth showing, the format and the exporting tool."""

    records: list[ItemRecord]
    warnings: list[str] = field(default_factory=list)
    source_format: str = ""
    tool: str = ""


# --- shared normalisation -------------------------------------------------------------------------------


def _is_unversioned(name: str) -> bool:
    return name.strip().lower() in UNVERSIONED_ATTRIBUTES


def _column_key(name: str) -> str:
    """A header or field name as a core column key: 'Hazardous Situation' -> 'hazardous_situation'."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return "id" if key == "identifier" else key


def _clean(value: Any) -> str:
    """Stripped text without NUL (PostgreSQL refuses U+0000) and with one newline convention."""
    return clean_text(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def _normalise_kind(value: str) -> str:
    return re.sub(r"[\s\-]+", "_", value.strip().lower())


def kind_from_identifier(identifier: str) -> str:
    """The kind Custody's own ID prefixes imply (REQ-, HAZ-, RC-), or "" when the prefix says nothing."""
    upper = identifier.upper()
    for prefix, kind in ID_PREFIX_KINDS:
        if upper.startswith(prefix):
            return kind
    return ""


def _natural_key(identifier: str) -> list[Any]:
    """Sort REQ-2 before REQ-10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", identifier)]


def _sorted_records(records: Iterable[ItemRecord]) -> list[ItemRecord]:
    return sorted(records, key=lambda record: (_natural_key(record.identifier), record.identifier))


def _link_problems(*, kind: str, links: Iterable[LinkRecord]) -> list[str]:
    """Links whose direction the ISO 14971 chain does not allow from an item of this kind."""
    problems = []
    for link in links:
        if link.kind not in LINK_DIRECTIONS:
            problems.append(f"link kind {link.kind!r} is not one of {', '.join(LINK_KINDS)}")
            continue
        source_kind, target_kind = LINK_DIRECTIONS[link.kind]
        if kind != source_kind:
            problems.append(
                f"a {kind} cannot have '{link.kind}' links ({link.target}); only a {source_kind} "
                f"{link.kind.replace('_', ' ')} a {target_kind}"
            )
    return problems


def _target_kind_problems(records: list[ItemRecord]) -> list[tuple[int, str]]:
    """(record index, message) for links to an item in the same file that has the wrong kind."""
    kinds = {record.identifier: record.kind for record in records}
    problems = []
    for index, record in enumerate(records):
        for link in record.links:
            if link.target == record.identifier:
                problems.append((index, f"'{link.kind}' link from {link.target} to itself"))
                continue
            expected = LINK_DIRECTIONS.get(link.kind, ("", ""))[1]
            actual = kinds.get(link.target)
            if actual and expected and actual != expected:
                problems.append((index, f"'{link.kind}' link to {link.target} needs a {expected}, it is a {actual}"))
    return problems


def _record(
    *,
    identifier: str,
    kind: str,
    title: str,
    text: str,
    status: str,
    attributes: Mapping[str, str],
    hazard: Mapping[str, str],
    links: Iterable[LinkRecord],
) -> ItemRecord:
    """The one place records are built, so every reader normalises the same way (and round-trips hold)."""
    return ItemRecord(
        identifier=_clean(identifier),
        kind=kind,
        title=_clean(title),
        text=_clean(text),
        # Statuses are compared case-insensitively across tools ("Draft" from Polarion is "draft").
        status=_clean(status).lower(),
        attributes=tuple(sorted((_clean(name), _clean(value)) for name, value in attributes.items() if _clean(value))),
        links=tuple(sorted(set(links))),
        **{name: _clean(hazard.get(name, "")) for name in HAZARD_FIELDS},
    )


def _split_targets(cell: str) -> list[str]:
    return [target.strip() for target in re.split(r"[;,]", cell) if target.strip()]


# --- CSV ------------------------------------------------------------------------------------------------

# Spreadsheets run cells that start with these as formulas. On import they are plain text (nothing is ever
# evaluated); on export they get a leading apostrophe so Excel shows them as text, and import removes it.
_FORMULA_START = ("=", "+", "-", "@")
_ESCAPED_FORMULA = re.compile(r"^'+[=+\-@]")


def _escape_cell(value: str) -> str:
    if value.startswith(_FORMULA_START) or _ESCAPED_FORMULA.match(value):
        return "'" + value
    return value


def _unescape_cell(value: str) -> str:
    return value[1:] if _ESCAPED_FORMULA.match(value) else value


def _decode_text(data: bytes, *, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        fix = "save it from the spreadsheet as 'CSV UTF-8'" if what == "CSV" else "write it as UTF-8"
        raise ItemFormatError(
            f"the {what} is not UTF-8 text (byte {exc.start}); {fix}", location=f"line {line}"
        ) from None


def _sniff_delimiter(text: str) -> str:
    """Excel writes ';' where the locale's decimal mark is ','; the header line says which one was used."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def read_csv(data: bytes) -> ImportResult:
    """Read items from a CSV with a header row (see docs/requirements-import.md); all problems raised at once."""
    text = _decode_text(data, what="CSV")
    if not text.strip():
        raise ItemFormatError("the CSV is empty; it needs a header row (id, title, ...) and one row per item")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text), strict=True)
    problems: list[tuple[str, str]] = []
    warnings: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    previous_line = 0
    try:
        for row in reader:
            # A quoted cell may span lines: the record starts on the line after the previous one ended.
            rows.append((previous_line + 1, [_unescape_cell(cell.strip()) for cell in row]))
            previous_line = reader.line_num
    except csv.Error as exc:
        raise ItemFormatError(
            f"the CSV cannot be read: {exc} (check the quotes of the row that starts here)",
            location=f"line {previous_line + 1}",
        ) from None

    while rows and not any(rows[0][1]):
        rows.pop(0)  # blank lines above the header
    header_line, header = rows[0]
    columns = _csv_columns(header=header, line=header_line, problems=problems)
    if problems:
        raise ItemFormatError.from_problems(what="CSV", problems=problems)
    if "id" not in columns.values() or "title" not in columns.values():
        missing = [name for name in ("id", "title") if name not in columns.values()]
        raise ItemFormatError(
            f"the header row has no {' or '.join(missing)} column; found: {', '.join(header)}",
            location=f"line {header_line}",
        )

    records: list[ItemRecord] = []
    record_lines: list[int] = []
    seen: dict[str, int] = {}
    for line, row in rows[1:]:
        if not any(row):
            continue  # blank lines and Excel's trailing empty rows
        location = f"line {line}"
        if len(row) > len(header):
            problems.append((location, f"the row has {len(row)} cells but the header has {len(header)} columns"))
            continue
        cells = dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))
        record = _csv_record(cells=cells, columns=columns, location=location, problems=problems, warnings=warnings)
        if record is None:
            continue
        if record.identifier in seen:
            problems.append((location, f"id {record.identifier} is already used on line {seen[record.identifier]}"))
            continue
        seen[record.identifier] = line
        records.append(record)
        record_lines.append(line)
    for index, message in _target_kind_problems(records):
        problems.append((f"line {record_lines[index]}", message))
    if problems:
        problems.sort(key=lambda problem: int(problem[0].split()[-1]))
        raise ItemFormatError.from_problems(what="CSV", problems=problems)
    return ImportResult(records=records, warnings=warnings, source_format="csv", tool="")


def _csv_columns(*, header: list[str], line: int, problems: list[tuple[str, str]]) -> dict[str, str]:
    """Header cell -> core column key, or the attribute name itself for any other column."""
    columns: dict[str, str] = {}
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name:
            problems.append((f"line {line}", f"column {position} has no name in the header row"))
            continue
        key = _column_key(name)
        if key == "verifies":
            problems.append(
                (f"line {line}", "column 'verifies' cannot be imported: test links come from CI test reports")
            )
            continue
        column = key if key in CORE_COLUMNS else name
        if column in seen:
            problems.append((f"line {line}", f"columns {seen[column]} and {position} are both '{column}'"))
            continue
        seen[column] = position
        columns[name] = column
    return columns


def _csv_record(
    *,
    cells: dict[str, str],
    columns: dict[str, str],
    location: str,
    problems: list[tuple[str, str]],
    warnings: list[str],
) -> ItemRecord | None:
    values = {columns[name]: value for name, value in cells.items() if name in columns}
    found = _check_item_fields(
        identifier=values.get("id", ""),
        title=values.get("title", ""),
        kind=values.get("kind", ""),
        hazard={name: values.get(name, "") for name in HAZARD_FIELDS},
        links=[
            LinkRecord(kind=kind, target=target)
            for kind in LINK_KINDS
            for target in _split_targets(values.get(kind, ""))
        ],
        where={"id": "column 'id'", "title": "column 'title'", "kind": "column 'kind'", "hazard": "column"},
    )
    if found.warning:
        warnings.append(f"{location}: {found.warning}")
    if found.problems:
        problems.extend((location, message) for message in found.problems)
        return None
    attributes = {column: value for column, value in values.items() if column not in CORE_COLUMNS}
    return _record(
        identifier=values["id"],
        kind=found.kind,
        title=values["title"],
        text=values.get("text", ""),
        status=values.get("status", ""),
        attributes=attributes,
        hazard={name: values.get(name, "") for name in HAZARD_FIELDS},
        links=found.links,
    )


@dataclass
class _FieldCheck:
    kind: str
    links: list[LinkRecord]
    problems: list[str]
    warning: str = ""


def _check_item_fields(
    *,
    identifier: str,
    title: str,
    kind: str,
    hazard: Mapping[str, str],
    links: list[LinkRecord],
    where: Mapping[str, str],
) -> _FieldCheck:
    """The rules CSV and JSON items share: id, title, a known kind, hazard fields only on hazards, link direction."""
    problems: list[str] = []
    warning = ""
    identifier = _clean(identifier)
    if not identifier:
        problems.append(f"{where['id']} is empty; every item needs its ID (e.g. REQ-017)")
    elif "\n" in identifier:
        problems.append(f"{where['id']} spans several lines; an ID is one line")
    if not _clean(title):
        problems.append(f"{where['title']} is empty; every item needs a title")
    resolved = _normalise_kind(kind) if kind.strip() else kind_from_identifier(identifier)
    if kind.strip() and resolved not in ITEM_KINDS:
        problems.append(f"{where['kind']} is {kind!r}; use one of {', '.join(ITEM_KINDS)}")
    elif not resolved:
        resolved = "requirement"
        if identifier:
            warning = f"{identifier} has no kind and its ID prefix is not REQ-/HAZ-/RC-; imported as a requirement"
    if resolved in ITEM_KINDS:
        filled = [name for name in HAZARD_FIELDS if _clean(hazard.get(name, ""))]
        if filled and resolved != "hazard":
            problems.append(
                f"{where['hazard']} {', '.join(filled)} filled on a {resolved}; hazard fields belong to hazards only"
            )
        problems.extend(_link_problems(kind=resolved, links=links))
    return _FieldCheck(kind=resolved, links=links, problems=problems, warning=warning)


def write_csv(records: Iterable[ItemRecord]) -> bytes:
    """UTF-8 CSV with BOM (Excel opens it as UTF-8), sorted by identifier, one column per attribute name."""
    ordered = _sorted_records(records)
    attribute_names = sorted({name for record in ordered for name, _ in record.attributes})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_escape_cell(name) for name in (*CORE_COLUMNS, *attribute_names)])
    for record in ordered:
        attributes = dict(record.attributes)
        targets = {kind: [link.target for link in record.links if link.kind == kind] for kind in LINK_KINDS}
        row = [
            record.identifier,
            record.kind,
            record.title,
            record.text,
            record.status,
            *(getattr(record, name) for name in HAZARD_FIELDS),
            *("; ".join(targets[kind]) for kind in LINK_KINDS),
            *(attributes.get(name, "") for name in attribute_names),
        ]
        writer.writerow([_escape_cell(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# --- JSON -----------------------------------------------------------------------------------------------

_JSON_STRING_FIELDS = ("id", "kind", "title", "text", "status", *HAZARD_FIELDS)
_JSON_FIELDS = (*_JSON_STRING_FIELDS, "attributes", "links")


def read_json(data: bytes) -> ImportResult:
    """Read `{"items": [...]}` (or a bare list of items); every problem names its JSON path."""
    text = _decode_text(data, what="JSON")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ItemFormatError(
            f"the file is not valid JSON: {exc.msg}", location=f"line {exc.lineno} column {exc.colno}"
        ) from None
    warnings: list[str] = []
    tool = ""
    if isinstance(document, list):
        items, prefix = document, ""
    elif isinstance(document, dict):
        if "items" not in document:
            raise ItemFormatError('the JSON object has no "items" list', location="items")
        items, prefix = document["items"], "items"
        if not isinstance(items, list):
            raise ItemFormatError(f"must be a list of items, not {_json_type(items)}", location="items")
        tool = document.get("tool", "")
        if not isinstance(tool, str):
            raise ItemFormatError(f"must be a string, not {_json_type(tool)}", location="tool")
        for key in sorted(set(document) - {"items", "tool"}):
            warnings.append(f"{key}: ignored (only 'items' and 'tool' are read at the top level)")
    else:
        raise ItemFormatError(
            f'the JSON must be {{"items": [...]}} or a list of items, not {_json_type(document)}', location="$"
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
    for index, message in _target_kind_problems(records):
        problems.append((f"{record_paths[index]}.links", message))
    if problems:
        raise ItemFormatError.from_problems(what="JSON", problems=problems)
    return ImportResult(records=records, warnings=warnings, source_format="json", tool=_clean(tool))


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _json_scalar(*, value: Any, path: str, problems: list[tuple[str, str]]) -> str:
    """A string field; numbers are accepted as their text (severity 4), other shapes are refused."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    problems.append((path, f"must be a string, not {_json_type(value)}"))
    return ""


def _json_record(*, item: Any, path: str, problems: list[tuple[str, str]], warnings: list[str]) -> ItemRecord | None:
    if not isinstance(item, dict):
        problems.append((path, f"must be an object with id, title, ..., not {_json_type(item)}"))
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
    found = _check_item_fields(
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
    return _record(
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
        problems.append((path, f"must be an object of name: text, not {_json_type(value)}"))
        return {}
    attributes = {}
    for name, raw in value.items():
        if not _clean(name):
            problems.append((path, "an attribute has an empty name"))
            continue
        if _column_key(name) in RESERVED_NAMES:
            hint = "test links come from CI test reports" if _column_key(name) == "verifies" else "move it up one level"
            problems.append((f"{path}.{name}", f"'{name}' is an item field, not an attribute; {hint}"))
            continue
        attributes[name] = _json_scalar(value=raw, path=f"{path}.{name}", problems=problems)
    return attributes


def _json_links(*, value: Any, path: str, problems: list[tuple[str, str]]) -> list[LinkRecord]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append((path, f'must be a list of {{"kind", "target"}} objects, not {_json_type(value)}'))
        return []
    links = []
    for index, link in enumerate(value):
        link_path = f"{path}[{index}]"
        if not isinstance(link, dict):
            problems.append((link_path, f'must be an object {{"kind", "target"}}, not {_json_type(link)}'))
            continue
        kind = link.get("kind")
        target = link.get("target")
        if kind == "verifies":
            problems.append(
                (f"{link_path}.kind", "'verifies' links cannot be imported: they come from CI test reports")
            )
        elif not isinstance(kind, str) or kind not in LINK_KINDS:
            problems.append((f"{link_path}.kind", f"must be one of {', '.join(LINK_KINDS)}, not {kind!r}"))
        elif not isinstance(target, str) or not _clean(target):
            problems.append((f"{link_path}.target", "must be the target item's ID as a non-empty string"))
        else:
            links.append(LinkRecord(kind=kind, target=_clean(target)))
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
        for record in _sorted_records(records)
    ]
    return (json.dumps({"items": items}, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- ReqIF ----------------------------------------------------------------------------------------------

_ID_NAMES = ("reqif.foreignid", "id", "identifier", "object identifier")
_TITLE_NAMES = ("reqif.name", "reqif.chaptername", "name", "title")
_TEXT_NAMES = ("reqif.text", "description")
_STATUS_NAMES = ("status", "reqif.status")
# Not a ReqIF attribute: the SPEC-OBJECT-TYPE long name, kept so headings can be told from requirements.
OBJECT_TYPE_ATTRIBUTE = "spec_object_type"
_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "pre",
        "blockquote",
        "dl",
        "dt",
        "dd",
        "hr",
    }
)


@dataclass(frozen=True)
class _Definition:
    """An ATTRIBUTE-DEFINITION-* resolved by its IDENTIFIER."""

    long_name: str
    is_xhtml: bool


@dataclass
class _ReqifValue:
    name: str
    text: str
    is_xhtml: bool


def read_reqif(data: bytes) -> ImportResult:
    """Read SPEC-OBJECTs and SPEC-RELATIONs from a ReqIF 1.0 export (DOORS, DOORS Next, Polarion, ...)."""
    try:
        root = parse_xml(data)
    except EvidenceParseError as exc:
        raise ItemFormatError(str(exc).removeprefix(f"{exc.location}: "), location=exc.location) from None
    if local_name(root) != "REQ-IF":
        raise ItemFormatError(
            f"the root element is <{local_name(root)}>, not <REQ-IF>; is this a ReqIF export?",
            location=f"line {root.sourceline}",
        )
    warnings: list[str] = []
    namespace = etree.QName(root).namespace or ""
    if namespace != REQIF_NAMESPACE:
        warnings.append(f"the ReqIF namespace is {namespace!r}, not ReqIF 1.0's {REQIF_NAMESPACE}; read anyway")
    content = _first(root, "CORE-CONTENT", "REQ-IF-CONTENT")
    if content is None:
        raise ItemFormatError(
            "<REQ-IF> has no CORE-CONTENT/REQ-IF-CONTENT; the export holds no requirements",
            location=f"line {root.sourceline}",
        )
    tool = _header_tool(root)
    reader = _ReqifReader(content=content, warnings=warnings)
    records = reader.records()
    return ImportResult(records=records, warnings=warnings, source_format="reqif", tool=tool)


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in element if local_name(child) == name]


def _first(element: etree._Element, *path: str) -> etree._Element | None:
    """The first element down a path of local names, or None."""
    current = element
    for name in path:
        found = _children(current, name)
        if not found:
            return None
        current = found[0]
    return current


def _ref_text(element: etree._Element, container: str) -> str:
    """The text of the first *-REF inside a child container such as <TYPE> or <DEFINITION>."""
    holder = _first(element, container)
    if holder is None:
        return ""
    for child in holder:
        if local_name(child).endswith("-REF"):
            return (child.text or "").strip()
    return ""


def _header_tool(root: etree._Element) -> str:
    """The tool that holds the requirements (SOURCE-TOOL-ID), else the one that wrote the file."""
    header = _first(root, "THE-HEADER", "REQ-IF-HEADER")
    if header is None:
        return ""
    for name in ("SOURCE-TOOL-ID", "REQ-IF-TOOL-ID"):
        element = _first(header, name)
        if element is not None and _clean(element.text):
            return _clean(element.text)
    return ""


def _kind_from_type_name(type_name: str) -> str:
    words = " ".join(re.sub(r"[^a-z0-9]+", " ", type_name.lower()).split())
    if "risk control" in words or "riskcontrol" in words:
        return "risk_control"
    if "hazard" in words:
        return "hazard"
    return "requirement"


def _link_kind_from_type_name(type_name: str) -> str:
    words = type_name.lower()
    if "implement" in words:
        return "implements"
    if "mitigat" in words:
        return "mitigates"
    return "derives_from"


def _name_key(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").split())


class _ReqifReader:
    """One pass over REQ-IF-CONTENT: index types and definitions by IDENTIFIER, then read objects and relations."""

    def __init__(self, *, content: etree._Element, warnings: list[str]):
        self.content = content
        self.warnings = warnings
        self.definitions: dict[str, _Definition] = {}
        self.enum_values: dict[str, str] = {}
        self.object_types: dict[str, str] = {}
        self.relation_types: dict[str, str] = {}
        self.unknown_definitions: set[str] = set()
        self.unknown_types: set[str] = set()
        for element in content.iter(etree.Element):
            name = local_name(element)
            identifier = element.get("IDENTIFIER", "")
            if name.startswith("ATTRIBUTE-DEFINITION-") and not name.endswith("-REF") and identifier:
                self.definitions[identifier] = _Definition(
                    long_name=_clean(element.get("LONG-NAME")) or identifier, is_xhtml=name.endswith("-XHTML")
                )
            elif name == "ENUM-VALUE" and identifier:
                self.enum_values[identifier] = _clean(element.get("LONG-NAME")) or identifier
            elif name == "SPEC-OBJECT-TYPE" and identifier:
                self.object_types[identifier] = _clean(element.get("LONG-NAME"))
            elif name == "SPEC-RELATION-TYPE" and identifier:
                self.relation_types[identifier] = _clean(element.get("LONG-NAME"))

    def records(self) -> list[ItemRecord]:
        """Objects in file order with their outgoing relations as links."""
        objects = []  # (spec-object IDENTIFIER, line, fields)
        problems: list[tuple[str, str]] = []
        for holder in _children(self.content, "SPEC-OBJECTS"):
            for element in _children(holder, "SPEC-OBJECT"):
                line = f"line {element.sourceline}"
                spec_id = element.get("IDENTIFIER", "").strip()
                if not spec_id:
                    problems.append((line, "<SPEC-OBJECT> has no IDENTIFIER attribute"))
                    continue
                fields = self._object_fields(element=element, spec_id=spec_id, line=line, problems=problems)
                objects.append((spec_id, line, fields))
        identifiers: dict[str, str] = {}
        seen_lines: dict[str, str] = {}
        for spec_id, line, fields in objects:
            identifier = fields["identifier"]
            if identifier in seen_lines:
                problems.append(
                    (line, f"item ID {identifier} is also used by the SPEC-OBJECT on {seen_lines[identifier]}")
                )
            seen_lines[identifier] = line
            identifiers[spec_id] = identifier
        if problems:
            raise ItemFormatError.from_problems(what="ReqIF", problems=problems)

        kinds = {identifiers[spec_id]: fields["kind"] for spec_id, _, fields in objects}
        links = self._relation_links(identifiers=identifiers, kinds=kinds)
        return [_record(links=links.get(fields["identifier"], []), **fields) for _spec_id, _line, fields in objects]

    def _object_fields(
        self, *, element: etree._Element, spec_id: str, line: str, problems: list[tuple[str, str]]
    ) -> dict[str, Any]:
        type_ref = _ref_text(element, "TYPE")
        type_name = self.object_types.get(type_ref, "")
        if type_ref and type_ref not in self.object_types and type_ref not in self.unknown_types:
            self.unknown_types.add(type_ref)
            self.warnings.append(
                f"{line}: SPEC-OBJECT-TYPE {type_ref} is not defined in the file; its objects are read as requirements"
            )
        kind = _kind_from_type_name(type_name)
        values = self._values(element=element, line=line, problems=problems)
        by_name: dict[str, _ReqifValue] = {}
        for value in values:
            if value.name in by_name:
                self.warnings.append(f"{line}: attribute {value.name!r} is given twice; the first value is kept")
                continue
            by_name[value.name] = value
        lookup = {_name_key(name): name for name in by_name}
        used: set[str] = set()

        def take(candidates: Iterable[str]) -> str:
            for candidate in candidates:
                name = lookup.get(candidate)
                if name is not None and name not in used and by_name[name].text:
                    used.add(name)
                    return by_name[name].text
            return ""

        identifier = take(_ID_NAMES) or spec_id
        text = take(_TEXT_NAMES)
        if not text:  # the main XHTML attribute: the first rich-text value nobody claimed
            for name, value in by_name.items():
                if value.is_xhtml and value.text and name not in used:
                    used.add(name)
                    text = value.text
                    break
        title = take(_TITLE_NAMES) or _clean(element.get("LONG-NAME")) or text.split("\n", 1)[0]
        if not title:
            title = identifier
            self.warnings.append(f"{line}: {identifier} has no name, title or text; its ID is used as the title")
        status = take(_STATUS_NAMES)
        hazard = {}
        if kind == "hazard":
            hazard = {name: take([_name_key(name)]) for name in HAZARD_FIELDS}
        attributes = {}
        for name, value in by_name.items():
            if name in used:
                continue
            # A leftover attribute named like a core field (e.g. "Severity" on a requirement) would be read
            # back as that field from CSV; keep it distinguishable.
            safe_name = f"{name} (attribute)" if _column_key(name) in RESERVED_NAMES else name
            attributes[safe_name] = value.text
        if type_name:
            attributes[OBJECT_TYPE_ATTRIBUTE] = type_name
        return {
            "identifier": identifier,
            "kind": kind,
            "title": title,
            "text": text,
            "status": status,
            "attributes": attributes,
            "hazard": hazard,
        }

    def _values(self, *, element: etree._Element, line: str, problems: list[tuple[str, str]]) -> list[_ReqifValue]:
        values = []
        for holder in _children(element, "VALUES"):
            for value in holder:
                tag = local_name(value)
                if not tag.startswith("ATTRIBUTE-VALUE-"):
                    continue
                value_line = f"line {value.sourceline}"
                definition_ref = _ref_text(value, "DEFINITION")
                if not definition_ref:
                    problems.append((value_line, f"<{tag}> has no DEFINITION reference"))
                    continue
                definition = self.definitions.get(definition_ref)
                if definition is None and definition_ref not in self.unknown_definitions:
                    self.unknown_definitions.add(definition_ref)
                    self.warnings.append(
                        f"{value_line}: attribute definition {definition_ref} is not defined in the file; "
                        "its values are kept under that identifier"
                    )
                name = definition.long_name if definition else definition_ref
                # Polarion writes ATTRIBUTE-VALUE-STRING for XHTML definitions: the definition decides.
                is_xhtml = tag == "ATTRIBUTE-VALUE-XHTML" or bool(definition and definition.is_xhtml)
                text = self._value_text(value=value, tag=tag, line=value_line)
                values.append(_ReqifValue(name=name, text=text, is_xhtml=is_xhtml))
        return values

    def _value_text(self, *, value: etree._Element, tag: str, line: str) -> str:
        if tag == "ATTRIBUTE-VALUE-XHTML":
            the_value = _first(value, "THE-VALUE")
            return xhtml_to_text(the_value) if the_value is not None else ""
        if tag == "ATTRIBUTE-VALUE-ENUMERATION":
            holder = _first(value, "VALUES")
            refs = [ref.text.strip() for ref in (holder if holder is not None else []) if (ref.text or "").strip()]
            names = []
            for ref in refs:
                if ref not in self.enum_values:
                    self.warnings.append(f"{line}: enumeration value {ref} is not defined in the file; kept as is")
                names.append(self.enum_values.get(ref, ref))
            return ", ".join(names)
        raw = _clean(value.get("THE-VALUE"))
        if tag == "ATTRIBUTE-VALUE-DATE" and raw:
            parsed = parse_timestamp(raw)
            if parsed is None:
                self.warnings.append(f"{line}: date {raw!r} is not ISO 8601; kept as written")
                return raw
            return parsed.isoformat()  # UTC (parse_timestamp treats a naive date as UTC)
        return raw

    def _relation_links(self, *, identifiers: dict[str, str], kinds: dict[str, str]) -> dict[str, list[LinkRecord]]:
        links: dict[str, list[LinkRecord]] = {}
        for holder in _children(self.content, "SPEC-RELATIONS"):
            for relation in _children(holder, "SPEC-RELATION"):
                line = f"line {relation.sourceline}"
                source_ref = _ref_text(relation, "SOURCE")
                target_ref = _ref_text(relation, "TARGET")
                missing = [ref or "(none)" for ref in (source_ref, target_ref) if ref not in identifiers]
                if missing:
                    self.warnings.append(f"{line}: SPEC-RELATION to unknown object(s) {', '.join(missing)} is skipped")
                    continue
                type_name = self.relation_types.get(_ref_text(relation, "TYPE"), "")
                link = LinkRecord(kind=_link_kind_from_type_name(type_name), target=identifiers[target_ref])
                source = identifiers[source_ref]
                expected_source, expected_target = LINK_DIRECTIONS[link.kind]
                if kinds[source] != expected_source or kinds[link.target] != expected_target:
                    self.warnings.append(
                        f"{line}: '{link.kind}' relation from {kinds[source]} {source} to "
                        f"{kinds[link.target]} {link.target} does not fit the risk chain "
                        f"({expected_source} -> {expected_target}); skipped"
                    )
                    continue
                links.setdefault(source, []).append(link)
        return links


def xhtml_to_text(element: etree._Element) -> str:
    """Readable plain text from a ReqIF XHTML value: paragraphs, list items and table rows become lines."""
    lines: list[str] = []
    current: list[str] = []
    pending_prefix = [""]  # the list marker waiting for the next non-empty line (a list so walk() can set it)

    def flush() -> None:
        line = " ".join("".join(current).split())
        current.clear()
        if line:
            lines.append(pending_prefix[0] + line)
            pending_prefix[0] = ""

    def walk(node: etree._Element, *, lists: list[list[int]]) -> None:
        tag = local_name(node).lower()
        if tag in _BLOCK_TAGS:
            flush()
        if tag == "li":
            # lists holds one [is_ordered, items_so_far] per enclosing <ol>/<ul>.
            if lists and lists[-1][0]:
                lists[-1][1] += 1
                pending_prefix[0] = f"{lists[-1][1]}. "
            else:
                pending_prefix[0] = "- "
        if tag in ("td", "th") and "".join(current).strip():
            current.append(" | ")
        if node.text:
            current.append(node.text)
        nested = [*lists, [tag == "ol", 0]] if tag in ("ol", "ul") else lists
        for child in node:
            if isinstance(child.tag, str):
                walk(child, lists=nested)
            if child.tail:
                current.append(child.tail)
        if tag == "object" and not "".join(current).strip() and node.get("data"):
            current.append(f"[{node.get('data')}]")
        if tag in _BLOCK_TAGS:
            flush()

    if element.text:
        current.append(element.text)
    for child in element:
        if isinstance(child.tag, str):
            walk(child, lists=[])
        if child.tail:
            current.append(child.tail)
    flush()
    return _clean("\n".join(lines))


__all__ = [
    "HAZARD_FIELDS",
    "ITEM_KINDS",
    "LINK_KINDS",
    "ImportResult",
    "ItemFormatError",
    "ItemRecord",
    "LinkRecord",
    "kind_from_identifier",
    "read_csv",
    "read_json",
    "read_reqif",
    "write_csv",
    "write_json",
    "xhtml_to_text",
]
