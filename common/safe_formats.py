"""Reading untrusted XML and JSON safely, and naming what is wrong with it.

Evidence reports, requirement exchange files (ReqIF) and anything else uploaded go through these readers: no entity
expansion, no DTD loading, no network (XXE and billion laughs refused), and every error says where (a line, a JSON
path) and what to fix.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

from lxml import etree


class UnreadableDocument(ValueError):
    """The document cannot be read; the message says where (line or JSON path) and what to fix."""

    def __init__(self, message: str, *, location: str = ""):
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


# Hardened parser settings: no entity expansion, no DTD loading, no network (XXE and billion laughs).
_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_DOCTYPE_SCAN_LIMIT = 64 * 1024  # a DOCTYPE must come before the root element, so its head is enough


def refuse_entity_declarations(data: bytes) -> None:
    """Refuse a DOCTYPE that declares entities: no real tool's report needs one, attackers do."""
    head = data[:_DOCTYPE_SCAN_LIMIT]
    doctype_at = head.find(b"<!DOCTYPE")
    if doctype_at == -1:
        return
    if _ENTITY_DECLARATION.search(head, doctype_at):
        line = head[: doctype_at + 1].count(b"\n") + 1
        raise UnreadableDocument(
            "the XML declares entities in its DOCTYPE; entity declarations are refused for safety "
            "(remove the <!ENTITY ...> declarations and upload the report as the tool wrote it)",
            location=f"line {line}",
        )


def refuse_declared_entities(root: etree._Element) -> None:
    """Refuse entity declarations the byte scan cannot see (UTF-16 text, a DOCTYPE after 64 KiB), once parsed."""
    # lxml has left such entities unexpanded (or libxml2 stopped the expansion); refusing them all keeps the rule
    # simple and the error clear: no real tool's file declares any.
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise UnreadableDocument(
            "the XML declares entities in its DOCTYPE; entity declarations are refused for safety "
            "(remove the <!ENTITY ...> declarations and upload the report as the tool wrote it)",
            location=f"the DOCTYPE before line {root.sourceline}",
        )


def secure_xml_parser() -> etree.XMLParser:
    return etree.XMLParser(**_PARSER_OPTIONS)


def parse_xml(data: bytes) -> etree._Element:
    """Parse a whole XML document safely; syntax errors name the line."""
    refuse_entity_declarations(data)
    try:
        return etree.fromstring(data, parser=secure_xml_parser())
    except etree.XMLSyntaxError as exc:
        raise UnreadableDocument(f"the XML is not well-formed: {exc.msg}", location=f"line {exc.lineno}") from None


def iterparse_xml(data: bytes, *, events=("end",), tag=None):
    """Stream a large XML document safely (same hardening as parse_xml)."""
    refuse_entity_declarations(data)
    return etree.iterparse(
        io.BytesIO(data),
        events=events,
        tag=tag,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def local_name(element: etree._Element) -> str:
    """The tag without its namespace."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


# Longer than any count, size or version a report or API client writes, and far below the 4,300 digits at which
# Python refuses to convert an integer to text (so nothing that encodes the value again can fail on it).
MAX_JSON_NUMBER_CHARS = 100
# Deeper than any build parameters, policy or report a pipeline sends, and far below Python's recursion limit, so
# nothing that encodes the data again (jsonb, the audit trail's canonical hash) can overflow the stack.
MAX_JSON_DEPTH = 100
TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted: flatten it"


def _number(literal: str) -> None:
    if len(literal) > MAX_JSON_NUMBER_CHARS:
        raise UnreadableDocument(
            f"a JSON number is {len(literal)} characters long ({literal[:20]}…); numbers longer than "
            f"{MAX_JSON_NUMBER_CHARS} characters are not accepted: send it as a string"
        )


def _integer(literal: str) -> int:
    _number(literal)
    return int(literal)


def _float(literal: str) -> float:
    _number(literal)
    value = float(literal)
    if math.isinf(value):
        raise UnreadableDocument(f"the JSON number {literal} is too large for a floating-point number: send a string")
    return value


def _constant(literal: str) -> None:
    raise UnreadableDocument(f"{literal} is not a JSON value (JSON has no NaN or Infinity): send null or a string")


def decode_json(text: str, *, what: str = "the body") -> Any:
    """The one way Custody reads JSON it did not write: a syntax error names the line and column; NaN, Infinity,
    numbers longer than MAX_JSON_NUMBER_CHARS and nesting that exhausts the stack are refused (UnreadableDocument).
    Callers that store the result also refuse nesting deeper than MAX_JSON_DEPTH (common.api_parsers.check_json)."""
    try:
        return json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise UnreadableDocument(
            f"{what} is not valid JSON: {exc.msg}", location=f"line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        # The json module recurses once per level: a document nested thousands deep exhausts the stack.
        raise UnreadableDocument(TOO_DEEP) from None


def parse_json(data: bytes) -> Any:
    """Parse an uploaded JSON file (decode_json's rules); a syntax error names the line and column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"the file is not UTF-8 text (byte {exc.start})") from None
    return decode_json(text, what="the file")


def clean_text(value: Any, *, limit: int | None = None) -> str:
    """A string safe for PostgreSQL text columns (U+0000 removed), optionally cut to a length."""
    if value is None:
        return ""
    text = str(value).replace("\x00", "")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def json_type_name(value: Any) -> str:
    """What a parsed JSON value is, in the words an error message uses ("expected an object, found an array")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
