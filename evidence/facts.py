"""From a parser's result to the evidence's fact rows: one adapter per evidence type, and the summary shown for it.

The parsers (evidence/parsers/) read bytes into plain values and know no database; these adapters turn those values
into unsaved rows of the fact models (test results, coverage files, findings, components, vulnerabilities, VEX
statements, provenance), which the pipeline (evidence/processing.py) writes in one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evidence import verification
from evidence.models import (
    CoverageFile,
    Evidence,
    Provenance,
    SbomComponent,
    StaticFinding,
    TestResult,
    VexStatement,
    Vulnerability,
)
from evidence.parsers import base, coverage, cyclonedx_vulns, grype, osv_scanner, sbom, trivy
from evidence.parsers.base import EvidenceParseError, clean_text
from evidence.parsers.coverage import parse_lcov
from evidence.parsers.junit import REQUIREMENT_IN_NAME, parse_junit
from evidence.parsers.openvex import parse_openvex
from evidence.parsers.results import VulnerabilityReport
from evidence.parsers.sarif import parse_sarif
from evidence.parsers.sbom import parse_spdx
from evidence.parsers.severity import SEVERITIES

# A count kept in a PostgreSQL integer column; hit counts of 2^64-1 exist in the wild (lcov).
MAX_COUNT = 2_147_483_647


def _clamp(value: int) -> int:
    return max(0, min(int(value), MAX_COUNT))


SLSA_PREDICATES = ("https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1")
TEST_RESULT_PREDICATE = "https://in-toto.io/attestation/test-result/v0.1"
CYCLONEDX_PREDICATES = ("https://cyclonedx.org/bom", "https://cyclonedx.org/bom/v1.4", "https://cyclonedx.org/bom/v1.5")
SPDX_PREDICATES = ("https://spdx.dev/Document", "https://spdx.dev/Document/v2.3")


@dataclass
class Facts:
    """Unsaved fact rows of one evidence and its summary."""

    rows: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    applies_vex: bool = False


def facts_of(*, evidence: Evidence, raw: bytes, statement: Any = None) -> Facts:
    """The fact rows and summary of one evidence; `statement` is what verification read (DSSE, cosign).

    What a parser had to interpret (a tool's quirk it tolerated) is kept in the summary's `warnings`.
    """
    with base.collecting_warnings() as warnings:
        facts = _facts_of(evidence=evidence, raw=raw, statement=statement)
    if warnings:
        facts.summary["warnings"] = warnings
    facts.summary = _storable_value(facts.summary)  # small; jsonb refuses U+0000 and lone surrogates
    return facts


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable_value(value: Any) -> Any:
    """The value with text PostgreSQL can store: U+0000 removed, lone surrogates replaced by U+FFFD."""
    if isinstance(value, str):
        value = value.replace("\x00", "")
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {_storable_value(key): _storable_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_value(item) for item in value]
    return value


def storable(facts: Facts) -> Facts:
    """The facts with every text field cleaned for PostgreSQL (see _storable_value); rows are changed in place."""
    for row in facts.rows:
        for field_ in row._meta.concrete_fields:
            value = getattr(row, field_.attname)
            if isinstance(value, str | list | dict):
                setattr(row, field_.attname, _storable_value(value))
    facts.summary = _storable_value(facts.summary)
    facts.summary.setdefault("warnings", []).append(
        "text PostgreSQL cannot store (U+0000 or a lone UTF-16 surrogate) was removed or replaced by U+FFFD"
    )
    return facts


def _facts_of(*, evidence: Evidence, raw: bytes, statement: Any) -> Facts:
    if evidence.evidence_type == Evidence.Type.DSSE:
        return _parse_statement(evidence, statement)
    if evidence.evidence_type == Evidence.Type.COSIGN:
        claim = statement
        return Facts(
            summary={"docker_manifest_digest": claim.docker_manifest_digest, "docker_reference": claim.docker_reference}
        )
    parser = PARSERS[evidence.evidence_type]
    return parser(evidence, raw)


def _junit(evidence: Evidence, raw: bytes) -> Facts:
    report = parse_junit(raw)
    artifact = evidence.artifact
    rows = [
        TestResult(
            evidence=evidence,
            artifact=artifact,
            suite=clean_text(case.suite, limit=500),
            classname=clean_text(case.classname, limit=500),
            name=clean_text(case.name, limit=1000) or "(unnamed)",
            status=case.status,
            duration_s=case.duration_s,
            message=case.message,
            requirement_ids=list(case.requirement_ids),
            executed_at=report.started_at,
        )
        for case in report.cases
    ]
    summary = {
        "tool": report.tool,
        "suites": report.suites,
        "total": report.total,
        "passed": report.passed,
        "failed": report.failed,
        "skipped": report.skipped,
    }
    return Facts(rows=rows, summary=summary)


def _coverage_facts(evidence: Evidence, report) -> Facts:
    rows = [
        CoverageFile(
            evidence=evidence,
            artifact=evidence.artifact,
            path=clean_text(f.path, limit=1000),
            lines_valid=_clamp(f.lines_valid),
            lines_covered=_clamp(f.lines_covered),
            branches_valid=None if f.branches_valid is None else _clamp(f.branches_valid),
            branches_covered=None if f.branches_covered is None else _clamp(f.branches_covered),
        )
        for f in report.files
    ]
    summary = {
        "tool": report.tool,
        "line_rate": report.line_rate,
        "branch_rate": report.branch_rate,
        "lines_valid": report.lines_valid,
        "lines_covered": report.lines_covered,
        "branches_valid": report.branches_valid,
        "branches_covered": report.branches_covered,
        "files": len(report.files),
    }
    return Facts(rows=rows, summary=summary)


def _cobertura(evidence: Evidence, raw: bytes) -> Facts:
    # JaCoCo XML is accepted under the same type: CI users call every XML coverage report "cobertura".
    head = raw[:4096]
    if b"<report" in head and b"<coverage" not in head:
        return _coverage_facts(evidence, coverage.parse_jacoco(raw))
    return _coverage_facts(evidence, coverage.parse_cobertura(raw))


def _jacoco(evidence: Evidence, raw: bytes) -> Facts:
    return _coverage_facts(evidence, coverage.parse_jacoco(raw))


def _lcov(evidence: Evidence, raw: bytes) -> Facts:
    return _coverage_facts(evidence, parse_lcov(raw))


def _sarif(evidence: Evidence, raw: bytes) -> Facts:
    report = parse_sarif(raw)
    rows = [
        StaticFinding(
            evidence=evidence,
            artifact=evidence.artifact,
            tool=clean_text(f.tool, limit=100),
            rule_id=clean_text(f.rule_id, limit=300),
            level=f.level,
            severity=f.severity,
            message=f.message,
            path=clean_text(f.path, limit=1000),
            start_line=f.start_line if f.start_line and f.start_line > 0 else None,
            fingerprint=clean_text(f.fingerprint, limit=200),
            suppressed=f.suppressed,
        )
        for f in report.findings
    ]
    by_level: dict[str, int] = {}
    for f in report.findings:
        if not f.suppressed:
            by_level[f.level] = by_level.get(f.level, 0) + 1
    summary = {
        "tools": report.tools,
        "findings": len(rows),
        "suppressed": sum(1 for f in report.findings if f.suppressed),
        "by_level": by_level,
    }
    return Facts(rows=rows, summary=summary)


def _sbom_facts(evidence: Evidence, document) -> Facts:
    rows = [
        SbomComponent(
            evidence=evidence,
            artifact=evidence.artifact,
            name=clean_text(c.name, limit=500) or "(unnamed)",
            version=clean_text(c.version, limit=200),
            purl=clean_text(c.purl, limit=1000),
            license_expression=clean_text(c.license_expression, limit=1000),
            license_declared=clean_text(c.license_declared, limit=2000),
            hashes=dict(c.hashes),
            bom_ref=clean_text(c.bom_ref, limit=1000),
        )
        for c in document.components
    ]
    licences: dict[str, int] = {}
    for c in document.components:
        key = c.license_expression or "(none declared)"
        licences[key] = licences.get(key, 0) + 1
    summary = {
        "format": document.format,
        "spec_version": document.spec_version,
        "components": len(rows),
        "subject": document.subject_name,
        "serial": document.serial,
        "tools": list(document.tools),
        "licences": dict(sorted(licences.items(), key=lambda item: -item[1])[:50]),
    }
    return Facts(rows=rows, summary=summary)


def _cyclonedx(evidence: Evidence, raw: bytes) -> Facts:
    sent = raw
    raw = sbom.cyclonedx_json(raw)  # XML is read and handed on as JSON
    document = base.parse_json(raw)
    facts = _sbom_facts(evidence, sbom.parse_cyclonedx(raw))
    facts.summary["serialisation"] = "json" if raw is sent else "xml"
    items = document.get("vulnerabilities") if isinstance(document, dict) else None
    if items:
        report = cyclonedx_vulns.parse_cyclonedx_vulnerabilities(document)
        facts.rows += _vulnerability_rows(evidence, report.vulnerabilities)
        facts.summary["vulnerabilities"] = _severity_counts(report.vulnerabilities)
        # CycloneDX VEX lives in the same document: vulnerabilities[].analysis.
        if any(isinstance(i, dict) and i.get("analysis") for i in items):
            vex = cyclonedx_vulns.parse_cyclonedx_vex(document)
            facts.rows += _vex_rows(evidence, vex.statements)
            facts.summary["vex_statements"] = len(vex.statements)
        facts.applies_vex = True
    return facts


def _spdx(evidence: Evidence, raw: bytes) -> Facts:
    document = sbom.spdx_json(raw)  # tag-value is read and handed on as JSON
    facts = _sbom_facts(evidence, parse_spdx(document))
    facts.summary["serialisation"] = "tag-value" if document is not raw else "json"
    return facts


def _scan(parser: Callable[[bytes], VulnerabilityReport]) -> Callable[[Evidence, bytes], Facts]:
    def parse_scan(evidence: Evidence, raw: bytes) -> Facts:
        report = parser(raw)
        summary = {
            "tool": report.tool,
            "tool_version": report.tool_version,
            "target": report.target,
            "vulnerabilities": _severity_counts(report.vulnerabilities),
            "total": len(report.vulnerabilities),
        }
        return Facts(rows=_vulnerability_rows(evidence, report.vulnerabilities), summary=summary, applies_vex=True)

    return parse_scan


def _openvex(evidence: Evidence, raw: bytes) -> Facts:
    document = parse_openvex(raw)
    summary = {
        "format": document.format,
        "document_id": document.document_id,
        "author": document.author,
        "statements": len(document.statements),
    }
    return Facts(rows=_vex_rows(evidence, document.statements), summary=summary, applies_vex=True)


def _generic(evidence: Evidence, raw: bytes) -> Facts:
    return Facts(summary={"kept": True, "parsed": False})


def _vulnerability_rows(evidence: Evidence, found) -> list[Vulnerability]:
    return [
        Vulnerability(
            evidence=evidence,
            artifact=evidence.artifact,
            vuln_id=clean_text(v.vuln_id, limit=200),
            aliases=list(v.aliases),
            package_name=clean_text(v.package_name, limit=500),
            package_version=clean_text(v.package_version, limit=200),
            purl=clean_text(v.purl, limit=1000),
            severity=v.severity,
            cvss_score=v.cvss_score,
            fix_state=clean_text(v.fix_state, limit=20),
            fixed_versions=list(v.fixed_versions),
            title=v.title,
        )
        for v in found
    ]


def _vex_rows(evidence: Evidence, statements) -> list[VexStatement]:
    return [
        VexStatement(
            evidence=evidence,
            artifact=evidence.artifact,
            vuln_id=clean_text(s.vuln_id, limit=200),
            aliases=list(s.aliases),
            products=list(s.products),
            status=clean_text(s.status, limit=30),
            justification=clean_text(s.justification, limit=200),
            impact_statement=s.impact_statement,
        )
        for s in statements
    ]


def _severity_counts(found) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in found:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    return counts


def _parse_statement(evidence: Evidence, statement: Any) -> Facts:
    """A verified in-toto statement: SLSA provenance, a test result, or an SBOM carried as its predicate."""
    predicate_type = statement.predicate_type
    summary: dict[str, Any] = {"predicate_type": predicate_type, "subjects": [n for n, _ in statement.subjects][:20]}
    if predicate_type in SLSA_PREDICATES:
        provenance = verification.provenance_from_statement(statement)
        row = Provenance(
            evidence=evidence,
            artifact=evidence.artifact,
            builder_id=clean_text(provenance.builder_id, limit=500),
            build_type=clean_text(provenance.build_type, limit=500),
            source_repository=clean_text(provenance.source_repository, limit=500),
            source_commit=clean_text(provenance.source_commit, limit=64),
            invocation_id=clean_text(provenance.invocation_id, limit=500),
            predicate_type=clean_text(provenance.predicate_type, limit=200),
        )
        summary.update(
            builder_id=provenance.builder_id,
            source_repository=provenance.source_repository,
            source_commit=provenance.source_commit,
        )
        return Facts(rows=[row], summary=summary)
    if predicate_type == TEST_RESULT_PREDICATE:
        return _test_result_predicate(evidence, statement.predicate, summary)
    if predicate_type in CYCLONEDX_PREDICATES or predicate_type.startswith("https://cyclonedx.org/bom"):
        facts = _cyclonedx(evidence, json.dumps(statement.predicate).encode())
        facts.summary.update(summary)
        return facts
    if predicate_type in SPDX_PREDICATES or predicate_type.startswith("https://spdx.dev/Document"):
        facts = _spdx(evidence, json.dumps(statement.predicate).encode())
        facts.summary.update(summary)
        return facts
    summary["note"] = "kept and verified; this predicate type is not turned into facts"
    return Facts(summary=summary)


def _test_result_predicate(evidence: Evidence, predicate: dict, summary: dict) -> Facts:
    """in-toto test-result v0.1: {result, passedTests, failedTests, warnedTests, configuration}."""
    rows = []
    for key, status in (("passedTests", "passed"), ("warnedTests", "passed"), ("failedTests", "failed")):
        names = predicate.get(key) or []
        if not isinstance(names, list):
            raise EvidenceParseError(
                f"expected an array of test names, found {type(names).__name__}", location=f"predicate.{key}"
            )
        for name in names:
            name = str(name).replace("\x00", "")
            rows.append(
                TestResult(
                    evidence=evidence,
                    artifact=evidence.artifact,
                    suite="in-toto test-result",
                    name=clean_text(name, limit=1000) or "(unnamed)",
                    status=status,
                    requirement_ids=sorted(set(REQUIREMENT_IN_NAME.findall(name))),
                )
            )
    result = str(predicate.get("result", "")).upper()
    summary.update(
        result=result,
        total=len(rows),
        passed=sum(1 for r in rows if r.status == "passed"),
        failed=sum(1 for r in rows if r.status == "failed"),
        skipped=0,
    )
    return Facts(rows=rows, summary=summary)


PARSERS: dict[str, Callable[[Evidence, bytes], Facts]] = {
    Evidence.Type.JUNIT: _junit,
    Evidence.Type.COBERTURA: _cobertura,
    Evidence.Type.LCOV: _lcov,
    Evidence.Type.JACOCO: _jacoco,
    Evidence.Type.SARIF: _sarif,
    Evidence.Type.CYCLONEDX: _cyclonedx,
    Evidence.Type.SPDX: _spdx,
    Evidence.Type.GRYPE: _scan(grype.parse_grype),
    Evidence.Type.TRIVY: _scan(trivy.parse_trivy),
    Evidence.Type.OSV: _scan(osv_scanner.parse_osv_scanner),
    Evidence.Type.OPENVEX: _openvex,
    Evidence.Type.GENERIC: _generic,
}
