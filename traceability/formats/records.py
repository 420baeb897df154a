"""What every exchange format reads into and writes from: item and link records, and the checks they share."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.canonical import canonical_sha256
from common.safe_formats import clean_text

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
MAX_LISTED_PROBLEMS = 50


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
        listed = list(lines[:MAX_LISTED_PROBLEMS])
        if len(lines) > MAX_LISTED_PROBLEMS:
            listed.append(f"... and {len(lines) - MAX_LISTED_PROBLEMS} more")
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
            "attributes": [[name, value] for name, value in self.attributes if not is_unversioned(name)],
        }
        return canonical_sha256(content)


@dataclass
class ImportResult:
    """What a reader found: the records in file order, warnings worth showing, the format and the exporting tool."""

    records: list[ItemRecord]
    warnings: list[str] = field(default_factory=list)
    source_format: str = ""
    tool: str = ""


# --- shared normalisation -------------------------------------------------------------------------------


def is_unversioned(name: str) -> bool:
    return name.strip().lower() in UNVERSIONED_ATTRIBUTES


def column_key(name: str) -> str:
    """A header or field name as a core column key: 'Hazardous Situation' -> 'hazardous_situation'."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return "id" if key == "identifier" else key


def clean(value: Any) -> str:
    """Stripped text without NUL (PostgreSQL refuses U+0000) and with one newline convention."""
    return clean_text(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def normalise_kind(value: str) -> str:
    return re.sub(r"[\s\-]+", "_", value.strip().lower())


def kind_from_identifier(identifier: str) -> str:
    """The kind Custody's own ID prefixes imply (REQ-, HAZ-, RC-), or "" when the prefix says nothing."""
    upper = identifier.upper()
    for prefix, kind in ID_PREFIX_KINDS:
        if upper.startswith(prefix):
            return kind
    return ""


def natural_key(identifier: str) -> list[Any]:
    """Sort REQ-2 before REQ-10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", identifier)]


def sorted_records(records: Iterable[ItemRecord]) -> list[ItemRecord]:
    return sorted(records, key=lambda record: (natural_key(record.identifier), record.identifier))


def link_problems(*, kind: str, links: Iterable[LinkRecord]) -> list[str]:
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


def target_kind_problems(records: list[ItemRecord]) -> list[tuple[int, str]]:
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


def make_record(
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
        identifier=clean(identifier),
        kind=kind,
        title=clean(title),
        text=clean(text),
        # Statuses are compared case-insensitively across tools ("Draft" from Polarion is "draft").
        status=clean(status).lower(),
        attributes=tuple(sorted((clean(name), clean(value)) for name, value in attributes.items() if clean(value))),
        links=tuple(sorted(set(links))),
        **{name: clean(hazard.get(name, "")) for name in HAZARD_FIELDS},
    )


def split_targets(cell: str) -> list[str]:
    return [target.strip() for target in re.split(r"[;,]", cell) if target.strip()]


def decode_text(data: bytes, *, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        fix = "save it from the spreadsheet as 'CSV UTF-8'" if what == "CSV" else "write it as UTF-8"
        raise ItemFormatError(
            f"the {what} is not UTF-8 text (byte {exc.start}); {fix}", location=f"line {line}"
        ) from None


@dataclass
class FieldCheck:
    kind: str
    links: list[LinkRecord]
    problems: list[str]
    warning: str = ""


def check_item_fields(
    *,
    identifier: str,
    title: str,
    kind: str,
    hazard: Mapping[str, str],
    links: list[LinkRecord],
    where: Mapping[str, str],
) -> FieldCheck:
    """The rules CSV and JSON items share: id, title, a known kind, hazard fields only on hazards, link direction."""
    problems: list[str] = []
    warning = ""
    identifier = clean(identifier)
    if not identifier:
        problems.append(f"{where['id']} is empty; every item needs its ID (e.g. REQ-017)")
    elif "\n" in identifier:
        problems.append(f"{where['id']} spans several lines; an ID is one line")
    if not clean(title):
        problems.append(f"{where['title']} is empty; every item needs a title")
    resolved = normalise_kind(kind) if kind.strip() else kind_from_identifier(identifier)
    if kind.strip() and resolved not in ITEM_KINDS:
        problems.append(f"{where['kind']} is {kind!r}; use one of {', '.join(ITEM_KINDS)}")
    elif not resolved:
        resolved = "requirement"
        if identifier:
            warning = f"{identifier} has no kind and its ID prefix is not REQ-/HAZ-/RC-; imported as a requirement"
    if resolved in ITEM_KINDS:
        filled = [name for name in HAZARD_FIELDS if clean(hazard.get(name, ""))]
        if filled and resolved != "hazard":
            problems.append(
                f"{where['hazard']} {', '.join(filled)} filled on a {resolved}; hazard fields belong to hazards only"
            )
        problems.extend(link_problems(kind=resolved, links=links))
    return FieldCheck(kind=resolved, links=links, problems=problems, warning=warning)
