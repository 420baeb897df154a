"""The vulnerabilities of a CycloneDX document: a scan's findings, or a VEX (analysis states)."""

from __future__ import annotations

import re
from typing import Any

from packageurl import PackageURL

from common.times import parse_timestamp
from evidence.parsers.base import EvidenceParseError, clean_text, warn
from evidence.parsers.results import (
    SUPPRESSING_VEX_STATUSES,
    VexDocument,
    VexStatement,
    Vulnerability,
    VulnerabilityReport,
)
from evidence.parsers.scan_json import (
    TITLE_LIMIT,
    dedupe_vulnerabilities,
    first_line,
    json_array,
    json_number,
    json_object,
    json_optional_object,
    json_required_text,
    json_text,
    load_json,
    unique_texts,
)
from evidence.parsers.severity import (
    combined_severity,
    highest_severity,
    score_from_cvss_vector,
    severity_from_word,
)

# Trivy and Snyk write "Upgrade <pkg> to version 2.9.10.4" / "to version 2.6.7.4, 2.9.10.7 or higher.".
_RECOMMENDED_VERSIONS = re.compile(r"\bto versions? (.+?)(?: or (?:higher|later|above))?\.?\s*$", re.IGNORECASE)
_NEWER_CVSS_METHODS = ("CVSSv4", "CVSSv31", "CVSSv3")


def _cyclonedx_document(data: Any) -> dict:
    document = json_object(load_json(data), "", what="a CycloneDX document (a JSON object)")
    if document.get("bomFormat") != "CycloneDX":
        raise EvidenceParseError(
            f"this is not a CycloneDX JSON document: bomFormat is {document.get('bomFormat')!r}, not 'CycloneDX'",
            location="bomFormat",
        )
    return document


def _cyclonedx_components(document: dict) -> dict[str, dict]:
    """Every component by bom-ref, nested ones and metadata.component included."""
    by_ref: dict[str, dict] = {}
    metadata = json_optional_object(document.get("metadata"), "metadata")
    pending = [metadata.get("component"), *json_array(document.get("components"), "components")]
    while pending:
        component = pending.pop()
        if isinstance(component, dict):
            if isinstance(component.get("bom-ref"), str):
                by_ref.setdefault(component["bom-ref"], component)
            if isinstance(component.get("components"), list):
                pending.extend(component["components"])
    return by_ref


def _bom_ref_of(ref: str) -> str:
    """The bom-ref inside a BOM-Link (`urn:cdx:<serial>/<version>#<bom-ref>`), or the ref itself."""
    if ref.startswith("urn:cdx:") and "#" in ref:
        return ref.split("#", 1)[1]
    return ref


def _cyclonedx_tool(metadata: dict) -> tuple[str, str]:
    tools = metadata.get("tools")
    if isinstance(tools, dict):  # CycloneDX 1.5+: {"components": [...], "services": [...]}
        tools = [
            *json_array(tools.get("components"), "metadata.tools.components"),
            *json_array(tools.get("services"), "metadata.tools.services"),
        ]
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and json_text(tool.get("name")):
            return json_text(tool.get("name")), json_text(tool.get("version"))
    return "", ""


def _cyclonedx_severity_and_score(ratings: list, path: str) -> tuple[str, float | None]:
    words, newer_scores, other_scores = [], [], []
    for index, rating in enumerate(ratings):
        rating = json_object(rating, f"{path}[{index}]")
        words.append(severity_from_word(rating.get("severity")))
        score = json_number(rating.get("score"))
        if score is None and json_text(rating.get("vector")):
            score = score_from_cvss_vector(json_text(rating.get("vector")))
        if score:
            (newer_scores if json_text(rating.get("method")) in _NEWER_CVSS_METHODS else other_scores).append(score)
    score = max(newer_scores, default=None) or max(other_scores, default=None)
    # Several sources rate one vulnerability; a regulated release takes the most severe view.
    return combined_severity(highest_severity(words), score), score


def parse_cyclonedx_vulnerabilities(data: Any) -> VulnerabilityReport:
    """Read the `vulnerabilities` of a CycloneDX JSON BOM (Trivy, Snyk, Dependency-Track…), one row per affected ref."""
    document = _cyclonedx_document(data)
    components = _cyclonedx_components(document)
    metadata = json_optional_object(document.get("metadata"), "metadata")
    tool, tool_version = _cyclonedx_tool(metadata)
    subject = json_optional_object(metadata.get("component"), "metadata.component")
    vulnerabilities = []
    for v_index, item in enumerate(json_array(document.get("vulnerabilities"), "vulnerabilities")):
        path = f"vulnerabilities[{v_index}]"
        item = json_object(item, path)
        vuln_id = json_required_text(item.get("id"), f"{path}.id")
        references = json_array(item.get("references"), f"{path}.references")
        aliases = tuple(
            a for a in unique_texts(json_object(r, f"{path}.references").get("id") for r in references) if a != vuln_id
        )
        severity, score = _cyclonedx_severity_and_score(
            json_array(item.get("ratings"), f"{path}.ratings"), f"{path}.ratings"
        )
        recommended = _RECOMMENDED_VERSIONS.search(json_text(item.get("recommendation")))
        fixed_versions = unique_texts(v.strip() for v in recommended.group(1).split(",")) if recommended else ()
        analysis = json_optional_object(item.get("analysis"), f"{path}.analysis")
        state = json_text(analysis.get("state"))
        if _CYCLONEDX_VEX_STATES.get(state) in SUPPRESSING_VEX_STATUSES:
            # The document itself says this one does not apply (a VEX): a statement, not an open finding.
            warn(
                f"vulnerabilities whose analysis state is {state!r} are kept as VEX statements, not open findings",
                location=f"{path}.analysis.state",
            )
            continue
        responses = json_array(analysis.get("response"), f"{path}.analysis.response")
        if fixed_versions:
            fix_state = "fixed"
        elif "will_not_fix" in responses:
            fix_state = "wont-fix"
        else:
            fix_state = "unknown"
        title = first_line(json_text(item.get("description"), limit=TITLE_LIMIT)) or json_text(
            item.get("detail"), limit=TITLE_LIMIT
        )
        affects = json_array(item.get("affects"), f"{path}.affects") or [None]
        for a_index, affected in enumerate(affects):
            name, version, purl = "", "", ""
            if affected is not None:
                ref = json_required_text(
                    json_object(affected, f"{path}.affects[{a_index}]").get("ref"), f"{path}.affects[{a_index}].ref"
                )
                bom_ref = _bom_ref_of(ref)
                component = components.get(ref) or components.get(bom_ref)
                if component:
                    name, version, purl = (json_text(component.get(k)) for k in ("name", "version", "purl"))
                elif bom_ref.startswith("pkg:"):
                    purl = bom_ref
                    try:
                        parsed = PackageURL.from_string(bom_ref)
                        name, version = parsed.name, parsed.version or ""
                    except ValueError:
                        name = bom_ref
                else:
                    name = bom_ref
            vulnerabilities.append(
                Vulnerability(
                    vuln_id=vuln_id,
                    aliases=aliases,
                    package_name=clean_text(name),
                    package_version=clean_text(version),
                    purl=clean_text(purl),
                    severity=severity,
                    cvss_score=score,
                    fix_state=fix_state,
                    fixed_versions=fixed_versions,
                    title=title,
                    source_tool=tool.lower() or "cyclonedx",
                )
            )
    return VulnerabilityReport(
        vulnerabilities=dedupe_vulnerabilities(vulnerabilities),
        tool=tool or "cyclonedx",
        tool_version=tool_version,
        target=json_text(subject.get("name")),
        scanned_at=parse_timestamp(json_text(metadata.get("timestamp"))),
    )


# --- CycloneDX VEX ---------------------------------------------------------------------------------------

_CYCLONEDX_VEX_STATES = {
    "not_affected": "not_affected",
    "false_positive": "not_affected",
    "exploitable": "affected",
    "resolved": "fixed",
    "resolved_with_pedigree": "fixed",
    "in_triage": "under_investigation",
}


def _cyclonedx_author(metadata: dict) -> str:
    for author in json_array(metadata.get("authors"), "metadata.authors"):
        if isinstance(author, dict) and json_text(author.get("name")):
            return json_text(author.get("name"))
    for key in ("manufacturer", "manufacture", "supplier"):
        organisation = metadata.get(key)
        if isinstance(organisation, dict) and json_text(organisation.get("name")):
            return json_text(organisation.get("name"))
    return _cyclonedx_tool(metadata)[0]


def parse_cyclonedx_vex(data: Any) -> VexDocument:
    """Read CycloneDX VEX: each vulnerability's analysis becomes one statement about its affects[] refs."""
    document = _cyclonedx_document(data)
    components = _cyclonedx_components(document)
    metadata = json_optional_object(document.get("metadata"), "metadata")
    issued_at = parse_timestamp(json_text(metadata.get("timestamp")))
    statements = []
    for index, item in enumerate(json_array(document.get("vulnerabilities"), "vulnerabilities")):
        path = f"vulnerabilities[{index}]"
        item = json_object(item, path)
        vuln_id = json_required_text(item.get("id"), f"{path}.id")
        references = json_array(item.get("references"), f"{path}.references")
        aliases = unique_texts(json_object(r, f"{path}.references").get("id") for r in references)
        analysis = json_optional_object(item.get("analysis"), f"{path}.analysis")
        state = json_text(analysis.get("state"))
        if state and state not in _CYCLONEDX_VEX_STATES:
            raise EvidenceParseError(
                f"analysis state {state!r} is not one of {', '.join(_CYCLONEDX_VEX_STATES)}",
                location=f"{path}.analysis.state",
            )
        products: list[str] = []
        for a_index, affected in enumerate(json_array(item.get("affects"), f"{path}.affects")):
            ref_path = f"{path}.affects[{a_index}].ref"
            ref = json_required_text(json_object(affected, f"{path}.affects[{a_index}]").get("ref"), ref_path)
            bom_ref = _bom_ref_of(ref)
            component = components.get(ref) or components.get(bom_ref) or {}
            products += [ref, bom_ref, json_text(component.get("purl"))]
        statements.append(
            VexStatement(
                vuln_id=vuln_id,
                aliases=tuple(a for a in aliases if a != vuln_id),
                products=unique_texts(products),
                # No analysis means nobody has assessed it yet.
                status=_CYCLONEDX_VEX_STATES.get(state, "under_investigation"),
                justification=json_text(analysis.get("justification")),
                impact_statement=json_text(analysis.get("detail")),
                timestamp=parse_timestamp(json_text(analysis.get("lastUpdated")))
                or parse_timestamp(json_text(analysis.get("firstIssued")))
                or issued_at,
            )
        )
    serial = json_text(document.get("serialNumber"))
    version = json_text(document.get("version"))
    return VexDocument(
        format="cyclonedx-vex",
        document_id=f"{serial}/{version}" if serial and version else serial,
        author=_cyclonedx_author(metadata),
        statements=statements,
        issued_at=issued_at,
    )
