"""osv-scanner JSON reports (`osv-scanner --format json`)."""

from __future__ import annotations

from typing import Any

from evidence.parsers.base import EvidenceParseError, clean_text, warn
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
    highest_severity,
    score_from_cvss_vector,
    severity_from_score,
    severity_from_word,
)


def _osv_fixed_versions(advisory: dict, package_name: str, path: str) -> tuple[tuple[str, ...], bool]:
    """Fixed versions for this package, and whether any range was given at all."""
    fixed: list[str] = []
    has_ranges = False
    for a_index, affected in enumerate(json_array(advisory.get("affected"), f"{path}.affected")):
        affected = json_object(affected, f"{path}.affected[{a_index}]")
        package = json_optional_object(affected.get("package"), f"{path}.affected[{a_index}].package")
        if json_text(package.get("name")) not in ("", package_name):
            continue
        ranges = json_array(affected.get("ranges"), f"{path}.affected[{a_index}].ranges")
        for g_index, range_ in enumerate(ranges):
            range_path = f"{path}.affected[{a_index}].ranges[{g_index}]"
            has_ranges = True
            for e_index, event in enumerate(
                json_array(json_object(range_, range_path).get("events"), f"{range_path}.events")
            ):
                event = json_object(event, f"{range_path}.events[{e_index}]")
                if event.get("fixed"):
                    fixed.append(json_text(event["fixed"]))
    return unique_texts(fixed), has_ranges


def _osv_vector_score(advisories: list[tuple[dict, str]]) -> float | None:
    scores = []
    for advisory, path in advisories:
        for entry in json_array(advisory.get("severity"), f"{path}.severity"):
            if isinstance(entry, dict) and str(entry.get("type", "")).startswith("CVSS"):
                score = score_from_cvss_vector(json_text(entry.get("score")))
                if score is not None:
                    scores.append(score)
    return max(scores, default=None)


def _osv_package_vulnerabilities(package_entry: dict, path: str) -> list[Vulnerability]:
    package = json_object(package_entry.get("package"), f"{path}.package")
    name = json_text(package.get("name"))
    version = json_text(package.get("version"))
    commit = json_text(package.get("commit"))
    shown_name = name
    if not name:
        # osv-scanner identifies git dependencies (submodules, vendored repositories) by commit, with an empty
        # name; the commit (or the version) is then what names the package.
        shown_name = commit or version
        if not shown_name:
            raise EvidenceParseError(
                "the package has neither a name nor a version or commit to identify it", location=f"{path}.package"
            )
        warn(
            "a package with an empty name was identified by its " + ("commit" if commit else "version"),
            location=f"{path}.package",
        )
    version = version or commit
    advisories: dict[str, tuple[dict, str]] = {}
    for index, advisory in enumerate(json_array(package_entry.get("vulnerabilities"), f"{path}.vulnerabilities")):
        advisory_path = f"{path}.vulnerabilities[{index}]"
        advisory = json_object(advisory, advisory_path)
        advisories[json_required_text(advisory.get("id"), f"{advisory_path}.id")] = (advisory, advisory_path)

    groups: list[tuple[dict, str]] = []
    grouped: set[str] = set()
    for index, group in enumerate(json_array(package_entry.get("groups"), f"{path}.groups")):
        group_path = f"{path}.groups[{index}]"
        group = json_object(group, group_path)
        ids = json_array(group.get("ids"), f"{group_path}.ids")
        if not ids:
            raise EvidenceParseError("a group lists no vulnerability ids", location=f"{group_path}.ids")
        for i_index, vuln_id in enumerate(ids):
            grouped.add(json_required_text(vuln_id, f"{group_path}.ids[{i_index}]"))
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
            for alias in json_array(advisories[member_id][0].get("aliases"), f"{advisories[member_id][1]}.aliases")
        ]
        aliases = unique_texts([*ids[1:], *json_array(group.get("aliases"), f"{group_path}.aliases"), *member_aliases])
        vector_score = _osv_vector_score([advisories[i] for i in ids if i in advisories])
        max_severity = json_text(group.get("max_severity"))
        group_score = json_number(max_severity)
        if group_score is not None:
            severity, score = severity_from_score(group_score), group_score
        else:
            words = [
                severity_from_word(
                    json_optional_object(
                        advisories[i][0].get("database_specific"), f"{advisories[i][1]}.database_specific"
                    ).get("severity")
                )
                for i in ids
                if i in advisories
            ]
            severity = highest_severity([severity_from_word(max_severity), *words])
            score = vector_score
            if severity == "unknown":
                severity = severity_from_score(vector_score)
        fixed: list[str] = []
        any_ranges = False
        affected_purl = ""
        for member in members:
            member_fixed, has_ranges = _osv_fixed_versions(member, name, advisories[json_text(member["id"])][1])
            fixed.extend(member_fixed)
            any_ranges = any_ranges or has_ranges
            for affected in member.get("affected") or []:
                package_info = affected.get("package") if isinstance(affected, dict) else None
                if isinstance(package_info, dict) and json_text(package_info.get("name")) == name:
                    affected_purl = affected_purl or json_text(package_info.get("purl"))
        fixed_versions = unique_texts(fixed)
        # The advisory's purl names the package without a version; the lockfile supplies the version.
        purl = f"{affected_purl}@{version}" if affected_purl and "@" not in affected_purl and version else affected_purl
        title = next(
            (json_text(m.get("summary"), limit=TITLE_LIMIT) for m in members if json_text(m.get("summary"))), ""
        )
        results.append(
            Vulnerability(
                vuln_id=vuln_id,
                aliases=tuple(a for a in aliases if a != vuln_id),
                package_name=shown_name,
                package_version=version,
                purl=purl,
                severity=severity,
                cvss_score=score,
                fix_state="fixed" if fixed_versions else ("not-fixed" if any_ranges else "unknown"),
                fixed_versions=fixed_versions,
                title=title or first_line(json_text(members[0].get("details"), limit=TITLE_LIMIT) if members else ""),
                source_tool="osv-scanner",
            )
        )
    return results


def parse_osv_scanner(data: Any) -> VulnerabilityReport:
    """Read an osv-scanner JSON report (`osv-scanner --format json`)."""
    document = json_object(load_json(data), "", what="an osv-scanner report (a JSON object with 'results')")
    if "results" not in document:
        raise EvidenceParseError(
            "this is not an osv-scanner JSON report: there is no 'results' array", location="results"
        )
    vulnerabilities = []
    sources = []
    for r_index, result in enumerate(json_array(document["results"], "results")):
        result_path = f"results[{r_index}]"
        result = json_object(result, result_path)
        sources.append(json_optional_object(result.get("source"), f"{result_path}.source").get("path"))
        for p_index, package_entry in enumerate(json_array(result.get("packages"), f"{result_path}.packages")):
            package_path = f"{result_path}.packages[{p_index}]"
            vulnerabilities.extend(_osv_package_vulnerabilities(json_object(package_entry, package_path), package_path))
    return VulnerabilityReport(
        vulnerabilities=dedupe_vulnerabilities(vulnerabilities),
        tool="osv-scanner",
        tool_version="",  # osv-scanner's JSON does not record its own version
        target=", ".join(unique_texts(sources)),
        scanned_at=None,
    )
