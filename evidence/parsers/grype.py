"""Grype JSON reports (`grype -o json`)."""

from __future__ import annotations

from typing import Any

from common.times import parse_timestamp
from evidence.parsers.base import EvidenceParseError
from evidence.parsers.results import (
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
    score_from_cvss_vector,
    severity_from_word,
)

_GRYPE_FIX_STATES = {"fixed": "fixed", "not-fixed": "not-fixed", "wont-fix": "wont-fix"}


def _grype_score(cvss_entries: list, path: str) -> float | None:
    """The highest base score of the newest CVSS version listed (v3.1 8.8 beats v2 6.8)."""
    scored: list[tuple[int, float]] = []
    for index, entry in enumerate(cvss_entries):
        entry = json_object(entry, f"{path}[{index}]")
        score = json_number(json_optional_object(entry.get("metrics"), f"{path}[{index}].metrics").get("baseScore"))
        if score is None:
            score = score_from_cvss_vector(json_text(entry.get("vector")))
        if score is not None:
            major_version = json_text(entry.get("version")).split(".")[0]
            scored.append((int(major_version) if major_version.isdigit() else 0, score))
    return max(scored)[1] if scored else None


def parse_grype(data: Any) -> VulnerabilityReport:
    """Read a Grype JSON report (`grype -o json`)."""
    document = json_object(load_json(data), "", what="a Grype report (a JSON object with 'matches')")
    if "matches" not in document:
        raise EvidenceParseError("this is not a Grype JSON report: there is no 'matches' array", location="matches")
    descriptor = json_optional_object(document.get("descriptor"), "descriptor")
    source = json_optional_object(document.get("source"), "source")
    target = source.get("target")
    if isinstance(target, dict):
        target_text = json_text(target.get("userInput")) or json_text(target.get("imageID"))
    else:
        target_text = json_text(target)
    tool_version = json_text(descriptor.get("version"))
    if tool_version.startswith("["):  # "[not provided]" is a placeholder, not a version
        tool_version = ""

    vulnerabilities = []
    for index, match in enumerate(json_array(document["matches"], "matches")):
        path = f"matches[{index}]"
        match = json_object(match, path)
        vulnerability = json_object(match.get("vulnerability"), f"{path}.vulnerability")
        artifact = json_object(match.get("artifact"), f"{path}.artifact")
        vuln_id = json_required_text(vulnerability.get("id"), f"{path}.vulnerability.id")
        related = json_array(match.get("relatedVulnerabilities"), f"{path}.relatedVulnerabilities")
        related_ids = (json_object(r, f"{path}.relatedVulnerabilities[{i}]").get("id") for i, r in enumerate(related))
        aliases = tuple(alias for alias in unique_texts(related_ids) if alias != vuln_id)
        score = _grype_score(
            json_array(vulnerability.get("cvss"), f"{path}.vulnerability.cvss"), f"{path}.vulnerability.cvss"
        )
        fix = json_optional_object(vulnerability.get("fix"), f"{path}.vulnerability.fix")
        fixed_versions = unique_texts(json_array(fix.get("versions"), f"{path}.vulnerability.fix.versions"))
        vulnerabilities.append(
            Vulnerability(
                vuln_id=vuln_id,
                aliases=aliases,
                package_name=json_required_text(artifact.get("name"), f"{path}.artifact.name"),
                package_version=json_text(artifact.get("version")),
                purl=json_text(artifact.get("purl")),
                severity=combined_severity(severity_from_word(vulnerability.get("severity")), score),
                cvss_score=score,
                fix_state=_GRYPE_FIX_STATES.get(json_text(fix.get("state")).lower(), "unknown"),
                fixed_versions=fixed_versions,
                title=first_line(json_text(vulnerability.get("description"), limit=TITLE_LIMIT)),
                source_tool="grype",
            )
        )
    return VulnerabilityReport(
        vulnerabilities=dedupe_vulnerabilities(vulnerabilities),
        tool=json_text(descriptor.get("name")) or "grype",
        tool_version=tool_version,
        target=target_text,
        scanned_at=parse_timestamp(json_text(descriptor.get("timestamp"))),
    )
