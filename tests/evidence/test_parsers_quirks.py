"""Real tool quirks are read as the tool documents them, and what was interpreted is kept as a warning (issue 16).

Wrong meaning is never accepted: a Clover file is not an empty Cobertura report, a disabled test did not pass,
a VEX's not_affected vulnerability is not an open finding.
"""

from __future__ import annotations

import json

import pytest

from evidence.models import Vulnerability
from evidence.parsers.base import EvidenceParseError, collecting_warnings
from evidence.parsers.coverage import parse_clover, parse_cobertura
from evidence.parsers.junit import parse_junit
from evidence.parsers.osv_scanner import parse_osv_scanner
from evidence.parsers.sarif import parse_sarif
from tests.evidence.conftest import DIGEST, data_bytes, evidence_of
from tests.samples import sample_bytes

# ---------------------------------------------------------------- JUnit outcome attributes


def test_tests_marked_status_disabled_are_skipped_not_passed():
    with collecting_warnings() as warnings:
        report = parse_junit(data_bytes("junit-status-disabled.xml"))

    assert (report.total, report.passed, report.failed, report.skipped) == (22, 6, 6, 10)
    assert {c.name for c in report.cases if c.status == "skipped"} >= {"disabled_test", "disabled_param_test[0]"}
    assert warnings == [
        "a test case with status='disabled' and no <skipped> element was counted as skipped "
        "(at line 4 and 9 more places)"
    ]


@pytest.mark.parametrize(
    ("attributes", "status"),
    [
        ('status="notrun" result="suppressed"', "skipped"),  # GoogleTest: a DISABLED_ test
        ('status="run" result="skipped"', "skipped"),  # GoogleTest: GTEST_SKIP() without a <skipped> child
        ('skipped="true"', "skipped"),
        ('disabled="true"', "skipped"),
        ('status="failed"', "failed"),
        ('status="run" result="completed"', "passed"),
        ('status="passed"', "passed"),
    ],
)
def test_outcome_attributes_count_as_the_tool_documents(attributes, status):
    report = parse_junit(f'<testsuite name="s"><testcase classname="c" name="t" {attributes}/></testsuite>'.encode())
    assert report.cases[0].status == status


def test_a_failure_child_outranks_a_disabled_status():
    report = parse_junit(
        b'<testsuite name="s"><testcase name="t" status="disabled"><failure>boom</failure></testcase></testsuite>'
    )
    assert report.cases[0].status == "failed"


# ---------------------------------------------------------------- coverage: NaN rates, Clover


def test_nan_rates_are_recomputed_from_the_counts():
    # coverage.py's report with the rates a tool writes when it measured no branches (0/0).
    real = sample_bytes("coverage/cobertura-coveragepy-branch.xml").decode()
    start = real.index("<coverage ")
    head = real[start : real.index(">", start)]
    nan = head
    for attribute in ("branch-rate", "line-rate"):
        at = nan.index(f'{attribute}="')
        nan = nan[:at] + f'{attribute}="NaN"' + nan[nan.index('"', at + len(attribute) + 2) + 1 :]
    with collecting_warnings() as warnings:
        report = parse_cobertura(real.replace(head, nan).encode())

    expected = parse_cobertura(real.encode())
    assert report.line_rate == pytest.approx(expected.lines_covered / expected.lines_valid)
    assert report.branch_rate == pytest.approx(expected.branches_covered / expected.branches_valid)
    assert len(warnings) == 2 and all("was recomputed from the counts" in w for w in warnings)


def test_an_out_of_range_rate_is_still_refused():
    with pytest.raises(EvidenceParseError, match="line-rate='1.5' is not a number between 0 and 1"):
        parse_cobertura(b"<coverage line-rate='1.5'><packages/></coverage>")


@pytest.mark.parametrize(
    ("name", "lines", "branches", "files"),
    [
        ("clover-istanbul-unleash.xml", (1446, 634), (401, 103), 2),
        ("clover-phpunit-phpcsutils.xml", (2420, 2376), (0, 0), 2),
    ],
)
def test_a_clover_report_sent_as_cobertura_is_read_as_clover(name, lines, branches, files):
    with collecting_warnings() as warnings:
        report = parse_cobertura(data_bytes(name))

    assert report.tool == "clover"
    assert (report.lines_valid, report.lines_covered) == lines
    assert (report.branches_valid, report.branches_covered) == branches
    assert len(report.files) == files and all(f.lines_valid > 0 for f in report.files)
    assert report.generated_at is not None
    assert warnings == ["this is a Clover XML report, not Cobertura; it was read as Clover (statements as lines)"]
    assert parse_clover(data_bytes(name)) == report


def test_a_coverage_root_without_packages_is_not_an_empty_cobertura_report():
    with pytest.raises(EvidenceParseError, match="has no <packages>, so this is not a Cobertura report"):
        parse_cobertura(b'<?xml version="1.0"?>\n<coverage line-rate="0" lines-valid="0" lines-covered="0"/>')


# ---------------------------------------------------------------- SARIF kinds and null messages


def _sarif(results: list, rules: list | None = None) -> bytes:
    driver = {"name": "checker", "rules": rules or []}
    return json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results}]}).encode()


def test_pass_results_with_a_null_message_are_not_findings_and_do_not_throw_the_log_away():
    rules = [{"id": "R1", "properties": {"security-severity": "9.1"}}]
    log = _sarif(
        [
            {"ruleId": "R1", "kind": "pass", "message": None},
            {"ruleId": "R1", "kind": "notApplicable", "message": None},
            {"ruleId": "R1", "level": "error", "message": {"text": "real finding"}},
        ],
        rules,
    )
    with collecting_warnings() as warnings:
        report = parse_sarif(log)

    assert [(f.message, f.severity) for f in report.findings] == [("real finding", "critical")]
    assert len(warnings) == 2 and "are not findings" in warnings[0]


def test_a_failing_result_with_a_null_message_takes_its_rules_description():
    rules = [{"id": "R1", "shortDescription": {"text": "Use of eval"}}]
    with collecting_warnings() as warnings:
        report = parse_sarif(_sarif([{"ruleId": "R1", "message": None}], rules))

    assert report.findings[0].message == "Use of eval"
    assert warnings == [
        "a result of kind 'fail' has no message; its rule's description was used (at runs[0].results[0].message)"
    ]


# ---------------------------------------------------------------- osv-scanner git packages


def _osv_with_commit_package() -> bytes:
    document = json.loads(sample_bytes("vulns/osv-scanner-go-cargo-lockfiles.json"))
    package = document["results"][0]["packages"][0]["package"]
    # osv-scanner reports a git dependency (a submodule) by commit, with empty name and ecosystem.
    package.update(name="", version="", ecosystem="", commit="5f2c5a9a3d1bd4b7ad4ef8fde4b2e8cb9b36e4e1")
    return json.dumps(document).encode()


def test_an_osv_package_identified_by_commit_keeps_the_whole_report():
    full = parse_osv_scanner(sample_bytes("vulns/osv-scanner-go-cargo-lockfiles.json"))
    with collecting_warnings() as warnings:
        report = parse_osv_scanner(_osv_with_commit_package())

    assert len(report.vulnerabilities) == len(full.vulnerabilities)
    commit = "5f2c5a9a3d1bd4b7ad4ef8fde4b2e8cb9b36e4e1"
    assert any(v.package_name == commit and v.package_version == commit for v in report.vulnerabilities)
    assert warnings == ["a package with an empty name was identified by its commit (at results[0].packages[0].package)"]


def test_an_osv_package_with_nothing_to_identify_it_is_refused_by_path():
    document = json.loads(_osv_with_commit_package())
    document["results"][0]["packages"][0]["package"]["commit"] = ""
    with pytest.raises(EvidenceParseError, match=r"results\[0\]\.packages\[0\]\.package"):
        parse_osv_scanner(json.dumps(document).encode())


# ---------------------------------------------------------------- through the pipeline


@pytest.mark.django_db
def test_warnings_are_kept_with_the_evidence_and_shown_on_its_page(upload, artifact, api, auditor):
    evidence = evidence_of(upload(DIGEST, "junit", data_bytes("junit-status-disabled.xml")))

    assert evidence.state == "parsed"
    assert (evidence.summary["passed"], evidence.summary["skipped"]) == (6, 10)
    assert "status='disabled'" in evidence.summary["warnings"][0]
    page = api(auditor).get(f"/evidence/{evidence.human_id}").content.decode()
    assert "How the file was read" in page and "counted as skipped" in page


@pytest.mark.django_db
def test_an_unsigned_cyclonedx_vex_adds_no_open_vulnerabilities(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "cyclonedx", sample_bytes("vulns/cyclonedx-1.4-vex-cisa-case2.json")))

    assert (evidence.state, evidence.verdict) == ("parsed", "unsigned")
    assert not Vulnerability.objects.filter(evidence=evidence).exists()
    assert evidence.summary["vex_statements"] == 19
    assert sum(evidence.summary["vulnerabilities"].values()) == 0
