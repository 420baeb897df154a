"""Each gate kind on the release's facts: pass, fail and missing, with a sentence a person can act on."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from approvals import gates, releases, selectors
from changecontrol.policy import GateRule
from evidence.models import VexStatement, Vulnerability
from tests.builders import add_evidence, add_provenance, add_sbom, add_scan, add_tests, make_artifact, make_build


def rule(kind, blocking=True, description="", **params):
    return GateRule(
        id=f"{kind}-gate", kind=kind, blocking=blocking, params=MappingProxyType(params), description=description
    )


def facts(**artifact):
    base = {
        "digest": "sha256:" + "a" * 64,
        "name": "rsd-api",
        "evidence": [],
        "evidence_names": [],
        "signed_types": [],
        "tests": None,
        "coverage": None,
        "static": None,
        "vulns": None,
        "sbom": False,
        "sbom_components": 0,
        "licenses": [],
        "provenance": [],
    }
    base.update(artifact)
    return {
        "product": {"key": "rsd", "repository_url": "https://github.com/acme/rsd"},
        "release": {"version": "1", "digests": [base["digest"]]},
        "environment": "production",
        "artifacts": [base],
        "change_requests": [],
        "trace": None,
    }


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        ("MIT OR GPL-3.0-only", True),
        ("GPL-3.0-only", False),
        ("GPL-3.0", False),  # normalised to GPL-3.0-only
        ("MIT AND GPL-3.0-only", False),
        ("(MIT AND AGPL-3.0-only) OR Apache-2.0", True),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", True),
    ],
)
def test_a_licence_expression_passes_when_an_allowed_choice_exists(expression, ok):
    assert gates.license_acceptable(expression, deny=("AGPL-3.0-only", "GPL-3.0-only"), allow=None) is ok


def test_licences_gate_names_the_component_without_an_allowed_choice():
    result = gates.gate_licenses(
        rule("licenses", deny=("GPL-3.0-only",)),
        facts(
            sbom=True,
            licenses=[
                {"expression": "GPL-3.0-only", "count": 1, "components": ["readline"]},
                {"expression": "MIT OR GPL-3.0-only", "count": 2, "components": ["a", "b"]},
            ],
        ),
    )
    assert result["status"] == "fail"
    assert "readline under GPL-3.0-only" in result["detail"]


def test_licences_allow_list_refuses_unknown_licences():
    result = gates.gate_licenses(
        rule("licenses", deny=(), allow=("MIT",)),
        facts(sbom=True, licenses=[{"expression": "", "count": 1, "components": ["x"]}]),
    )
    assert result["status"] == "fail" and "no licence declared" in result["detail"]


def test_tests_gate_counts_failures_and_errors():
    gate = rule("tests", max_failed=0, min_total=1)
    assert gates.gate_tests(gate, facts())["status"] == "missing"
    assert (
        gates.gate_tests(gate, facts(tests={"total": 3, "passed": 2, "failed": 0, "error": 1, "skipped": 0}))["status"]
        == "fail"
    )
    assert gates.gate_tests(gate, facts(tests={"total": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0}))[
        "detail"
    ].startswith("only 0 test")
    assert (
        gates.gate_tests(gate, facts(tests={"total": 3, "passed": 3, "failed": 0, "error": 0, "skipped": 0}))["status"]
        == "pass"
    )


def test_coverage_gate_reports_the_rate():
    gate = rule("coverage", min_line_rate=0.8, min_branch_rate=None)
    result = gates.gate_coverage(
        gate, facts(coverage={"lines_valid": 100, "lines_covered": 71, "branches_valid": 0, "branches_covered": 0})
    )
    assert result["status"] == "fail" and "71.0%" in result["detail"] and "80%" in result["detail"]


def test_static_analysis_gate_limits_severities():
    gate = rule("static_analysis", max=MappingProxyType({"high": 0}))
    assert gates.gate_static_analysis(gate, facts(static={"high": 2}))["status"] == "fail"
    assert gates.gate_static_analysis(gate, facts(static={"low": 9}))["status"] == "pass"
    assert gates.gate_static_analysis(gate, facts())["status"] == "missing"


def test_signature_gate_needs_signed_evidence_of_an_accepted_type():
    gate = rule("signature", evidence_types=("cosign",))
    assert gates.gate_signature(gate, facts(signed_types=["dsse"]))["status"] == "missing"
    assert gates.gate_signature(gate, facts(signed_types=["cosign"]))["status"] == "pass"


def test_provenance_gate_checks_builder_and_source_repository():
    gate = rule("provenance", builder_ids=("https://ci.example/ok",), require_source_repository=True)
    good = {
        "builder_id": "https://ci.example/ok",
        "source_repository": "git+https://github.com/acme/rsd.git@refs/heads/main",
    }
    assert gates.gate_provenance(gate, facts(provenance=[good]))["status"] == "pass"
    wrong_builder = gates.gate_provenance(gate, facts(provenance=[{**good, "builder_id": "https://evil.example"}]))
    assert wrong_builder["status"] == "fail" and "allow-list" in wrong_builder["detail"]
    fork = gates.gate_provenance(
        gate, facts(provenance=[{**good, "source_repository": "https://github.com/mallory/rsd"}])
    )
    assert fork["status"] == "fail" and "mallory" in fork["detail"]
    assert gates.gate_provenance(gate, facts())["status"] == "missing"


def test_traceability_gate_is_missing_without_the_trace_matrix_and_reads_it_when_present():
    gate = rule("traceability", require=("requirements_tested",))
    assert gates.gate_traceability(gate, facts())["status"] == "missing"
    summary = selectors.summarise_trace(
        {
            "coverage": 50,
            "rows": [
                {"id": "REQ-1", "status": "missing_test", "gaps": [{"gap": "missing_test", "severity": "error"}]},
                {"id": "REQ-2", "status": "verified", "gaps": []},
                {"id": "REQ-3", "status": "not_executed", "gaps": [{"gap": "not_executed", "severity": "warning"}]},
            ],
        }
    )
    result = gates.gate_traceability(gate, {**facts(), "trace": summary})
    assert result["status"] == "fail" and "REQ-1" in result["detail"]


def test_change_requests_gate_names_unapproved_ones():
    gate = rule("change_requests")
    result = gates.gate_change_requests(
        gate, {**facts(), "change_requests": [{"id": "CR-4", "tier": "medium", "state": "submitted"}]}
    )
    assert result["status"] == "fail" and "CR-4 is submitted" in result["detail"]
    assert gates.gate_change_requests(gate, facts())["status"] == "missing"


def test_evidence_gate_looks_for_names():
    gate = rule("evidence", names=("pen-test", "dpia"))
    result = gates.gate_evidence(gate, facts(evidence_names=["pen-test"]))
    assert result["status"] == "missing" and "dpia" in result["detail"]


def test_cel_gate_evaluates_on_the_release_facts():
    gate = rule("cel", blocking=False, description="few skipped", expression="tests.skipped * 10 <= tests.total")
    assert (
        gates.gate_cel(gate, facts(tests={"total": 10, "passed": 8, "failed": 0, "error": 0, "skipped": 2}))["status"]
        == "fail"
    )
    assert (
        gates.gate_cel(gate, facts(tests={"total": 10, "passed": 10, "failed": 0, "error": 0, "skipped": 0}))["status"]
        == "pass"
    )
    broken = rule("cel", description="bad", expression="nonexistent.field > 1")
    assert gates.gate_cel(broken, facts())["status"] == "fail"


@pytest.mark.django_db
def test_vex_suppressed_vulnerabilities_do_not_count(product, cast, ci_account, policy, release):
    artifact = release.artifacts.get()
    scan = add_scan(artifact, severities=("critical",))
    vex_evidence = add_evidence(artifact, "openvex", verdict="signed")
    statement = VexStatement.objects.create(
        evidence=vex_evidence, artifact=artifact, vuln_id="CVE-2025-1000", status="not_affected"
    )
    gate = rule("vulnerabilities", max=MappingProxyType({"critical": 0}), ignore_unfixed=False)
    facts_before = selectors.release_facts(release=release, environment_key="production", after=None)
    assert gates.gate_vulnerabilities(gate, facts_before)["status"] == "fail"
    assert "CVE-2025-1000" in gates.gate_vulnerabilities(gate, facts_before)["detail"]
    Vulnerability.objects.filter(evidence=scan).update(suppressed_by=statement)
    facts_after = selectors.release_facts(release=release, environment_key="production", after=None)
    assert gates.gate_vulnerabilities(gate, facts_after)["status"] == "pass"


@pytest.mark.django_db
def test_evidence_with_an_invalid_signature_never_counts(product, cast, ci_account, policy, change_request):
    artifact = make_artifact(make_build(product, registered_by=ci_account))
    add_tests(artifact, passed=1)
    add_sbom(artifact)
    add_provenance(artifact)
    forged = add_evidence(artifact, "cosign", verdict="invalid_signature")
    release = releases.release_create(
        product=product, actor=cast["rory"], version="8.0", artifact_digests=[artifact.digest]
    )
    data = selectors.release_facts(release=release, environment_key="production", after=None)
    assert forged.pk not in [e["id"] for e in data["artifacts"][0]["evidence"]]
    assert gates.gate_signature(rule("signature", evidence_types=("cosign",)), data)["status"] == "missing"


def test_traceability_warnings_alone_do_not_fail_the_gate():
    gate = rule("traceability", require=("requirements_tested", "risk_controls_verified"))
    summary = selectors.summarise_trace(
        {
            "coverage": 100.0,
            "rows": [{"id": "REQ-3", "gaps": [{"gap": "not_executed", "severity": "warning"}]}],
            "risk_controls": [{"id": "RC-1", "verified": True, "severity": ""}],
        }
    )
    result = gates.gate_traceability(gate, {**facts(), "trace": summary})
    assert result["status"] == "pass"


@pytest.mark.django_db
def test_the_trace_matrix_of_the_release_feeds_the_gate(release):
    data = selectors.release_facts(release=release, environment_key="production", after=None)
    assert data["trace"]["available"] is True, data["trace"]
