"""ReqIF 1.0 (OMG), as DOORS, Polarion, Jama and codebeamer export it: spec objects and their relations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from common.safe_formats import UnreadableDocument, local_name, parse_xml
from common.times import parse_timestamp
from traceability.formats.records import (
    HAZARD_FIELDS,
    LINK_DIRECTIONS,
    REQIF_NAMESPACE,
    RESERVED_NAMES,
    ImportResult,
    ItemFormatError,
    ItemRecord,
    LinkRecord,
    clean,
    column_key,
    make_record,
)

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
    except UnreadableDocument as exc:
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
        if element is not None and clean(element.text):
            return clean(element.text)
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
                    long_name=clean(element.get("LONG-NAME")) or identifier, is_xhtml=name.endswith("-XHTML")
                )
            elif name == "ENUM-VALUE" and identifier:
                self.enum_values[identifier] = clean(element.get("LONG-NAME")) or identifier
            elif name == "SPEC-OBJECT-TYPE" and identifier:
                self.object_types[identifier] = clean(element.get("LONG-NAME"))
            elif name == "SPEC-RELATION-TYPE" and identifier:
                self.relation_types[identifier] = clean(element.get("LONG-NAME"))

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
        return [make_record(links=links.get(fields["identifier"], []), **fields) for _spec_id, _line, fields in objects]

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
        title = take(_TITLE_NAMES) or clean(element.get("LONG-NAME")) or text.split("\n", 1)[0]
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
            safe_name = f"{name} (attribute)" if column_key(name) in RESERVED_NAMES else name
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
        raw = clean(value.get("THE-VALUE"))
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
    return clean("\n".join(lines))
