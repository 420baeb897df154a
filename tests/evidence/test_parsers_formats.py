"""The formats tools write by default: CycloneDX XML 1.1-1.6, SPDX tag-value, trivy k8s, JaCoCo (issue 16, item 1).

Each is read from real files (tests/evidence/data/README.md names where each came from).
"""

from __future__ import annotations

import json

import pytest

from evidence.models import SbomComponent, VexStatement, Vulnerability
from evidence.parsers.base import EvidenceParseError
from evidence.parsers.sbom import CYCLONEDX_XML_VERSIONS, cyclonedx_json, parse_cyclonedx, parse_spdx, spdx_json
from evidence.parsers.trivy import parse_trivy
from evidence.providers.base import guess_type
from tests.evidence.conftest import DIGEST, data_bytes, evidence_of
from tests.samples import sample_bytes

# ---------------------------------------------------------------- CycloneDX XML


@pytest.mark.parametrize("version", CYCLONEDX_XML_VERSIONS)
def test_cyclonedx_xml_of_every_spec_version_is_read(version):
    document = parse_cyclonedx(cyclonedx_json(data_bytes(f"cyclonedx-{version}-spec-valid-bom.xml")))

    assert (document.format, document.spec_version) == ("cyclonedx", version)
    assert [c.name for c in document.components] == ["tomcat-catalina", "mylibrary", "myframework"]  # as written
    tomcat = document.components[0]
    assert tomcat.version == "9.0.14" and tomcat.group == "com.acme"
    assert tomcat.purl == "pkg:maven/com.acme/tomcat-catalina@9.0.14?packaging=jar"
    assert tomcat.license_expression == "Apache-2.0"
    assert dict(tomcat.hashes)["SHA-256"].startswith("f498a8ff2dd007e29c2074f5e4b01a9a")


def test_cyclonedx_json_is_handed_on_untouched():
    raw = sample_bytes("sbom/cyclonedx-1.6-cyclonedx-py-pipenv.json")
    assert cyclonedx_json(raw) is raw


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<?xml version='1.0'?>\n<coverage/>", "the root element is <coverage>"),
        (b"<bom xmlns='http://cyclonedx.org/schema/bom/1.0'/>", "CycloneDX XML 1.0 is not read"),
        (b"<bom xmlns='http://cyclonedx.org/schema/bom/1.6'><components>", "line 1"),
    ],
)
def test_what_is_not_cyclonedx_xml_is_refused_with_a_sentence(xml, message):
    with pytest.raises(EvidenceParseError, match=message):
        cyclonedx_json(xml)


@pytest.mark.django_db
def test_a_cyclonedx_xml_upload_with_vulnerabilities_and_analysis_is_parsed(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "cyclonedx", data_bytes("cyclonedx-1.4-spec-valid-vulnerability.xml")))

    assert evidence.state == "parsed", evidence.error
    assert (evidence.summary["serialisation"], evidence.summary["spec_version"]) == ("xml", "1.4")
    assert SbomComponent.objects.filter(evidence=evidence).count() == 1
    statement = VexStatement.objects.get(evidence=evidence)
    assert (statement.vuln_id, statement.status) == ("SNYK-JAVA-COMFASTERXMLJACKSONCORE-32111", "not_affected")
    assert not Vulnerability.objects.filter(evidence=evidence).exists()  # not_affected: a statement, no finding


# ---------------------------------------------------------------- SPDX tag-value


@pytest.mark.parametrize("version", ["2.2", "2.3"])
def test_spdx_tag_value_is_read(version):
    document = parse_spdx(spdx_json(data_bytes(f"spdx-{version}-tools-python-example.spdx")))

    assert (document.format, document.spec_version) == ("spdx", version)
    assert len(document.components) == 4
    assert document.serial.startswith("http")
    assert any(c.license_expression for c in document.components)


def test_spdx_json_is_handed_on_untouched():
    raw = sample_bytes("sbom/spdx-2.3-k8s-bom-rust-hello-server.spdx.json")
    assert spdx_json(raw) is raw


def test_broken_spdx_tag_value_names_the_line():
    with pytest.raises(EvidenceParseError, match="[Ll]ine: 4"):
        spdx_json(b"SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\nSPDXID: SPDXRef-DOCUMENT\nPackageName foo\n")


@pytest.mark.django_db
def test_an_spdx_tag_value_upload_is_parsed(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "spdx", data_bytes("spdx-2.3-tools-python-example.spdx")))

    assert evidence.state == "parsed", evidence.error
    assert (evidence.summary["serialisation"], evidence.summary["components"]) == ("tag-value", 4)


@pytest.mark.django_db
def test_an_spdx_3_json_ld_upload_is_parsed(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "spdx", sample_bytes("sbom/spdx-3.0.1-examplemaven.spdx3.json")))
    assert evidence.state == "parsed", evidence.error
    assert evidence.summary["spec_version"].startswith("3.0")


# ---------------------------------------------------------------- trivy k8s


def test_a_trivy_k8s_report_reads_the_results_of_every_workload():
    report = parse_trivy(data_bytes("trivy-k8s-cluster-legacy.json"))

    assert report.target == "arn:aws:eks:us-east-1:576036489467:cluster/monitoring-test-cluster"
    assert len(report.vulnerabilities) == 5  # the same image in two workloads: each finding once
    assert {v.package_name for v in report.vulnerabilities} >= {"apt"}


def test_the_newer_trivy_k8s_shape_with_resources_is_read_the_same():
    legacy = json.loads(data_bytes("trivy-k8s-cluster-legacy.json"))
    newer = {
        "ClusterName": legacy["ClusterName"],
        "Resources": [*legacy["Vulnerabilities"], *legacy["Misconfigurations"]],
    }
    newer["Resources"].append({"Namespace": "x", "Kind": "Pod", "Name": "p", "Error": "unable to pull image"})
    report = parse_trivy(json.dumps(newer).encode())
    assert report.vulnerabilities == parse_trivy(data_bytes("trivy-k8s-cluster-legacy.json")).vulnerabilities


def test_a_trivy_document_of_neither_shape_names_both():
    with pytest.raises(EvidenceParseError, match="ClusterName"):
        parse_trivy(b'{"Kind": "nothing"}')


# ---------------------------------------------------------------- JaCoCo, and guessing pulled files' types


@pytest.mark.django_db
def test_a_jacoco_upload_is_parsed_under_its_own_type(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "jacoco", sample_bytes("coverage/jacoco-aggregate-groups.xml")))

    assert evidence.state == "parsed", evidence.error
    assert evidence.summary["tool"] == "jacoco" and evidence.summary["files"] > 0


@pytest.mark.parametrize(
    ("name", "read", "expected"),
    [
        ("jacoco.xml", lambda: sample_bytes("coverage/jacoco-single-line.xml"), "jacoco"),
        ("bom.xml", lambda: data_bytes("cyclonedx-1.6-spec-valid-bom.xml"), "cyclonedx"),
        ("sbom.spdx", lambda: data_bytes("spdx-2.3-tools-python-example.spdx"), "spdx"),
        ("coverage.xml", lambda: sample_bytes("coverage/cobertura-simplecov.xml"), "cobertura"),
    ],
)
def test_pulled_reports_of_the_new_formats_are_recognised(name, read, expected):
    # Read inside the test: a sample missing at collection would skip the whole module, not this case.
    assert guess_type(name, read()) == expected
