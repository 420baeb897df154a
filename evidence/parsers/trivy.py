"""Trivy JSON reports (`trivy image|fs|repo --format json`)."""

from __future__ import annotations

from typing import Any

from common.times import parse_timestamp
from evidence.parsers.base import EvidenceParseError, warn
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
    severity_from_word,
)

# Trivy's Status values (pkg/types): only these say something about a fix.
_TRIVY_FIX_STATES = {
    "fixed": "fixed",
    "affected": "not-fixed",
    "fix_deferred": "not-fixed",
    "under_investigation": "not-fixed",
    "will_not_fix": "wont-fix",
    "end_of_life": "wont-fix",
}


def _trivy_score(cvss_by_source: dict, preferred_source: str, path: str) -> float | None:
    """The V3 (else V4, else V2) score of the severity's own source, then NVD, then the highest found."""

    def score_of(entry: Any, where: str) -> float | None:
        entry = json_optional_object(entry, where)
        for field in ("V3Score", "V40Score", "V2Score"):
            score = json_number(entry.get(field))
            if score:
                return score
        return None

    for source in (preferred_source, "nvd"):
        if source and source in cvss_by_source:
            score = score_of(cvss_by_source[source], f"{path}.{source}")
            if score is not None:
                return score
    scores = [score_of(entry, f"{path}.{source}") for source, entry in cvss_by_source.items()]
    return max((s for s in scores if s is not None), default=None)


def _trivy_vulnerability(item: Any, path: str) -> Vulnerability:
    item = json_object(item, path)
    vuln_id = json_required_text(item.get("VulnerabilityID"), f"{path}.VulnerabilityID")
    identifier = json_optional_object(item.get("PkgIdentifier"), f"{path}.PkgIdentifier")
    score = _trivy_score(
        json_optional_object(item.get("CVSS"), f"{path}.CVSS"), json_text(item.get("SeveritySource")), f"{path}.CVSS"
    )
    # Trivy joins several fixed versions with ", " ("1.2.3, 1.3.1").
    fixed_versions = unique_texts(part.strip() for part in json_text(item.get("FixedVersion")).split(","))
    status = json_text(item.get("Status")).lower()
    fix_state = _TRIVY_FIX_STATES.get(status) or ("fixed" if fixed_versions else "unknown")
    return Vulnerability(
        vuln_id=vuln_id,
        aliases=tuple(a for a in unique_texts(json_array(item.get("VendorIDs"), f"{path}.VendorIDs")) if a != vuln_id),
        package_name=json_required_text(item.get("PkgName"), f"{path}.PkgName"),
        package_version=json_text(item.get("InstalledVersion")),
        purl=json_text(identifier.get("PURL")),
        severity=combined_severity(severity_from_word(item.get("Severity")), score),
        cvss_score=score,
        fix_state=fix_state,
        fixed_versions=fixed_versions,
        title=json_text(item.get("Title"), limit=TITLE_LIMIT)
        or first_line(json_text(item.get("Description"), limit=TITLE_LIMIT)),
        source_tool="trivy",
    )


def _trivy_results(results: list, path: str) -> list[Vulnerability]:
    vulnerabilities = []
    for r_index, result in enumerate(results):
        result_path = f"{path}[{r_index}]"
        result = json_object(result, result_path)
        # A result with nothing to report has no Vulnerabilities key (schema 2) or null (legacy).
        items = json_array(result.get("Vulnerabilities"), f"{result_path}.Vulnerabilities")
        for v_index, item in enumerate(items):
            vulnerabilities.append(_trivy_vulnerability(item, f"{result_path}.Vulnerabilities[{v_index}]"))
    return vulnerabilities


def parse_trivy(data: Any) -> VulnerabilityReport:
    """Read a Trivy JSON report: SchemaVersion 2, or the legacy top-level array (before Trivy 0.20)."""
    document = load_json(data)
    if isinstance(document, list):
        vulnerabilities = _trivy_results(document, "")
        targets = unique_texts(json_optional_object(r, "").get("Target") for r in document)
        return VulnerabilityReport(
            vulnerabilities=dedupe_vulnerabilities(vulnerabilities),
            tool="trivy",
            tool_version="",
            target=", ".join(targets),
            scanned_at=None,
        )
    document = json_object(document, "", what="a Trivy report (a JSON object with 'Results', or an array)")
    if "ClusterName" in document:
        return _parse_trivy_k8s(document)
    schema = document.get("SchemaVersion")
    if schema is None and "Results" not in document:
        raise EvidenceParseError(
            "this is not a Trivy JSON report: it has neither 'SchemaVersion' and 'Results' (`trivy image|fs|repo "
            "-f json`) nor 'ClusterName' (`trivy k8s -f json`)",
            location="SchemaVersion",
        )
    if schema is not None and schema != 2:
        raise EvidenceParseError(
            f"Trivy report schema version {schema!r} is not supported; only SchemaVersion 2 is",
            location="SchemaVersion",
        )
    trivy = json_optional_object(document.get("Trivy"), "Trivy")
    return VulnerabilityReport(
        vulnerabilities=dedupe_vulnerabilities(
            _trivy_results(json_array(document.get("Results"), "Results"), "Results")
        ),
        tool="trivy",
        tool_version=json_text(trivy.get("Version")),
        target=json_text(document.get("ArtifactName")),
        scanned_at=parse_timestamp(json_text(document.get("CreatedAt"))),
    )


# `trivy k8s --format json`: results nested per workload. Newer Trivy writes {"ClusterName", "Resources": [...]},
# older (before 0.40) {"ClusterName", "Vulnerabilities": [...], "Misconfigurations": [...]}, each a list of
# resources {"Namespace", "Kind", "Name", "Results"}.
_K8S_RESOURCE_LISTS = ("Resources", "Vulnerabilities", "Misconfigurations")


def _parse_trivy_k8s(document: dict) -> VulnerabilityReport:
    vulnerabilities = []
    for key in _K8S_RESOURCE_LISTS:
        for index, resource in enumerate(json_array(document.get(key), key)):
            path = f"{key}[{index}]"
            resource = json_object(resource, path)
            if json_text(resource.get("Error")):
                warn(
                    f"Trivy could not scan {json_text(resource.get('Kind'))}/{json_text(resource.get('Name'))}: "
                    f"{json_text(resource.get('Error'), limit=300)}",
                    location=f"{path}.Error",
                )
            vulnerabilities.extend(
                _trivy_results(json_array(resource.get("Results"), f"{path}.Results"), f"{path}.Results")
            )
    return VulnerabilityReport(
        vulnerabilities=dedupe_vulnerabilities(vulnerabilities),
        tool="trivy",
        tool_version="",  # trivy k8s does not record its version
        target=json_text(document.get("ClusterName")),
        scanned_at=None,
    )
