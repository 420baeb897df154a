"""Vulnerability scan parsers: Grype, Trivy, osv-scanner and CycloneDX vulnerabilities, on real samples."""

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from evidence.parsers.base import EvidenceParseError, collecting_warnings
from evidence.parsers.cyclonedx_vulns import parse_cyclonedx_vulnerabilities
from evidence.parsers.grype import parse_grype
from evidence.parsers.osv_scanner import parse_osv_scanner
from evidence.parsers.results import Vulnerability
from evidence.parsers.severity import score_from_cvss_vector, severity_from_score, severity_from_word
from evidence.parsers.trivy import parse_trivy
from tests.samples import sample_bytes, sample_names

PARSER_FOR_SAMPLE = {
    "vulns/grype-0.75-nul-chars-in-version.json": parse_grype,
    "vulns/grype-0.94-busybox-epss.json": parse_grype,
    "vulns/grype-presenter-golden-image.json": parse_grype,
    "vulns/trivy-legacy-array-null-vulnerabilities.json": parse_trivy,
    "vulns/trivy-schema2-alpine-310-image.json": parse_trivy,
    "vulns/trivy-schema2-fs-misconfig-secrets.json": parse_trivy,
    "vulns/osv-scanner-go-cargo-lockfiles.json": parse_osv_scanner,
    "vulns/osv-scanner-yarn-malware.json": parse_osv_scanner,
    "vulns/cyclonedx-1.4-vex-bomlink.json": parse_cyclonedx_vulnerabilities,
    "sbom/cyclonedx-1.5-trivy-pom-with-vulnerabilities.json": parse_cyclonedx_vulnerabilities,
}


def by_id(report, vuln_id, package_name=None) -> Vulnerability:
    matches = [
        v
        for v in report.vulnerabilities
        if v.vuln_id == vuln_id and (package_name is None or v.package_name == package_name)
    ]
    assert len(matches) == 1, f"expected one {vuln_id} in {[v.vuln_id for v in report.vulnerabilities]}"
    return matches[0]


def grype_match(**overrides) -> dict:
    match = {
        "vulnerability": {"id": "CVE-2024-0001", "severity": "High", "fix": {"versions": [], "state": ""}},
        "relatedVulnerabilities": [],
        "artifact": {"name": "openssl", "version": "3.0.1", "purl": "pkg:deb/debian/openssl@3.0.1"},
    }
    match.update(overrides)
    return match


# --- every scanner sample -----------------------------------------------------------------------------------


def test_every_scanner_sample_in_the_vulns_folder_has_a_parser():
    scanner_samples = {name for name in sample_names("vulns") if "vex" not in name or "bomlink" in name}
    assert scanner_samples <= set(PARSER_FOR_SAMPLE)


@pytest.mark.parametrize("name", sorted(PARSER_FOR_SAMPLE))
def test_no_parsed_string_carries_a_nul_character(name):
    report = PARSER_FOR_SAMPLE[name](sample_bytes(name))
    for vulnerability in report.vulnerabilities:
        for value in dataclasses.astuple(vulnerability):
            values = value if isinstance(value, tuple) else (value,)
            assert all("\x00" not in v for v in values if isinstance(v, str)), vulnerability
        assert vulnerability.severity in ("critical", "high", "medium", "low", "unknown")
        assert vulnerability.fix_state in ("fixed", "not-fixed", "wont-fix", "unknown")


# --- Grype --------------------------------------------------------------------------------------------------


def test_grype_busybox_scan_reads_every_match_with_its_severity_and_newest_cvss_score():
    report = parse_grype(sample_bytes("vulns/grype-0.94-busybox-epss.json"))

    assert (report.tool, report.tool_version, report.target) == ("grype", "0.94.0", "busybox:1.32.1")
    assert report.scanned_at == datetime(2025, 6, 19, 11, 43, 35, 523947, tzinfo=UTC)
    assert len(report.vulnerabilities) == 15
    severities = [v.severity for v in report.vulnerabilities]
    assert {s: severities.count(s) for s in set(severities)} == {"critical": 1, "high": 10, "medium": 2, "low": 2}
    critical = by_id(report, "CVE-2022-48174")
    assert (critical.severity, critical.cvss_score, critical.purl) == ("critical", 9.8, "pkg:generic/busybox@1.32.1")
    # v3.1 8.8 is preferred to the v2 6.8 listed beside it.
    assert by_id(report, "CVE-2022-28391").cvss_score == 8.8
    fixed = by_id(report, "CVE-2021-42376")
    assert (fixed.fix_state, fixed.fixed_versions) == ("fixed", ("1.34.0",))
    assert by_id(report, "CVE-2022-28391").fix_state == "unknown"  # Grype writes state ""
    assert all(v.source_tool == "grype" and v.package_name == "busybox" for v in report.vulnerabilities)


def test_grype_nul_characters_in_version_and_purl_are_stripped():
    report = parse_grype(sample_bytes("vulns/grype-0.75-nul-chars-in-version.json"))

    (java,) = report.vulnerabilities
    assert java.vuln_id == "CVE-2009-3882"
    assert java.package_version == "17.0.10+7-J-ms8m"
    assert java.purl == "pkg:generic/java@17.0.10%2B7-J-ms8m"
    assert (java.severity, java.cvss_score, java.fix_state) == ("high", 7.5, "unknown")
    assert report.tool_version == "0.75.0"
    assert report.scanned_at == datetime(2024, 4, 10, 11, 5, 22, 636338, tzinfo=UTC)


def test_grype_presenter_golden_placeholder_version_and_empty_timestamp():
    report = parse_grype(sample_bytes("vulns/grype-presenter-golden-image.json"))

    assert report.tool_version == ""  # "[not provided]" is a placeholder
    assert report.scanned_at is None
    assert report.target == "user-input"
    first = by_id(report, "CVE-1999-0001")
    # The scanner's word wins over a score that would say otherwise.
    assert (first.severity, first.cvss_score) == ("low", 8.2)
    assert first.fixed_versions == ("1.2.1", "2.1.3", "3.4.0")
    assert first.purl == ""
    second = by_id(report, "CVE-1999-0002")
    assert (second.severity, second.purl) == ("critical", "pkg:deb/package-2@2.2.2")


def test_grype_same_finding_at_two_locations_is_one_row_and_related_ids_become_aliases():
    related = [{"id": "GHSA-aaaa-bbbb-cccc"}, {"id": "CVE-2024-0001"}]
    document = {"matches": [grype_match(relatedVulnerabilities=related), grype_match()], "descriptor": {}}

    report = parse_grype(json.dumps(document).encode())

    (only,) = report.vulnerabilities
    assert only.aliases == ("GHSA-aaaa-bbbb-cccc",)


def test_grype_without_a_severity_word_falls_back_to_the_cvss_score():
    match = grype_match()
    match["vulnerability"]["severity"] = "Unknown"
    match["vulnerability"]["cvss"] = [{"version": "3.1", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}]

    (vulnerability,) = parse_grype({"matches": [match]}).vulnerabilities

    assert (vulnerability.severity, vulnerability.cvss_score) == ("high", 7.5)


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"matches": [grype_match(vulnerability={"severity": "High"})]}, "matches[0].vulnerability.id"),
        ({"matches": [grype_match(artifact={"version": "1"})]}, "matches[0].artifact.name"),
        ({"matches": [grype_match(artifact="openssl")]}, "matches[0].artifact"),
        ({"matches": {"0": {}}}, "matches"),
        ({"source": {}}, "matches"),
        ({"matches": [grype_match(relatedVulnerabilities=["GHSA-x"])]}, "matches[0].relatedVulnerabilities[0]"),
    ],
)
def test_grype_wrong_shape_names_the_json_path(document, location):
    with pytest.raises(EvidenceParseError) as caught:
        parse_grype(json.dumps(document).encode())
    assert caught.value.location == location
    assert location in str(caught.value)


def test_grype_truncated_json_names_the_line():
    truncated = sample_bytes("vulns/grype-0.94-busybox-epss.json")[:5000]
    with pytest.raises(EvidenceParseError, match=r"not valid JSON") as caught:
        parse_grype(truncated)
    assert caught.value.location.startswith("line ")


def test_grype_refuses_a_top_level_array():
    with pytest.raises(EvidenceParseError, match="Grype report"):
        parse_grype(b"[]")


def test_non_utf8_bytes_are_refused_clearly():
    with pytest.raises(EvidenceParseError, match="not UTF-8"):
        parse_grype(b'{"matches": ["\xff"]}')


# --- Trivy --------------------------------------------------------------------------------------------------


def test_trivy_schema2_image_scan():
    report = parse_trivy(sample_bytes("vulns/trivy-schema2-alpine-310-image.json"))

    assert (report.tool, report.tool_version) == ("trivy", "dev")
    assert report.target == "testdata/fixtures/images/alpine-310.tar.gz"
    assert report.scanned_at == datetime(2021, 8, 25, 12, 20, 30, tzinfo=UTC)  # ".000000005Z" nanoseconds
    assert len(report.vulnerabilities) == 4
    libssl = by_id(report, "CVE-2019-1551", "libssl1.1")
    assert libssl.package_version == "1.1.1c-r0"
    assert libssl.purl == "pkg:apk/alpine/libssl1.1@1.1.1c-r0?arch=x86_64&distro=3.10.2"
    assert (libssl.severity, libssl.cvss_score) == ("medium", 5.3)  # the nvd score, SeveritySource is nvd
    assert (libssl.fix_state, libssl.fixed_versions) == ("fixed", ("1.1.1d-r2",))
    assert libssl.title == "openssl: Integer overflow in RSAZ modular exponentiation on x86_64"


def test_trivy_filesystem_scan_skips_results_without_vulnerabilities():
    report = parse_trivy(sample_bytes("vulns/trivy-schema2-fs-misconfig-secrets.json"))

    assert report.target == "."
    assert [(v.vuln_id, v.package_name, v.severity) for v in report.vulnerabilities] == [
        ("CVE-2021-33503", "urllib3", "high"),
        ("CVE-2021-28363", "urllib3", "medium"),
    ]
    redos = by_id(report, "CVE-2021-33503")
    # No Status field in this older output: a FixedVersion is enough to say a fix exists.
    assert (redos.fix_state, redos.fixed_versions, redos.cvss_score) == ("fixed", ("1.26.5",), 7.5)


def test_trivy_legacy_array_with_null_vulnerabilities():
    report = parse_trivy(sample_bytes("vulns/trivy-legacy-array-null-vulnerabilities.json"))

    assert report.vulnerabilities == []
    assert report.target == "testdata/fixtures/oraclelinux-8-slim.tar.gz (oracle 8.0)"
    assert report.scanned_at is None


def test_trivy_status_and_several_fixed_versions():
    item = {
        "VulnerabilityID": "CVE-2024-1",
        "PkgName": "zlib",
        "InstalledVersion": "1.2",
        "FixedVersion": "1.2.13, 1.3.1",
        "Status": "will_not_fix",
        "Severity": "UNKNOWN",
        "VendorIDs": ["DSA-5218-1"],
        "CVSS": {"ghsa": {"V3Score": 9.1}},
    }
    document = {"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [item]}]}

    (vulnerability,) = parse_trivy(document).vulnerabilities

    assert vulnerability.fixed_versions == ("1.2.13", "1.3.1")
    assert vulnerability.fix_state == "wont-fix"
    assert vulnerability.aliases == ("DSA-5218-1",)
    assert (vulnerability.severity, vulnerability.cvss_score) == ("critical", 9.1)


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"SchemaVersion": 2, "Results": {"Target": "x"}}, "Results"),
        (
            {"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"PkgName": "a"}]}]},
            "Results[0].Vulnerabilities[0].VulnerabilityID",
        ),
        (
            {"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": 5}]}]},
            "Results[0].Vulnerabilities[0].PkgName",
        ),
        ({"SchemaVersion": 2, "Results": [{"Vulnerabilities": "none"}]}, "Results[0].Vulnerabilities"),
        ({"SchemaVersion": 3, "Results": []}, "SchemaVersion"),
        ({"ArtifactName": "x"}, "SchemaVersion"),
        ([{"Target": "x", "Vulnerabilities": [None]}], "[0].Vulnerabilities[0]"),
    ],
)
def test_trivy_wrong_shape_names_the_json_path(document, location):
    with pytest.raises(EvidenceParseError) as caught:
        parse_trivy(json.dumps(document).encode())
    assert caught.value.location == location


# --- osv-scanner --------------------------------------------------------------------------------------------


def test_osv_scanner_groups_aliases_into_one_finding_per_package():
    report = parse_osv_scanner(sample_bytes("vulns/osv-scanner-go-cargo-lockfiles.json"))

    assert report.tool == "osv-scanner"
    assert "sub-rust-project/Cargo.lock" in report.target and "go.mod" in report.target
    assert len(report.vulnerabilities) == 2
    regex = by_id(report, "GHSA-m5pq-gvj9-9vr8")
    assert set(regex.aliases) == {"RUSTSEC-2022-0013", "CVE-2022-24713"}
    assert (regex.package_name, regex.package_version, regex.purl) == ("regex", "1.5.1", "pkg:cargo/regex@1.5.1")
    assert regex.severity == "high"  # database_specific.severity HIGH
    assert regex.cvss_score == 7.5  # computed from the CVSS:3.1 vector
    assert (regex.fix_state, regex.fixed_versions) == ("fixed", ("1.5.5",))
    gogo = by_id(report, "GO-2021-0053")
    assert set(gogo.aliases) == {"CVE-2021-3121", "GHSA-c3h9-896r-86jm"}
    assert (gogo.severity, gogo.cvss_score, gogo.fixed_versions) == ("unknown", None, ("1.3.2",))
    assert gogo.title == "Panic due to improper input validation in github.com/gogo/protobuf"


def test_osv_scanner_malware_advisory_without_a_fix():
    report = parse_osv_scanner(sample_bytes("vulns/osv-scanner-yarn-malware.json"))

    (malware,) = report.vulnerabilities
    assert malware.vuln_id == "MAL-2023-1035"
    assert malware.aliases == ("GHSA-8348-2q94-ffjx",)
    assert malware.fix_state == "not-fixed"  # introduced "0", never fixed
    assert malware.purl == "pkg:npm/flot-axis@0.0.0"
    assert malware.title == "Malicious code in flot-axis (npm)"
    assert report.target == "/tmp/components/yarn.lock"


def osv_document(*, advisory: dict, group: dict | None = None) -> dict:
    package = {"package": {"name": "lodash", "version": "4.17.20", "ecosystem": "npm"}, "vulnerabilities": [advisory]}
    if group is not None:
        package["groups"] = [group]
    return {"results": [{"source": {"path": "package-lock.json"}, "packages": [package]}]}


def test_osv_scanner_group_max_severity_wins():
    document = osv_document(
        advisory={"id": "GHSA-1", "database_specific": {"severity": "LOW"}},
        group={"ids": ["GHSA-1"], "max_severity": "9.8"},
    )

    (vulnerability,) = parse_osv_scanner(document).vulnerabilities

    assert (vulnerability.severity, vulnerability.cvss_score) == ("critical", 9.8)


def test_osv_scanner_cvss_vector_when_nothing_else_rates_it():
    vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"
    document = osv_document(advisory={"id": "OSV-1", "severity": [{"type": "CVSS_V3", "score": vector}]})

    (vulnerability,) = parse_osv_scanner(document).vulnerabilities

    assert (vulnerability.severity, vulnerability.cvss_score) == ("medium", 5.3)


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"results": [{"packages": [{"vulnerabilities": []}]}]}, "results[0].packages[0].package"),
        (
            {"results": [{"packages": [{"package": {"name": "a"}, "vulnerabilities": [{}]}]}]},
            "results[0].packages[0].vulnerabilities[0].id",
        ),
        (
            {"results": [{"packages": [{"package": {"name": "a"}, "groups": [{"ids": []}]}]}]},
            "results[0].packages[0].groups[0].ids",
        ),
        ({"results": "none"}, "results"),
        ({"packages": []}, "results"),
    ],
)
def test_osv_scanner_wrong_shape_names_the_json_path(document, location):
    with pytest.raises(EvidenceParseError) as caught:
        parse_osv_scanner(document)
    assert caught.value.location == location


# --- CycloneDX ----------------------------------------------------------------------------------------------


def test_cyclonedx_trivy_bom_vulnerabilities_take_the_most_severe_rating():
    report = parse_cyclonedx_vulnerabilities(sample_bytes("sbom/cyclonedx-1.5-trivy-pom-with-vulnerabilities.json"))

    assert (report.tool, report.tool_version, report.target) == ("trivy", "dev", "testdata/fixtures/repo/pom")
    assert report.scanned_at == datetime(2021, 8, 25, 12, 20, 30, tzinfo=UTC)
    assert len(report.vulnerabilities) == 2
    databind = by_id(report, "CVE-2020-9548")
    assert (databind.package_name, databind.package_version) == ("jackson-databind", "2.9.1")
    assert databind.purl == "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.1"
    assert (databind.severity, databind.cvss_score) == ("critical", 9.8)
    assert (databind.fix_state, databind.fixed_versions) == ("fixed", ("2.9.10.4",))
    assert by_id(report, "CVE-2021-20190").severity == "high"


def test_a_cyclonedx_vex_not_affected_vulnerability_is_no_open_finding():
    # The document's own analysis says it does not apply: a statement (parse_cyclonedx_vex), not a finding.
    with collecting_warnings() as warnings:
        report = parse_cyclonedx_vulnerabilities(sample_bytes("vulns/cyclonedx-1.4-vex-bomlink.json"))

    assert report.vulnerabilities == []
    assert warnings == [
        "vulnerabilities whose analysis state is 'not_affected' are kept as VEX statements, not open findings "
        "(at vulnerabilities[0].analysis.state)"
    ]


def test_cyclonedx_bom_link_ref_is_resolved_to_its_purl():
    document = json.loads(sample_bytes("vulns/cyclonedx-1.4-vex-bomlink.json"))
    del document["vulnerabilities"][0]["analysis"]  # the same finding before anyone assessed it
    report = parse_cyclonedx_vulnerabilities(json.dumps(document).encode())

    (vulnerability,) = report.vulnerabilities
    assert vulnerability.purl == "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar"
    assert (vulnerability.package_name, vulnerability.package_version) == ("jackson-databind", "2.10.0")
    assert vulnerability.aliases == ("SNYK-JAVA-COMFASTERXMLJACKSONCORE-1048302",)
    assert vulnerability.fixed_versions == ("2.6.7.4", "2.9.10.7", "2.10.5.1")
    assert (vulnerability.severity, vulnerability.cvss_score) == ("high", 8.2)


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"bomFormat": "SPDX"}, "bomFormat"),
        ({"bomFormat": "CycloneDX", "vulnerabilities": [{"ratings": []}]}, "vulnerabilities[0].id"),
        (
            {"bomFormat": "CycloneDX", "vulnerabilities": [{"id": "CVE-1", "affects": [{}]}]},
            "vulnerabilities[0].affects[0].ref",
        ),
        (
            {"bomFormat": "CycloneDX", "vulnerabilities": [{"id": "CVE-1", "ratings": ["high"]}]},
            "vulnerabilities[0].ratings[0]",
        ),
    ],
)
def test_cyclonedx_wrong_shape_names_the_json_path(document, location):
    with pytest.raises(EvidenceParseError) as caught:
        parse_cyclonedx_vulnerabilities(document)
    assert caught.value.location == location


# --- severity normalisation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("Critical", "critical"),
        ("HIGH", "high"),
        ("Moderate", "medium"),
        ("medium", "medium"),
        ("Negligible", "low"),
        ("Low", "low"),
        ("Unknown", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
        ("bogus", "unknown"),
    ],
)
def test_severity_words_are_normalised(word, severity):
    assert severity_from_word(word) == severity


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (10.0, "critical"),
        (9.0, "critical"),
        (8.9, "high"),
        (7.0, "high"),
        (6.9, "medium"),
        (4.0, "medium"),
        (3.9, "low"),
        (0.1, "low"),
        (0.0, "unknown"),
        (None, "unknown"),
    ],
)
def test_cvss_scores_are_normalised(score, severity):
    assert severity_from_score(score) == severity


def test_cvss_vectors_of_every_version_are_scored_and_bad_ones_are_none():
    assert score_from_cvss_vector("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert score_from_cvss_vector("AV:N/AC:L/Au:N/C:P/I:P/A:P") == 7.5
    assert score_from_cvss_vector("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") == 9.3
    assert score_from_cvss_vector("AAV:N/AC:L/nonsense") is None


def test_wrong_types_deep_inside_are_reported_not_raised_as_type_errors():
    osv = osv_document(advisory={"id": "OSV-1", "severity": 5})
    with pytest.raises(EvidenceParseError) as caught:
        parse_osv_scanner(osv)
    assert caught.value.location == "results[0].packages[0].vulnerabilities[0].severity"

    with pytest.raises(EvidenceParseError) as caught:
        parse_cyclonedx_vulnerabilities({"bomFormat": "CycloneDX", "components": 5})
    assert caught.value.location == "components"

    tools = {"bomFormat": "CycloneDX", "metadata": {"tools": {"components": True}}}
    with pytest.raises(EvidenceParseError) as caught:
        parse_cyclonedx_vulnerabilities(tools)
    assert caught.value.location == "metadata.tools.components"
