"""OpenVEX documents (v0.2.0): statements about whether a vulnerability affects products."""

from __future__ import annotations

from typing import Any

from common.times import parse_timestamp
from evidence.parsers.base import EvidenceParseError
from evidence.parsers.results import (
    VEX_STATUSES,
    VexDocument,
    VexStatement,
)
from evidence.parsers.scan_json import (
    json_array,
    json_object,
    json_optional_object,
    json_required_text,
    json_text,
    load_json,
    unique_texts,
)


def _openvex_products(products: list, path: str) -> list[str]:
    """Product ids, their purl/CPE identifiers, and their subcomponents (where the vulnerable package sits)."""
    found: list[str] = []
    for index, product in enumerate(products):
        product_path = f"{path}[{index}]"
        if isinstance(product, str):  # v0.0.1 legacy: a plain identifier
            found.append(product)
            continue
        product = json_object(product, product_path, what="a product object or identifier string")
        found.append(json_text(product.get("@id")))
        identifiers = json_optional_object(product.get("identifiers"), f"{product_path}.identifiers")
        found.extend(json_text(identifiers.get(key)) for key in ("purl", "cpe23", "cpe22"))
        found.extend(
            _openvex_products(
                json_array(product.get("subcomponents"), f"{product_path}.subcomponents"),
                f"{product_path}.subcomponents",
            )
        )
    return found


def parse_openvex(data: Any) -> VexDocument:
    """Read an OpenVEX document: v0.2.0 (objects) or v0.0.1 legacy (plain strings, version "1")."""
    document = json_object(load_json(data), "", what="an OpenVEX document (a JSON object)")
    context = json_text(document.get("@context"))
    if not context.startswith("https://openvex.dev/ns"):
        raise EvidenceParseError(
            f"this is not an OpenVEX document: @context is {context!r}, expected https://openvex.dev/ns/v…",
            location="@context",
        )
    issued_at = parse_timestamp(json_text(document.get("timestamp")))
    statements = []
    for index, item in enumerate(json_array(document.get("statements"), "statements")):
        path = f"statements[{index}]"
        item = json_object(item, path)
        vulnerability = item.get("vulnerability")
        if isinstance(vulnerability, str):  # v0.0.1 legacy
            vuln_id = json_required_text(vulnerability, f"{path}.vulnerability")
            aliases: tuple[str, ...] = ()
        else:
            vulnerability = json_object(
                vulnerability, f"{path}.vulnerability", what="a vulnerability object or id string"
            )
            vuln_id = json_text(vulnerability.get("name")) or json_required_text(
                vulnerability.get("@id"), f"{path}.vulnerability.name"
            )
            aliases = unique_texts(json_array(vulnerability.get("aliases"), f"{path}.vulnerability.aliases"))
        status = json_text(item.get("status"))
        if status not in VEX_STATUSES:
            raise EvidenceParseError(
                f"status {status!r} is not one of {', '.join(VEX_STATUSES)}", location=f"{path}.status"
            )
        products = _openvex_products(json_array(item.get("products"), f"{path}.products"), f"{path}.products")
        # v0.0.1 put subcomponents beside products rather than inside them.
        products += _openvex_products(
            json_array(item.get("subcomponents"), f"{path}.subcomponents"), f"{path}.subcomponents"
        )
        statements.append(
            VexStatement(
                vuln_id=vuln_id,
                aliases=tuple(a for a in aliases if a != vuln_id),
                products=unique_texts(products),
                status=status,
                justification=json_text(item.get("justification")),
                # vexctl's own examples write "statement"; the specification says "impact_statement".
                impact_statement=json_text(item.get("impact_statement")) or json_text(item.get("statement")),
                timestamp=parse_timestamp(json_text(item.get("timestamp"))) or issued_at,
            )
        )
    return VexDocument(
        format="openvex",
        document_id=json_text(document.get("@id")),
        author=json_text(document.get("author")),
        statements=statements,
        issued_at=issued_at,
    )
