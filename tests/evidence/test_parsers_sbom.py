"""SBOMs: every real CycloneDX and SPDX sample, licence handling, wrong shapes, and a real cyclonedx-py run."""

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evidence.parsers.base import EvidenceParseError
from evidence.parsers.sbom import combine_licenses, normalise_hash_algorithm, parse_cyclonedx, parse_spdx
from tests.samples import sample_bytes, sample_names

# file -> (format, spec_version, components, subject_name, created_at, serial)
EXPECTED = {
    "sbom/cyclonedx-1.4-php-composer-laravel.json": ("cyclonedx", "1.4", 62, "cyclonedx-php-composer-demo", None, ""),
    "sbom/cyclonedx-1.5-trivy-pom-with-vulnerabilities.json": (
        "cyclonedx",
        "1.5",
        3,
        "testdata/fixtures/repo/pom",
        datetime(2021, 8, 25, 12, 20, 30, tzinfo=UTC),
        "urn:uuid:3ff14136-e09f-4df9-80ea-000000000005",
    ),
    "sbom/cyclonedx-1.6-cyclonedx-py-env-license-texts.json": ("cyclonedx", "1.6", 7, "with-extras", None, ""),
    "sbom/cyclonedx-1.6-cyclonedx-py-pipenv.json": ("cyclonedx", "1.6", 25, "with-extras", None, ""),
    "sbom/spdx-2.3-k8s-bom-rust-hello-server.spdx.json": (
        "spdx",
        "2.3",
        4,
        "hello-server-src",
        datetime(2022, 11, 3, 7, 10, 10, tzinfo=UTC),
        "https://spdx.org/spdxdocs/k8s-releng-bom-7c6a33ab-bd76-4b06-b291-a850e0815b07",
    ),
    "sbom/spdx-2.3-spdx-maven-plugin-examplemaven.spdx.json": (
        "spdx",
        "2.3",
        6,
        "examplemaven",
        datetime(2022, 10, 23, 15, 44, 16, tzinfo=UTC),
        "http://spdx.org/documents/examplemaven-0.0.1",
    ),
    "sbom/spdx-3.0.1-examplemaven.spdx3.json": (
        "spdx",
        "3.0.1",
        6,
        "examplemaven",
        datetime(2022, 10, 23, 15, 44, 16, tzinfo=UTC),
        "http://spdx.org/documents/examplemaven-0.0.1-specv3/document0",
    ),
}


def _parse(name: str):
    data = sample_bytes(name)
    return parse_cyclonedx(data) if "cyclonedx" in name else parse_spdx(data)


def test_every_sbom_sample_is_listed_here():
    assert sorted(EXPECTED) == sample_names("sbom") or not sample_names("sbom")


@pytest.mark.parametrize("name", sample_names("sbom"))
def test_sbom_sample_parses_to_its_subject_and_components(name):
    document = _parse(name)
    fmt, spec_version, count, subject, created_at, serial = EXPECTED[name]
    assert (document.format, document.spec_version, len(document.components)) == (fmt, spec_version, count)
    assert (document.subject_name, document.created_at, document.serial) == (subject, created_at, serial)
    assert all(component.name for component in document.components)


def test_cyclonedx_14_tools_array_and_licence_ids():
    document = _parse("sbom/cyclonedx-1.4-php-composer-laravel.json")
    assert document.tools == ("cyclonedx-php-composer in-dev",)
    first = document.components[0]
    assert (first.group, first.name, first.version, first.purl, first.license_expression) == (
        "asm89",
        "stack-cors",
        "1.3.0",
        "pkg:composer/asm89/stack-cors@1.3.0",
        "MIT",
    )
    assert (first.bom_ref, first.kind) == ("asm89/stack-cors-1.3.0.0", "library")


def test_cyclonedx_15_tools_object_and_components_without_licences():
    document = _parse("sbom/cyclonedx-1.5-trivy-pom-with-vulnerabilities.json")
    assert document.tools == ("trivy dev",)
    databind = document.components[2]
    assert (databind.name, databind.group, databind.version, databind.license_expression) == (
        "jackson-databind",
        "com.fasterxml.jackson.core",
        "2.9.1",
        "",
    )


def test_cyclonedx_py_licences_prefer_ids_and_expressions_over_file_labels():
    licences = {
        c.name: c.license_expression
        for c in _parse("sbom/cyclonedx-1.6-cyclonedx-py-env-license-texts.json").components
    }
    assert licences == {
        "attrs": "MIT",
        "boolean.py": "BSD-2-Clause",  # not "... AND declared license file: LICENSE.txt"
        # Classifiers with no one SPDX id (the mapping of cyclonedx-py says which) are unknown, the text kept.
        "chardet": "unknown",
        "cryptography": "Apache-2.0 OR BSD-3-Clause",
        "jsonpointer": "unknown",
        "license-expression": "Apache-2.0",
        "regression-issue868": "",
    }


def test_cyclonedx_pipenv_components_have_purls_and_no_component_hashes():
    components = _parse("sbom/cyclonedx-1.6-cyclonedx-py-pipenv.json").components
    arrow = components[0]
    assert (arrow.name, arrow.version, arrow.purl, arrow.hashes) == ("arrow", "1.3.0", "pkg:pypi/arrow@1.3.0", ())


def test_spdx_23_licence_falls_back_to_declared_and_checksums_become_hashes():
    components = _parse("sbom/spdx-2.3-k8s-bom-rust-hello-server.spdx.json").components
    hyper = components[1]
    assert (hyper.name, hyper.version, hyper.purl, hyper.license_expression) == (
        "hyper",
        "0.14",
        "pkg:cargo/hyper@0.14",
        "MIT",
    )
    assert hyper.hashes == (("SHA-256", "02c929dc5c39e335a03c405292728118860721b10190d98c2a0f0efd5baafbac"),)
    assert components[3].license_expression == "MIT OR Apache-2.0"
    maven = {c.name: c for c in _parse("sbom/spdx-2.3-spdx-maven-plugin-examplemaven.spdx.json").components}
    assert maven["JUnit"].license_expression == "CPL-1.0"  # concluded NOASSERTION, declared CPL-1.0
    assert maven["Apache Log4j API"].license_expression == ""  # NOASSERTION both ways
    assert maven["examplemaven"].hashes == (("SHA-1", "b8a7e6c75001e6d78625cfc9a3103bf121abf8b4"),)
    assert maven["examplemaven"].kind == "library"


def test_spdx_3_json_ld_reads_packages_licences_through_relationships():
    document = _parse("sbom/spdx-3.0.1-examplemaven.spdx3.json")
    licences = {c.name: (c.version, c.license_expression) for c in document.components}
    assert licences["examplemaven"] == ("0.0.1", "Apache-2.0")
    assert licences["JUnit"] == ("3.8.1", "CPL-1.0")
    assert licences["Apache Log4j Core"] == ("", "")
    assert document.tools == ("spdx-maven-plugin",)


def test_spdx_2_and_3_of_the_same_project_list_the_same_packages():
    two = _parse("sbom/spdx-2.3-spdx-maven-plugin-examplemaven.spdx.json")
    three = _parse("sbom/spdx-3.0.1-examplemaven.spdx3.json")
    assert sorted((c.name, c.license_expression) for c in two.components) == sorted(
        (c.name, c.license_expression) for c in three.components
    )


@pytest.mark.parametrize(
    ("parts", "expected", "declared"),
    [
        (["mit"], "MIT", "mit"),
        (["GPL-2.0+"], "GPL-2.0-or-later", "GPL-2.0+"),
        (["MIT", "Apache-2.0 OR BSD-3-Clause"], "MIT AND (Apache-2.0 OR BSD-3-Clause)", ""),
        (["MIT", "MIT"], "MIT", ""),
        (["NOASSERTION"], "", ""),
        (["NONE", ""], "", ""),
        (["Some Vendor EULA"], "unknown", "Some Vendor EULA"),
        (["LicenseRef-acme-1"], "LicenseRef-acme-1", ""),
        (["it's (odd"], "unknown", "it's (odd"),
    ],
)
def test_licences_are_normalised_to_spdx_and_unknown_otherwise_keeping_the_text(parts, expected, declared):
    assert combine_licenses(parts) == {"license_expression": expected, "license_declared": declared}


@pytest.mark.parametrize(
    ("name", "expected"), [("SHA256", "SHA-256"), ("sha-512", "SHA-512"), ("SHA3_256", "SHA3-256")]
)
def test_hash_algorithms_get_one_spelling(name, expected):
    assert normalise_hash_algorithm(name) == expected


def test_cyclonedx_nested_components_odd_licences_and_nul_characters():
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"name": "app\u0000"}, "tools": {"components": [{"name": "syft", "version": "1"}]}},
        "components": [
            {
                "name": "outer",
                "type": "framework",
                "licenses": [{"license": {"name": "Custom"}}, {"weird": True}],
                "hashes": [{"alg": "SHA-256", "content": "ABCDEF"}],
                "components": [
                    {
                        "name": "inner",
                        "version": "1.0\u0000",
                        "licenses": [{"license": {"id": "MIT"}}, {"license": {"id": "Apache-2.0"}}],
                    }
                ],
            },
        ],
    }
    document = parse_cyclonedx(json.dumps(bom).encode())
    assert document.subject_name == "app"
    assert document.tools == ("syft 1",)
    outer, inner = document.components
    assert (outer.name, outer.kind, outer.license_expression, outer.hashes) == (
        "outer",
        "framework",
        "unknown",
        (("SHA-256", "abcdef"),),
    )
    assert outer.license_declared == "Custom"
    assert (inner.name, inner.version, inner.license_expression) == ("inner", "1.0", "MIT AND Apache-2.0")


@pytest.mark.parametrize(
    ("parser", "document", "location"),
    [
        (parse_cyclonedx, [], r"^\$"),
        (parse_cyclonedx, {"bomFormat": "SPDX"}, "bomFormat"),
        (parse_cyclonedx, {"bomFormat": "CycloneDX", "components": {}}, "^components"),
        (parse_cyclonedx, {"bomFormat": "CycloneDX", "components": [{"version": "1"}]}, r"components\[0\]\.name"),
        (
            parse_cyclonedx,
            {"bomFormat": "CycloneDX", "components": [{"name": "a", "components": [{"name": "b", "purl": {}}]}]},
            r"components\[0\]\.components\[0\]\.purl",
        ),
        (
            parse_cyclonedx,
            {"bomFormat": "CycloneDX", "components": [{"name": "a", "components": [{"name": "b", "hashes": [{}]}]}]},
            r"components\[0\]\.components\[0\]\.hashes\[0\]",
        ),
        (parse_cyclonedx, {"bomFormat": "CycloneDX", "components": [{"name": "a", "purl": ["x"]}]}, r"\[0\]\.purl"),
        (parse_spdx, {"spdxVersion": "SPDX-1.2"}, "spdxVersion"),
        (parse_spdx, {"spdxVersion": "SPDX-2.3", "packages": [{"SPDXID": "x"}]}, r"packages\[0\]\.name"),
        (
            parse_spdx,
            {"spdxVersion": "SPDX-2.3", "packages": [{"name": "a", "checksums": [{"algorithm": "SHA1"}]}]},
            r"packages\[0\]\.checksums\[0\]",
        ),
        (parse_spdx, {"@context": "x", "@graph": {}}, "@graph"),
        (parse_spdx, {"@graph": [{"type": "software_Package"}]}, r"@graph\[0\]\.name"),
    ],
)
def test_wrong_shapes_name_the_json_path(parser, document, location):
    with pytest.raises(EvidenceParseError, match=location):
        parser(json.dumps(document).encode())


@pytest.mark.parametrize("parser", [parse_cyclonedx, parse_spdx])
@pytest.mark.parametrize("data", [b"", b'{"bomFormat": "CycloneDX", "components": [', b"<bom/>"])
def test_truncated_or_non_json_sboms_are_refused_clearly(parser, data):
    with pytest.raises(EvidenceParseError, match="not valid JSON"):
        parser(data)


def test_a_real_cyclonedx_py_environment_sbom(tmp_path):
    output = tmp_path / "sbom.json"
    tool = Path(sys.executable).parent / "cyclonedx-py"
    completed = subprocess.run(
        [str(tool), "environment", "--output-format", "JSON", "-o", str(output), sys.executable],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    document = parse_cyclonedx(output.read_bytes())
    assert document.format == "cyclonedx" and document.spec_version == "1.6"
    assert document.serial.startswith("urn:uuid:")
    assert document.created_at is not None and document.created_at.tzinfo is not None
    assert any(name.startswith("cyclonedx-py") for name in document.tools)
    by_name = {c.name.lower(): c for c in document.components}
    lxml = by_name["lxml"]
    assert lxml.purl.startswith("pkg:pypi/lxml@") and lxml.version
    assert lxml.license_expression == "BSD-3-Clause"
    assert by_name["django"].version.startswith("5.2")
