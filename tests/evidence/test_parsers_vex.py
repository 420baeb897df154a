"""VEX parsers (OpenVEX, CycloneDX VEX) on real samples, and when a VEX statement suppresses a finding."""

import json
from datetime import UTC, datetime

import pytest

from evidence.parsers.base import EvidenceParseError
from evidence.parsers.cyclonedx_vulns import parse_cyclonedx_vex
from evidence.parsers.openvex import parse_openvex
from evidence.parsers.results import VexStatement, Vulnerability
from evidence.vex import vex_suppresses
from tests.samples import sample_bytes

ALPINE_IMAGE = "pkg:oci/alpine@sha256%3A124c7d2707904eea7431fffe91522a01e5a861a624ee31d03372cc1d138a3126"
NGINX_DIGEST = "sha256:13d22ec63300e16014d4a42aed735207a8b33c223cff19627dd3042e5a10a3a0"


def finding(*, vuln_id: str, purl: str, aliases: tuple[str, ...] = ()) -> Vulnerability:
    return Vulnerability(
        vuln_id=vuln_id,
        aliases=aliases,
        package_name=purl.split("/")[-1].split("@")[0] if purl else "",
        package_version="",
        purl=purl,
        severity="high",
        cvss_score=None,
        fix_state="unknown",
        fixed_versions=(),
        title="",
        source_tool="trivy",
    )


def statement(*, vuln_id="CVE-2024-1", status="not_affected", products=(), aliases=()) -> VexStatement:
    return VexStatement(
        vuln_id=vuln_id,
        aliases=aliases,
        products=products,
        status=status,
        justification="",
        impact_statement="",
        timestamp=None,
    )


# --- OpenVEX ------------------------------------------------------------------------------------------------


def test_openvex_legacy_0_0_1_with_plain_strings():
    document = parse_openvex(sample_bytes("vulns/openvex-0.0.1-legacy.json"))

    assert document.format == "openvex"
    assert document.document_id == "https://openvex.dev/docs/example/vex-9fb3463de1b57"
    assert document.author == "Wolfi J Inkinson"
    # 2023-01-08T18:02:03.647787998-06:00, nanoseconds cut, moved to UTC
    assert document.issued_at == datetime(2023, 1, 9, 0, 2, 3, 647787, tzinfo=UTC)
    (only,) = document.statements
    assert (only.vuln_id, only.status) == ("CVE-2023-12345", "fixed")
    assert only.products == ("pkg:apk/wolfi/git@2.39.0-r1?arch=armv7", "pkg:apk/wolfi/git@2.39.0-r1?arch=x86_64")
    assert only.timestamp == document.issued_at  # inherited from the document


def test_openvex_0_2_0_objects_with_subcomponents():
    document = parse_openvex(sample_bytes("vulns/openvex-0.2.0-alpine-openssl.json"))

    assert document.author == "The OpenVEX Project <openvex@openssf.org>"
    assert len(document.statements) == 5
    assert [s.status for s in document.statements] == ["fixed", "fixed", "fixed", "not_affected", "not_affected"]
    not_affected = document.statements[3]
    assert not_affected.vuln_id == "CVE-2023-3446"
    assert not_affected.justification == "vulnerable_code_not_present"
    assert not_affected.impact_statement == "affected functions were removed before packaging"
    assert not_affected.products == (
        ALPINE_IMAGE,
        "pkg:apk/alpine/libssl3@3.0.8-r3",
        "pkg:apk/alpine/libcrypto3@3.0.8-r3",
    )


def test_openvex_statement_history_keeps_each_statement_timestamp_and_aliases():
    document = parse_openvex(sample_bytes("vulns/openvex-0.2.0-vexctl-history-aliases.json"))

    first, second = document.statements
    assert first.vuln_id == second.vuln_id == "CVE-2023-27103"
    assert first.aliases == ("SNYK-DEBIAN12-LIBDE265-3361563",)
    assert first.justification == "component_not_present"
    assert first.timestamp == datetime(2023, 8, 16, 1, 55, 22, 76684, tzinfo=UTC)
    assert second.timestamp == document.issued_at == datetime(2023, 8, 17, 1, 55, 22, 76684, tzinfo=UTC)
    assert first.products == (f"pkg:oci/nginx@{NGINX_DIGEST.replace(':', '%3A')}",)


def openvex(statement_item: dict) -> dict:
    return {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "statements": [statement_item]}


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"statements": []}, "@context"),
        (openvex({"vulnerability": {"name": "CVE-1"}, "status": "safe"}), "statements[0].status"),
        (openvex({"status": "fixed"}), "statements[0].vulnerability"),
        (openvex({"vulnerability": {"aliases": []}, "status": "fixed"}), "statements[0].vulnerability.name"),
        (openvex({"vulnerability": "CVE-1", "status": "fixed", "products": "pkg:npm/a"}), "statements[0].products"),
        (openvex({"vulnerability": "CVE-1", "status": "fixed", "products": [7]}), "statements[0].products[0]"),
        ({"@context": "https://openvex.dev/ns/v0.2.0", "statements": {"a": 1}}, "statements"),
    ],
)
def test_openvex_wrong_shape_names_the_json_path(document, location):
    with pytest.raises(EvidenceParseError) as caught:
        parse_openvex(json.dumps(document).encode())
    assert caught.value.location == location


def test_openvex_truncated_file_names_the_line():
    with pytest.raises(EvidenceParseError, match="not valid JSON") as caught:
        parse_openvex(sample_bytes("vulns/openvex-0.2.0-alpine-openssl.json")[:700])
    assert caught.value.location.startswith("line ")


# --- CycloneDX VEX ------------------------------------------------------------------------------------------


def test_cyclonedx_vex_bom_link_keeps_the_link_and_its_bom_ref():
    document = parse_cyclonedx_vex(sample_bytes("vulns/cyclonedx-1.4-vex-bomlink.json"))

    assert document.format == "cyclonedx-vex"
    (only,) = document.statements
    assert only.vuln_id == "CVE-2020-25649"
    assert only.aliases == ("SNYK-JAVA-COMFASTERXMLJACKSONCORE-1048302",)
    assert only.status == "not_affected"
    assert only.justification == "code_not_reachable"
    assert only.impact_statement.startswith("Automated dataflow analysis")
    assert only.products == (
        "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar",
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar",
    )
    assert only.timestamp is None and document.issued_at is None


def test_cyclonedx_vex_cisa_case_2_one_product_many_vulnerabilities():
    document = parse_cyclonedx_vex(sample_bytes("vulns/cyclonedx-1.4-vex-cisa-case2.json"))

    assert len(document.statements) == 19
    assert {s.status for s in document.statements} == {"not_affected"}
    assert {s.products for s in document.statements} == {("product-ABC",)}
    assert document.statements[0].vuln_id == "CVE-2020-11896"
    assert document.issued_at == datetime(2022, 3, 3, tzinfo=UTC)
    assert document.statements[0].timestamp == document.issued_at


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("not_affected", "not_affected"),
        ("false_positive", "not_affected"),
        ("exploitable", "affected"),
        ("resolved", "fixed"),
        ("resolved_with_pedigree", "fixed"),
        ("in_triage", "under_investigation"),
        (None, "under_investigation"),
    ],
)
def test_cyclonedx_analysis_states_map_to_vex_statuses(state, status):
    vulnerability = {"id": "CVE-2024-1", "affects": [{"ref": "app"}]}
    if state:
        vulnerability["analysis"] = {"state": state, "lastUpdated": "2024-05-01T10:00:00.123Z"}
    document = {
        "bomFormat": "CycloneDX",
        "serialNumber": "urn:uuid:1",
        "version": 2,
        "metadata": {"authors": [{"name": "Product Security"}]},
        "components": [{"bom-ref": "app", "name": "app", "purl": "pkg:npm/app@1.0.0"}],
        "vulnerabilities": [vulnerability],
    }

    parsed = parse_cyclonedx_vex(document)

    assert parsed.statements[0].status == status
    assert parsed.statements[0].products == ("app", "pkg:npm/app@1.0.0")
    assert (parsed.document_id, parsed.author) == ("urn:uuid:1/2", "Product Security")
    if state:
        assert parsed.statements[0].timestamp == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("vulnerability", "location"),
    [
        ({"id": "CVE-1", "analysis": {"state": "maybe"}}, "vulnerabilities[0].analysis.state"),
        ({"analysis": {"state": "resolved"}}, "vulnerabilities[0].id"),
        ({"id": "CVE-1", "affects": [{"ref": ""}]}, "vulnerabilities[0].affects[0].ref"),
        ({"id": "CVE-1", "analysis": ["resolved"]}, "vulnerabilities[0].analysis"),
    ],
)
def test_cyclonedx_vex_wrong_shape_names_the_json_path(vulnerability, location):
    with pytest.raises(EvidenceParseError) as caught:
        parse_cyclonedx_vex({"bomFormat": "CycloneDX", "vulnerabilities": [vulnerability]})
    assert caught.value.location == location


# --- suppression --------------------------------------------------------------------------------------------


def test_not_affected_subcomponent_suppresses_the_scanner_finding_despite_extra_qualifiers():
    document = parse_openvex(sample_bytes("vulns/openvex-0.2.0-alpine-openssl.json"))
    not_affected = document.statements[3]
    found = finding(vuln_id="CVE-2023-3446", purl="pkg:apk/alpine/libssl3@3.0.8-r3?arch=x86_64&distro=3.18.0")

    assert vex_suppresses(statement=not_affected, vulnerability=found)


def test_fixed_statement_suppresses_but_not_for_another_package_or_version():
    fixed = parse_openvex(sample_bytes("vulns/openvex-0.2.0-alpine-openssl.json")).statements[0]

    assert vex_suppresses(
        statement=fixed, vulnerability=finding(vuln_id="CVE-2023-1255", purl="pkg:apk/alpine/libcrypto3@3.0.8-r3")
    )
    assert not vex_suppresses(
        statement=fixed, vulnerability=finding(vuln_id="CVE-2023-1255", purl="pkg:apk/alpine/busybox@1.36.1-r0")
    )
    assert not vex_suppresses(
        statement=fixed, vulnerability=finding(vuln_id="CVE-2023-1255", purl="pkg:apk/alpine/libcrypto3@3.0.9-r0")
    )
    assert not vex_suppresses(
        statement=fixed, vulnerability=finding(vuln_id="CVE-2023-9999", purl="pkg:apk/alpine/libcrypto3@3.0.8-r3")
    )


@pytest.mark.parametrize("status", ["affected", "under_investigation"])
def test_affected_and_under_investigation_never_suppress(status):
    found = finding(vuln_id="CVE-2024-1", purl="pkg:npm/a@1.0.0")
    assert not vex_suppresses(statement=statement(status=status), vulnerability=found)


def test_a_statement_without_products_covers_the_whole_document():
    assert vex_suppresses(statement=statement(), vulnerability=finding(vuln_id="CVE-2024-1", purl=""))


def test_ids_match_through_aliases_on_either_side():
    found = finding(vuln_id="GHSA-m5pq-gvj9-9vr8", aliases=("CVE-2022-24713",), purl="pkg:cargo/regex@1.5.1")
    assert vex_suppresses(
        statement=statement(vuln_id="CVE-2022-24713", products=("pkg:cargo/regex",)), vulnerability=found
    )

    found = finding(vuln_id="SNYK-DEBIAN12-LIBDE265-3361563", purl="pkg:deb/debian/libde265@1.0.11-1")
    stated = statement(vuln_id="CVE-2023-27103", aliases=("SNYK-DEBIAN12-LIBDE265-3361563",))
    assert vex_suppresses(statement=stated, vulnerability=found)


def test_versionless_purl_covers_every_version():
    stated = statement(products=("pkg:apk/wolfi/git",))
    assert vex_suppresses(
        statement=stated, vulnerability=finding(vuln_id="CVE-2024-1", purl="pkg:apk/wolfi/git@2.40.1-r0?arch=aarch64")
    )
    assert not vex_suppresses(
        statement=stated, vulnerability=finding(vuln_id="CVE-2024-1", purl="pkg:apk/wolfi/gitsign@1.0")
    )


def test_conflicting_qualifiers_do_not_match_but_one_sided_ones_are_ignored():
    legacy = parse_openvex(sample_bytes("vulns/openvex-0.0.1-legacy.json")).statements[0]

    armv7 = finding(vuln_id="CVE-2023-12345", purl="pkg:apk/wolfi/git@2.39.0-r1?arch=armv7")
    aarch64 = finding(vuln_id="CVE-2023-12345", purl="pkg:apk/wolfi/git@2.39.0-r1?arch=aarch64")
    no_arch = finding(vuln_id="CVE-2023-12345", purl="pkg:apk/wolfi/git@2.39.0-r1")
    assert vex_suppresses(statement=legacy, vulnerability=armv7)
    assert not vex_suppresses(statement=legacy, vulnerability=aarch64)
    assert vex_suppresses(statement=legacy, vulnerability=no_arch)


def test_cyclonedx_bom_link_statement_suppresses_the_trivy_finding_without_type_qualifier():
    stated = parse_cyclonedx_vex(sample_bytes("vulns/cyclonedx-1.4-vex-bomlink.json")).statements[0]
    found = finding(vuln_id="CVE-2020-25649", purl="pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0")

    assert vex_suppresses(statement=stated, vulnerability=found)


def test_an_image_level_statement_covers_the_scanned_image_only_when_told_its_digest():
    stated = parse_openvex(sample_bytes("vulns/openvex-0.2.0-vexctl-history-aliases.json")).statements[0]
    found = finding(vuln_id="CVE-2023-27103", purl="pkg:deb/debian/libde265@1.0.11-1")

    assert not vex_suppresses(statement=stated, vulnerability=found)
    assert vex_suppresses(statement=stated, vulnerability=found, artifact_identifiers=[NGINX_DIGEST])
    assert not vex_suppresses(statement=stated, vulnerability=found, artifact_identifiers=["sha256:" + "0" * 64])


def test_a_non_purl_product_matches_only_an_identical_identifier():
    stated = parse_cyclonedx_vex(sample_bytes("vulns/cyclonedx-1.4-vex-cisa-case2.json")).statements[0]
    found = finding(vuln_id="CVE-2020-11896", purl="pkg:generic/treck-tcpip@6.0.1.66")

    assert not vex_suppresses(statement=stated, vulnerability=found)
    assert vex_suppresses(statement=stated, vulnerability=found, artifact_identifiers=["product-ABC"])
