"""Requirements, hazards and risk controls as CSV: one item per row, links as ID lists (Excel-safe both ways)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from traceability.formats.records import (
    CORE_COLUMNS,
    HAZARD_FIELDS,
    LINK_KINDS,
    ImportResult,
    ItemFormatError,
    ItemRecord,
    LinkRecord,
    check_item_fields,
    column_key,
    decode_text,
    make_record,
    sorted_records,
    split_targets,
    target_kind_problems,
)

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


def _sniff_delimiter(text: str) -> str:
    """Excel writes ';' where the locale's decimal mark is ','; the header line says which one was used."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def read_csv(data: bytes) -> ImportResult:
    """Read items from a CSV with a header row (see docs/requirements-import.md); all problems raised at once."""
    text = decode_text(data, what="CSV")
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
    for index, message in target_kind_problems(records):
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
        key = column_key(name)
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
    found = check_item_fields(
        identifier=values.get("id", ""),
        title=values.get("title", ""),
        kind=values.get("kind", ""),
        hazard={name: values.get(name, "") for name in HAZARD_FIELDS},
        links=[
            LinkRecord(kind=kind, target=target)
            for kind in LINK_KINDS
            for target in split_targets(values.get(kind, ""))
        ],
        where={"id": "column 'id'", "title": "column 'title'", "kind": "column 'kind'", "hazard": "column"},
    )
    if found.warning:
        warnings.append(f"{location}: {found.warning}")
    if found.problems:
        problems.extend((location, message) for message in found.problems)
        return None
    attributes = {column: value for column, value in values.items() if column not in CORE_COLUMNS}
    return make_record(
        identifier=values["id"],
        kind=found.kind,
        title=values["title"],
        text=values.get("text", ""),
        status=values.get("status", ""),
        attributes=attributes,
        hazard={name: values.get(name, "") for name in HAZARD_FIELDS},
        links=found.links,
    )


def write_csv(records: Iterable[ItemRecord]) -> bytes:
    """UTF-8 CSV with BOM (Excel opens it as UTF-8), sorted by identifier, one column per attribute name."""
    ordered = sorted_records(records)
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
