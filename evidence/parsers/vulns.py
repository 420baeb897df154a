"""Vulnerability scans (Grype, Trivy, osv-scanner, CycloneDX) and VEX statements (OpenVEX, CycloneDX VEX)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4, CVSSError
from packageurl import PackageURL

from common.times import parse_timestamp
from evidence.parsers.base import EvidenceParseError, clean_text, parse_json

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
FIX_STATES = ("fixed", "not-fixed", "wont-fix", "unknown")
VEX_STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
SUPPRESSING_VEX_STATUSES = frozenset({"not_affected", "fixed"})

_TITLE_LIMIT = 500
_SEVERITY_RANK = {"unknown": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_SEVERITY_WORDS = {
    "critical": "critical",
    "high": "high",
    "important": "high",  # Red Hat's word for high
    "medium": "medium",
    "moderate": "medium",  # GitHub advisories and Red Hat
    "low": "low",
    "negligible": "low",  # Grype/Debian
    "minor": "low",
    # "none"/"info" state a minimal severity; "unknown" would mean nobody assessed it.
    "none": "low",
    "info": "low",
    "informational": "low",
}


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One vulnerability found in one package version."""

    vuln_id: str
    aliases: tuple[str, ...]
    package_name: str
    package_version: str
    purl: str
    severity: str  # critical | high | medium | low | unknown
    cvss_score: float | None
    fix_state: str  # fixed | not-fixed | wont-fix | unknown
    fixed_versions: tuple[str, ...]
    title: str
    source_tool: str


@dataclass(frozen=True, slots=True)
class VulnerabilityReport:
    """What one scanner run found, and about which target."""

    vulnerabilities: list[Vulnerability]
    tool: str
    tool_version: str
    target: str
    scanned_at: datetime | None


@dataclass(frozen=True, slots=True)
class VexStatement:
    """A supplier's statement about whether one vulnerability affects some products."""

    vuln_id: str
    aliases: tuple[str, ...]
    products: tuple[str, ...]  # purls or other identifiers; empty means the whole document's subject
    status: str  # not_affected | affected | fixed | under_investigation
    justification: str
    impact_statement: str
    timestamp: datetime | None


@dataclass(frozen=True, slots=True)
class VexDocument:
    """One VEX document and its statements."""

    format: str  # openvex | cyclonedx-vex
    document_id: str
    author: str
    statements: list[VexStatement]
    issued_at: datetime | None


# --- severity ---------------------------------------------------------------------------------------------


def severity_from_word(word: Any) -> str:
    """Normalise a scanner's severity word (Critical, HIGH, Moderate, Negligible…) to our five levels."""
    return _SEVERITY_WORDS.get(clean_text(word).strip().lower(), "unknown")


def severity_from_score(score: float | None) -> str:
    """The CVSS v3 qualitative rating of a score; 0 is "unknown" because tools write 0 for "not scored"."""
    if score is None:
        return "unknown"
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0:
        return "low"
    return "unknown"


def score_from_cvss_vector(vector: str) -> float | None:
    """The base score of a CVSS v2, v3.x or v4.0 vector; None when the vector cannot be read."""
    vector = clean_text(vector).strip()
    try:
        if vector.startswith("CVSS:4"):
            return float(CVSS4(vector).base_score)
        if vector.startswith("CVSS:3"):
            return float(CVSS3(vector).base_score)
        if vector:
            return float(CVSS2(vector).base_score)
    except (CVSSError, ValueError, KeyError, IndexError):
        # A malformed vector in an advisory should not reject the whole scan: the score stays unknown.
        return None
    return None


def _highest_severity(severities: list[str]) -> str:
    return max(severities, key=_SEVERITY_RANK.__getitem__, default="unknown")


def _severity(word_severity: str, score: float | None) -> str:
    return word_severity if word_severity != "unknown" else severity_from_score(score)


# --- JSON helpers: every complaint names the JSON path at fault -------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _load(data: Any) -> Any:
    """Accept raw bytes, text, or an already-decoded JSON value."""
    if isinstance(data, bytes | bytearray | memoryview):
        return parse_json(bytes(data))
    if isinstance(data, str):
        return parse_json(data.encode("utf-8"))
    return data


def _object(value: Any, path: str, *, what: str = "an object") -> dict:
    if not isinstance(value, dict):
        raise EvidenceParseError(f"expected {what}, found {_kind(value)}", location=path)
    return value


def _optional_object(value: Any, path: str) -> dict:
    return {} if value is None else _object(value, path)


def _array(value: Any, path: str) -> list:
    """A JSON array; null or absent counts as empty, as several scanners write null for "nothing"."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise EvidenceParseError(f"expected an array, found {_kind(value)}", location=path)
    return value


def _required_text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not clean_text(value).strip():
        raise EvidenceParseError(f"expected a non-empty string, found {_kind(value)}", location=path)
    return clean_text(value).strip()


def _text(value: Any, *, limit: int | None = None) -> str:
    """Optional scalar text; objects and arrays where text belongs are ignored, not stringified."""
    if isinstance(value, dict | list):
        return ""
    return clean_text(value, limit=limit).strip()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _unique(values: Any) -> tuple[str, ...]:
    """Cleaned, non-empty, first-seen-order strings."""
    seen: dict[str, None] = {}
    for value in values:
        text = _text(value)
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _dedupe(vulnerabilities: list[Vulnerability]) -> list[Vulnerability]:
    """Scanners repeat a match once per file location; one row per (id, package, version) is enough."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for vulnerability in vulnerabilities:
        key = (vulnerability.vuln_id, vulnerability.package_name, vulnerability.package_version)
        if key not in seen:
            seen.add(key)
            unique.append(vulnerability)
    return unique


# --- Grype ------------------------------------------------------------------------------------------------

_GRYPE_FIX_STATES = {"fixed": "fixed", "not-fixed": "not-fixed", "wont-fix": "wont-fix"}


def _grype_score(cvss_entries: list, path: str) -> float | None:
    """The highest base score of the newest CVSS version listed (v3.1 8.8 beats v2 6.8)."""
    scored: list[tuple[int, float]] = []
    for index, entry in enumerate(cvss_entries):
        entry = _object(entry, f"{path}[{index}]")
        score = _number(_optional_object(entry.get("metrics"), f"{path}[{index}].metrics").get("baseScore"))
        if score is None:
            score = score_from_cvss_vector(_text(entry.get("vector")))
        if score is not None:
            major_version = _text(entry.get("version")).split(".")[0]
            scored.append((int(major_version) if major_version.isdigit() else 0, score))
    return max(scored)[1] if scored else None


def parse_grype(data: Any) -> VulnerabilityReport:
    """Read a Grype JSON report (`grype -o json`)."""
    document = _object(_load(data), "", what="a Grype report (a JSON object with 'matches')")
    if "matches" not in document:
        raise EvidenceParseError("this is not a Grype JSON report: there is no 'matches' array", location="matches")
    descriptor = _optional_object(document.get("descriptor"), "descriptor")
    source = _optional_object(document.get("source"), "source")
    target = source.get("target")
    if isinstance(target, dict):
        target_text = _text(target.get("userInput")) or _text(target.get("imageID"))
    else:
        target_text = _text(target)
    tool_version = _text(descriptor.get("version"))
    if tool_version.startswith("["):  # "[not provided]" is a placeholder, not a version
        tool_version = ""

    vulnerabilities = []
    for index, match in enumerate(_array(document["matches"], "matches")):
        path = f"matches[{index}]"
        match = _object(match, path)
        vulnerability = _object(match.get("vulnerability"), f"{path}.vulnerability")
        artifact = _object(match.get("artifact"), f"{path}.artifact")
        vuln_id = _required_text(vulnerability.get("id"), f"{path}.vulnerability.id")
        related = _array(match.get("relatedVulnerabilities"), f"{path}.relatedVulnerabilities")
        related_ids = (_object(r, f"{path}.relatedVulnerabilities[{i}]").get("id") for i, r in enumerate(related))
        aliases = tuple(alias for alias in _unique(related_ids) if alias != vuln_id)
        score = _grype_score(
            _array(vulnerability.get("cvss"), f"{path}.vulnerability.cvss"), f"{path}.vulnerability.cvss"
        )
        fix = _optional_object(vulnerability.get("fix"), f"{path}.vulnerability.fix")
        fixed_versions = _unique(_array(fix.get("versions"), f"{path}.vulnerability.fix.versions"))
        vulnerabilities.append(
            Vulnerability(
                vuln_id=vuln_id,
                aliases=aliases,
                package_name=_required_text(artifact.get("name"), f"{path}.artifact.name"),
                package_version=_text(artifact.get("version")),
                purl=_text(artifact.get("purl")),
                severity=_severity(severity_from_word(vulnerability.get("severity")), score),
                cvss_score=score,
                fix_state=_GRYPE_FIX_STATES.get(_text(fix.get("state")).lower(), "unknown"),
                fixed_versions=fixed_versions,
                title=_first_line(_text(vulnerability.get("description"), limit=_TITLE_LIMIT)),
                source_tool="grype",
            )
        )
    return VulnerabilityReport(
        vulnerabilities=_dedupe(vulnerabilities),
        tool=_text(descriptor.get("name")) or "grype",
        tool_version=tool_version,
        target=target_text,
        scanned_at=parse_timestamp(_text(descriptor.get("timestamp"))),
    )


# --- Trivy ------------------------------------------------------------------------------------------------

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
        entry = _optional_object(entry, where)
        for field in ("V3Score", "V40Score", "V2Score"):
            score = _number(entry.get(field))
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
    item = _object(item, path)
    vuln_id = _required_text(item.get("VulnerabilityID"), f"{path}.VulnerabilityID")
    identifier = _optional_object(item.get("PkgIdentifier"), f"{path}.PkgIdentifier")
    score = _trivy_score(
        _optional_object(item.get("CVSS"), f"{path}.CVSS"), _text(item.get("SeveritySource")), f"{path}.CVSS"
    )
    # Trivy joins several fixed versions with ", " ("1.2.3, 1.3.1").
    fixed_versions = _unique(part.strip() for part in _text(item.get("FixedVersion")).split(","))
    status = _text(item.get("Status")).lower()
    fix_state = _TRIVY_FIX_STATES.get(status) or ("fixed" if fixed_versions else "unknown")
    return Vulnerability(
        vuln_id=vuln_id,
        aliases=tuple(a for a in _unique(_array(item.get("VendorIDs"), f"{path}.VendorIDs")) if a != vuln_id),
        package_name=_required_text(item.get("PkgName"), f"{path}.PkgName"),
        package_version=_text(item.get("InstalledVersion")),
        purl=_text(identifier.get("PURL")),
        severity=_severity(severity_from_word(item.get("Severity")), score),
        cvss_score=score,
        fix_state=fix_state,
        fixed_versions=fixed_versions,
        title=_text(item.get("Title"), limit=_TITLE_LIMIT)
        or _first_line(_text(item.get("Description"), limit=_TITLE_LIMIT)),
        source_tool="trivy",
    )


def _trivy_results(results: list, path: str) -> list[Vulnerability]:
    vulnerabilities = []
    for r_index, result in enumerate(results):
        result_path = f"{path}[{r_index}]"
        result = _object(result, result_path)
        # A result with nothing to report has no Vulnerabilities key (schema 2) or null (legacy).
        items = _array(result.get("Vulnerabilities"), f"{result_path}.Vulnerabilities")
        for v_index, item in enumerate(items):
            vulnerabilities.append(_trivy_vulnerability(item, f"{result_path}.Vulnerabilities[{v_index}]"))
    return vulnerabilities


def parse_trivy(data: Any) -> VulnerabilityReport:
    """Read a Trivy JSON report: SchemaVersion 2, or the legacy top-level array (before Trivy 0.20)."""
    document = _load(data)
    if isinstance(document, list):
        vulnerabilities = _trivy_results(document, "")
        targets = _unique(_optional_object(r, "").get("Target") for r in document)
        return VulnerabilityReport(
            vulnerabilities=_dedupe(vulnerabilities),
            tool="trivy",
            tool_version="",
            target=", ".join(targets),
            scanned_at=None,
        )
    document = _object(document, "", what="a Trivy report (a JSON object with 'Results', or an array)")
    schema = document.get("SchemaVersion")
    if schema is None and "Results" not in document:
        raise EvidenceParseError(
            "this is not a Trivy JSON report: it has neither 'SchemaVersion' nor 'Results' (use `trivy -f json`)",
            location="SchemaVersion",
        )
    if schema is not None and schema != 2:
        raise EvidenceParseError(
            f"Trivy report schema version {schema!r} is not supported; only SchemaVersion 2 is",
            location="SchemaVersion",
        )
    trivy = _optional_object(document.get("Trivy"), "Trivy")
    return VulnerabilityReport(
        vulnerabilities=_dedupe(_trivy_results(_array(document.get("Results"), "Results"), "Results")),
        tool="trivy",
        tool_version=_text(trivy.get("Version")),
        target=_text(document.get("ArtifactName")),
        scanned_at=parse_timestamp(_text(document.get("CreatedAt"))),
    )


# --- osv-scanner ------------------------------------------------------------------------------------------


def _osv_fixed_versions(advisory: dict, package_name: str, path: str) -> tuple[tuple[str, ...], bool]:
    """Fixed versions for this package, and whether any range was given at all."""
    fixed: list[str] = []
    has_ranges = False
    for a_index, affected in enumerate(_array(advisory.get("affected"), f"{path}.affected")):
        affected = _object(affected, f"{path}.affected[{a_index}]")
        package = _optional_object(affected.get("package"), f"{path}.affected[{a_index}].package")
        if _text(package.get("name")) not in ("", package_name):
            continue
        ranges = _array(affected.get("ranges"), f"{path}.affected[{a_index}].ranges")
        for g_index, range_ in enumerate(ranges):
            range_path = f"{path}.affected[{a_index}].ranges[{g_index}]"
            has_ranges = True
            for e_index, event in enumerate(_array(_object(range_, range_path).get("events"), f"{range_path}.events")):
                event = _object(event, f"{range_path}.events[{e_index}]")
                if event.get("fixed"):
                    fixed.append(_text(event["fixed"]))
    return _unique(fixed), has_ranges


def _osv_vector_score(advisories: list[tuple[dict, str]]) -> float | None:
    scores = []
    for advisory, path in advisories:
        for entry in _array(advisory.get("severity"), f"{path}.severity"):
            if isinstance(entry, dict) and str(entry.get("type", "")).startswith("CVSS"):
                score = score_from_cvss_vector(_text(entry.get("score")))
                if score is not None:
                    scores.append(score)
    return max(scores, default=None)


def _osv_package_vulnerabilities(package_entry: dict, path: str) -> list[Vulnerability]:
    package = _object(package_entry.get("package"), f"{path}.package")
    name = _required_text(package.get("name"), f"{path}.package.name")
    version = _text(package.get("version"))
    advisories: dict[str, tuple[dict, str]] = {}
    for index, advisory in enumerate(_array(package_entry.get("vulnerabilities"), f"{path}.vulnerabilities")):
        advisory_path = f"{path}.vulnerabilities[{index}]"
        advisory = _object(advisory, advisory_path)
        advisories[_required_text(advisory.get("id"), f"{advisory_path}.id")] = (advisory, advisory_path)

    groups: list[tuple[dict, str]] = []
    grouped: set[str] = set()
    for index, group in enumerate(_array(package_entry.get("groups"), f"{path}.groups")):
        group_path = f"{path}.groups[{index}]"
        group = _object(group, group_path)
        ids = _array(group.get("ids"), f"{group_path}.ids")
        if not ids:
            raise EvidenceParseError("a group lists no vulnerability ids", location=f"{group_path}.ids")
        for i_index, vuln_id in enumerate(ids):
            grouped.add(_required_text(vuln_id, f"{group_path}.ids[{i_index}]"))
        groups.append((group, group_path))
    # Older outputs (or a hand-trimmed one) may lack groups: each advisory is then its own group.
    groups.extend(({"ids": [vuln_id]}, path) for vuln_id in advisories if vuln_id not in grouped)

    results = []
    for group, group_path in groups:
        ids = [clean_text(i).strip() for i in group["ids"]]
        members = [advisories[i][0] for i in ids if i in advisories]
        vuln_id = ids[0]
        member_aliases = [
            alias
            for member_id in ids
            if member_id in advisories
            for alias in _array(advisories[member_id][0].get("aliases"), f"{advisories[member_id][1]}.aliases")
        ]
        aliases = _unique([*ids[1:], *_array(group.get("aliases"), f"{group_path}.aliases"), *member_aliases])
        vector_score = _osv_vector_score([advisories[i] for i in ids if i in advisories])
        max_severity = _text(group.get("max_severity"))
        group_score = _number(max_severity)
        if group_score is not None:
            severity, score = severity_from_score(group_score), group_score
        else:
            words = [
                severity_from_word(
                    _optional_object(
                        advisories[i][0].get("database_specific"), f"{advisories[i][1]}.database_specific"
                    ).get("severity")
                )
                for i in ids
                if i in advisories
            ]
            severity = _highest_severity([severity_from_word(max_severity), *words])
            score = vector_score
            if severity == "unknown":
                severity = severity_from_score(vector_score)
        fixed: list[str] = []
        any_ranges = False
        affected_purl = ""
        for member in members:
            member_fixed, has_ranges = _osv_fixed_versions(member, name, advisories[_text(member["id"])][1])
            fixed.extend(member_fixed)
            any_ranges = any_ranges or has_ranges
            for affected in member.get("affected") or []:
                package_info = affected.get("package") if isinstance(affected, dict) else None
                if isinstance(package_info, dict) and _text(package_info.get("name")) == name:
                    affected_purl = affected_purl or _text(package_info.get("purl"))
        fixed_versions = _unique(fixed)
        # The advisory's purl names the package without a version; the lockfile supplies the version.
        purl = f"{affected_purl}@{version}" if affected_purl and "@" not in affected_purl and version else affected_purl
        title = next((_text(m.get("summary"), limit=_TITLE_LIMIT) for m in members if _text(m.get("summary"))), "")
        results.append(
            Vulnerability(
                vuln_id=vuln_id,
                aliases=tuple(a for a in aliases if a != vuln_id),
                package_name=name,
                package_version=version,
                purl=purl,
                severity=severity,
                cvss_score=score,
                fix_state="fixed" if fixed_versions else ("not-fixed" if any_ranges else "unknown"),
                fixed_versions=fixed_versions,
                title=title or _first_line(_text(members[0].get("details"), limit=_TITLE_LIMIT) if members else ""),
                source_tool="osv-scanner",
            )
        )
    return results


def parse_osv_scanner(data: Any) -> VulnerabilityReport:
    """Read an osv-scanner JSON report (`osv-scanner --format json`)."""
    document = _object(_load(data), "", what="an osv-scanner report (a JSON object with 'results')")
    if "results" not in document:
        raise EvidenceParseError(
            "this is not an osv-scanner JSON report: there is no 'results' array", location="results"
        )
    vulnerabilities = []
    sources = []
    for r_index, result in enumerate(_array(document["results"], "results")):
        result_path = f"results[{r_index}]"
        result = _object(result, result_path)
        sources.append(_optional_object(result.get("source"), f"{result_path}.source").get("path"))
        for p_index, package_entry in enumerate(_array(result.get("packages"), f"{result_path}.packages")):
            package_path = f"{result_path}.packages[{p_index}]"
            vulnerabilities.extend(_osv_package_vulnerabilities(_object(package_entry, package_path), package_path))
    return VulnerabilityReport(
        vulnerabilities=_dedupe(vulnerabilities),
        tool="osv-scanner",
        tool_version="",  # osv-scanner's JSON does not record its own version
        target=", ".join(_unique(sources)),
        scanned_at=None,
    )


# --- CycloneDX --------------------------------------------------------------------------------------------

# Trivy and Snyk write "Upgrade <pkg> to version 2.9.10.4" / "to version 2.6.7.4, 2.9.10.7 or higher.".
_RECOMMENDED_VERSIONS = re.compile(r"\bto versions? (.+?)(?: or (?:higher|later|above))?\.?\s*$", re.IGNORECASE)
_NEWER_CVSS_METHODS = ("CVSSv4", "CVSSv31", "CVSSv3")


def _cyclonedx_document(data: Any) -> dict:
    document = _object(_load(data), "", what="a CycloneDX document (a JSON object)")
    if document.get("bomFormat") != "CycloneDX":
        raise EvidenceParseError(
            f"this is not a CycloneDX JSON document: bomFormat is {document.get('bomFormat')!r}, not 'CycloneDX'",
            location="bomFormat",
        )
    return document


def _cyclonedx_components(document: dict) -> dict[str, dict]:
    """Every component by bom-ref, nested ones and metadata.component included."""
    by_ref: dict[str, dict] = {}
    metadata = _optional_object(document.get("metadata"), "metadata")
    pending = [metadata.get("component"), *_array(document.get("components"), "components")]
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
            *_array(tools.get("components"), "metadata.tools.components"),
            *_array(tools.get("services"), "metadata.tools.services"),
        ]
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and _text(tool.get("name")):
            return _text(tool.get("name")), _text(tool.get("version"))
    return "", ""


def _cyclonedx_severity_and_score(ratings: list, path: str) -> tuple[str, float | None]:
    words, newer_scores, other_scores = [], [], []
    for index, rating in enumerate(ratings):
        rating = _object(rating, f"{path}[{index}]")
        words.append(severity_from_word(rating.get("severity")))
        score = _number(rating.get("score"))
        if score is None and _text(rating.get("vector")):
            score = score_from_cvss_vector(_text(rating.get("vector")))
        if score:
            (newer_scores if _text(rating.get("method")) in _NEWER_CVSS_METHODS else other_scores).append(score)
    score = max(newer_scores, default=None) or max(other_scores, default=None)
    # Several sources rate one vulnerability; a regulated release takes the most severe view.
    return _severity(_highest_severity(words), score), score


def parse_cyclonedx_vulnerabilities(data: Any) -> VulnerabilityReport:
    """Read the `vulnerabilities` of a CycloneDX JSON BOM (Trivy, Snyk, Dependency-Track…), one row per affected ref."""
    document = _cyclonedx_document(data)
    components = _cyclonedx_components(document)
    metadata = _optional_object(document.get("metadata"), "metadata")
    tool, tool_version = _cyclonedx_tool(metadata)
    subject = _optional_object(metadata.get("component"), "metadata.component")
    vulnerabilities = []
    for v_index, item in enumerate(_array(document.get("vulnerabilities"), "vulnerabilities")):
        path = f"vulnerabilities[{v_index}]"
        item = _object(item, path)
        vuln_id = _required_text(item.get("id"), f"{path}.id")
        references = _array(item.get("references"), f"{path}.references")
        aliases = tuple(
            a for a in _unique(_object(r, f"{path}.references").get("id") for r in references) if a != vuln_id
        )
        severity, score = _cyclonedx_severity_and_score(
            _array(item.get("ratings"), f"{path}.ratings"), f"{path}.ratings"
        )
        recommended = _RECOMMENDED_VERSIONS.search(_text(item.get("recommendation")))
        fixed_versions = _unique(v.strip() for v in recommended.group(1).split(",")) if recommended else ()
        analysis = _optional_object(item.get("analysis"), f"{path}.analysis")
        responses = _array(analysis.get("response"), f"{path}.analysis.response")
        if fixed_versions:
            fix_state = "fixed"
        elif "will_not_fix" in responses:
            fix_state = "wont-fix"
        else:
            fix_state = "unknown"
        title = _first_line(_text(item.get("description"), limit=_TITLE_LIMIT)) or _text(
            item.get("detail"), limit=_TITLE_LIMIT
        )
        affects = _array(item.get("affects"), f"{path}.affects") or [None]
        for a_index, affected in enumerate(affects):
            name, version, purl = "", "", ""
            if affected is not None:
                ref = _required_text(
                    _object(affected, f"{path}.affects[{a_index}]").get("ref"), f"{path}.affects[{a_index}].ref"
                )
                bom_ref = _bom_ref_of(ref)
                component = components.get(ref) or components.get(bom_ref)
                if component:
                    name, version, purl = (_text(component.get(k)) for k in ("name", "version", "purl"))
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
        vulnerabilities=_dedupe(vulnerabilities),
        tool=tool or "cyclonedx",
        tool_version=tool_version,
        target=_text(subject.get("name")),
        scanned_at=parse_timestamp(_text(metadata.get("timestamp"))),
    )


# --- OpenVEX ----------------------------------------------------------------------------------------------


def _openvex_products(products: list, path: str) -> list[str]:
    """Product ids, their purl/CPE identifiers, and their subcomponents (where the vulnerable package sits)."""
    found: list[str] = []
    for index, product in enumerate(products):
        product_path = f"{path}[{index}]"
        if isinstance(product, str):  # v0.0.1 legacy: a plain identifier
            found.append(product)
            continue
        product = _object(product, product_path, what="a product object or identifier string")
        found.append(_text(product.get("@id")))
        identifiers = _optional_object(product.get("identifiers"), f"{product_path}.identifiers")
        found.extend(_text(identifiers.get(key)) for key in ("purl", "cpe23", "cpe22"))
        found.extend(
            _openvex_products(
                _array(product.get("subcomponents"), f"{product_path}.subcomponents"), f"{product_path}.subcomponents"
            )
        )
    return found


def parse_openvex(data: Any) -> VexDocument:
    """Read an OpenVEX document: v0.2.0 (objects) or v0.0.1 legacy (plain strings, version "1")."""
    document = _object(_load(data), "", what="an OpenVEX document (a JSON object)")
    context = _text(document.get("@context"))
    if not context.startswith("https://openvex.dev/ns"):
        raise EvidenceParseError(
            f"this is not an OpenVEX document: @context is {context!r}, expected https://openvex.dev/ns/v…",
            location="@context",
        )
    issued_at = parse_timestamp(_text(document.get("timestamp")))
    statements = []
    for index, item in enumerate(_array(document.get("statements"), "statements")):
        path = f"statements[{index}]"
        item = _object(item, path)
        vulnerability = item.get("vulnerability")
        if isinstance(vulnerability, str):  # v0.0.1 legacy
            vuln_id = _required_text(vulnerability, f"{path}.vulnerability")
            aliases: tuple[str, ...] = ()
        else:
            vulnerability = _object(vulnerability, f"{path}.vulnerability", what="a vulnerability object or id string")
            vuln_id = _text(vulnerability.get("name")) or _required_text(
                vulnerability.get("@id"), f"{path}.vulnerability.name"
            )
            aliases = _unique(_array(vulnerability.get("aliases"), f"{path}.vulnerability.aliases"))
        status = _text(item.get("status"))
        if status not in VEX_STATUSES:
            raise EvidenceParseError(
                f"status {status!r} is not one of {', '.join(VEX_STATUSES)}", location=f"{path}.status"
            )
        products = _openvex_products(_array(item.get("products"), f"{path}.products"), f"{path}.products")
        # v0.0.1 put subcomponents beside products rather than inside them.
        products += _openvex_products(
            _array(item.get("subcomponents"), f"{path}.subcomponents"), f"{path}.subcomponents"
        )
        statements.append(
            VexStatement(
                vuln_id=vuln_id,
                aliases=tuple(a for a in aliases if a != vuln_id),
                products=_unique(products),
                status=status,
                justification=_text(item.get("justification")),
                # vexctl's own examples write "statement"; the specification says "impact_statement".
                impact_statement=_text(item.get("impact_statement")) or _text(item.get("statement")),
                timestamp=parse_timestamp(_text(item.get("timestamp"))) or issued_at,
            )
        )
    return VexDocument(
        format="openvex",
        document_id=_text(document.get("@id")),
        author=_text(document.get("author")),
        statements=statements,
        issued_at=issued_at,
    )


# --- CycloneDX VEX ----------------------------------------------------------------------------------------

_CYCLONEDX_VEX_STATES = {
    "not_affected": "not_affected",
    "false_positive": "not_affected",
    "exploitable": "affected",
    "resolved": "fixed",
    "resolved_with_pedigree": "fixed",
    "in_triage": "under_investigation",
}


def _cyclonedx_author(metadata: dict) -> str:
    for author in _array(metadata.get("authors"), "metadata.authors"):
        if isinstance(author, dict) and _text(author.get("name")):
            return _text(author.get("name"))
    for key in ("manufacturer", "manufacture", "supplier"):
        organisation = metadata.get(key)
        if isinstance(organisation, dict) and _text(organisation.get("name")):
            return _text(organisation.get("name"))
    return _cyclonedx_tool(metadata)[0]


def parse_cyclonedx_vex(data: Any) -> VexDocument:
    """Read CycloneDX VEX: each vulnerability's analysis becomes one statement about its affects[] refs."""
    document = _cyclonedx_document(data)
    components = _cyclonedx_components(document)
    metadata = _optional_object(document.get("metadata"), "metadata")
    issued_at = parse_timestamp(_text(metadata.get("timestamp")))
    statements = []
    for index, item in enumerate(_array(document.get("vulnerabilities"), "vulnerabilities")):
        path = f"vulnerabilities[{index}]"
        item = _object(item, path)
        vuln_id = _required_text(item.get("id"), f"{path}.id")
        references = _array(item.get("references"), f"{path}.references")
        aliases = _unique(_object(r, f"{path}.references").get("id") for r in references)
        analysis = _optional_object(item.get("analysis"), f"{path}.analysis")
        state = _text(analysis.get("state"))
        if state and state not in _CYCLONEDX_VEX_STATES:
            raise EvidenceParseError(
                f"analysis state {state!r} is not one of {', '.join(_CYCLONEDX_VEX_STATES)}",
                location=f"{path}.analysis.state",
            )
        products: list[str] = []
        for a_index, affected in enumerate(_array(item.get("affects"), f"{path}.affects")):
            ref_path = f"{path}.affects[{a_index}].ref"
            ref = _required_text(_object(affected, f"{path}.affects[{a_index}]").get("ref"), ref_path)
            bom_ref = _bom_ref_of(ref)
            component = components.get(ref) or components.get(bom_ref) or {}
            products += [ref, bom_ref, _text(component.get("purl"))]
        statements.append(
            VexStatement(
                vuln_id=vuln_id,
                aliases=tuple(a for a in aliases if a != vuln_id),
                products=_unique(products),
                # No analysis means nobody has assessed it yet.
                status=_CYCLONEDX_VEX_STATES.get(state, "under_investigation"),
                justification=_text(analysis.get("justification")),
                impact_statement=_text(analysis.get("detail")),
                timestamp=parse_timestamp(_text(analysis.get("lastUpdated")))
                or parse_timestamp(_text(analysis.get("firstIssued")))
                or issued_at,
            )
        )
    serial = _text(document.get("serialNumber"))
    version = _text(document.get("version"))
    return VexDocument(
        format="cyclonedx-vex",
        document_id=f"{serial}/{version}" if serial and version else serial,
        author=_cyclonedx_author(metadata),
        statements=statements,
        issued_at=issued_at,
    )


# --- applying VEX -----------------------------------------------------------------------------------------


def _purl_covers(statement_purl: str, found_purl: str) -> bool:
    """Does the statement's purl name the scanner's package?

    Type, namespace and name must be equal. A version in the statement must equal the package's; a
    versionless statement covers every version. Qualifiers written on both sides must agree (so
    `?arch=x86_64` does not cover arm64), but one written on one side only is ignored: scanners add
    `distro=…` and VEX authors add `type=jar` that the other side does not write.
    """
    try:
        stated = PackageURL.from_string(statement_purl)
        found = PackageURL.from_string(found_purl)
    except ValueError:
        return False
    if (stated.type, stated.namespace, stated.name) != (found.type, found.namespace, found.name):
        return False
    if stated.version and stated.version != found.version:
        return False
    stated_qualifiers = stated.qualifiers if isinstance(stated.qualifiers, dict) else {}
    found_qualifiers = found.qualifiers if isinstance(found.qualifiers, dict) else {}
    return all(found_qualifiers[key] == value for key, value in stated_qualifiers.items() if key in found_qualifiers)


def _names_artifact(product: str, artifact_identifiers: frozenset[str]) -> bool:
    """Does a statement product name the scanned artifact itself (its digest, purl or bom-ref)?"""
    if product in artifact_identifiers:
        return True
    if product.startswith("pkg:"):
        try:
            version = PackageURL.from_string(product).version or ""
        except ValueError:
            return False
        # pkg:oci/nginx@sha256%3A13d2… names an image by its digest.
        return version.lower() in artifact_identifiers
    return False


def vex_suppresses(
    *, statement: VexStatement, vulnerability: Vulnerability, artifact_identifiers: Collection[str] = ()
) -> bool:
    """True when the statement says this finding does not apply (status not_affected or fixed).

    The ids match by id or alias. The product matches when the statement has no products (document-wide),
    names the vulnerable package's purl (see _purl_covers), or names the scanned artifact itself: pass its
    digest (`sha256:<hex>`), purl or bom-ref in artifact_identifiers, as an image-level OpenVEX statement
    (`pkg:oci/nginx@sha256:…`) covers every package inside that image.
    """
    if statement.status not in SUPPRESSING_VEX_STATUSES:
        return False
    stated_ids = {i.upper() for i in (statement.vuln_id, *statement.aliases)}
    found_ids = {i.upper() for i in (vulnerability.vuln_id, *vulnerability.aliases)}
    if not stated_ids & found_ids:
        return False
    if not statement.products:  # a statement about the whole document's subject
        return True
    artifacts = frozenset(i.strip() for i in artifact_identifiers) | frozenset(
        i.strip().lower() for i in artifact_identifiers
    )
    for product in statement.products:
        if artifacts and _names_artifact(product, artifacts):
            return True
        if vulnerability.purl and (
            product == vulnerability.purl or (product.startswith("pkg:") and _purl_covers(product, vulnerability.purl))
        ):
            return True
    return False


__all__ = [
    "SEVERITIES",
    "VexDocument",
    "VexStatement",
    "Vulnerability",
    "VulnerabilityReport",
    "parse_cyclonedx_vex",
    "parse_cyclonedx_vulnerabilities",
    "parse_grype",
    "parse_openvex",
    "parse_osv_scanner",
    "parse_trivy",
    "score_from_cvss_vector",
    "severity_from_score",
    "severity_from_word",
    "vex_suppresses",
]
