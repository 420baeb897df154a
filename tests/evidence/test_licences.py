"""Licences are SPDX: names, URLs and trove classifiers are normalised, the rest is `unknown` (issue 16, item 3)."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from approvals import gates
from changecontrol.policy import GateRule
from evidence.models import SbomComponent
from evidence.parsers.licences import to_spdx
from evidence.parsers.sbom import combine_licenses, cyclonedx_json, parse_cyclonedx
from tests.evidence.conftest import DIGEST, data_bytes, evidence_of


@pytest.mark.parametrize(
    ("text", "spdx"),
    [
        ("GNU Affero General Public License v3", "AGPL-3.0-only"),
        ("GNU General Public License v3.0 or later", "GPL-3.0-or-later"),
        ("Apache License, Version 2.0", "Apache-2.0"),
        ("The MIT License", "MIT"),
        ('BSD 3-Clause "New" or "Revised" License', "BSD-3-Clause"),
        ("License :: OSI Approved :: MIT License", "MIT"),
        ("License :: OSI Approved :: GNU Affero General Public License v3", "AGPL-3.0-only"),
        ("https://www.apache.org/licenses/LICENSE-2.0.txt", "Apache-2.0"),
        ("https://opensource.org/licenses/MIT", "MIT"),
        ("https://spdx.org/licenses/BSD-3-Clause.html", "BSD-3-Clause"),
        ("gpl-2.0+", "GPL-2.0-or-later"),
        ("LicenseRef-acme-eula", "LicenseRef-acme-eula"),
        ("Some random license", None),
        ("License :: Other/Proprietary License", None),
    ],
)
def test_licence_texts_are_normalised_to_spdx(text, spdx):
    assert to_spdx(text) == spdx


def test_a_component_whose_licence_cannot_be_normalised_is_unknown_and_keeps_the_text():
    assert combine_licenses(["Some random license"]) == {
        "license_expression": "unknown",
        "license_declared": "Some random license",
    }
    assert combine_licenses(["License :: OSI Approved :: MIT License", "Apache-2.0"]) == {
        "license_expression": "MIT AND Apache-2.0",
        "license_declared": "License :: OSI Approved :: MIT License AND Apache-2.0",
    }
    assert combine_licenses(["MIT OR Apache-2.0"]) == {
        "license_expression": "MIT OR Apache-2.0",
        "license_declared": "",
    }


def test_the_spec_examples_licence_by_name_is_unknown_with_its_text():
    document = parse_cyclonedx(cyclonedx_json(data_bytes("cyclonedx-1.1-spec-valid-bom.xml")))
    by_name = {c.name: c for c in document.components}
    assert (by_name["tomcat-catalina"].license_expression, by_name["tomcat-catalina"].license_declared) == (
        "Apache-2.0",
        "",
    )
    assert (by_name["myframework"].license_expression, by_name["myframework"].license_declared) == (
        "unknown",
        "Some random license",
    )


def _sbom(*licences: dict) -> bytes:
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "components": [
                {"type": "library", "name": f"c{n}", "version": "1", "licenses": [licence]}
                for n, licence in enumerate(licences)
            ],
        }
    ).encode()


@pytest.mark.django_db
def test_the_parsed_summary_counts_spdx_ids_not_classifiers_or_names(upload, artifact):
    evidence = evidence_of(
        upload(
            DIGEST,
            "cyclonedx",
            _sbom(
                {"license": {"name": "GNU Affero General Public License v3"}},
                {"license": {"name": "License :: OSI Approved :: MIT License"}},
                {"license": {"name": "Vendor EULA"}},
            ),
        )
    )
    assert evidence.state == "parsed"
    assert evidence.summary["licences"] == {"AGPL-3.0-only": 1, "MIT": 1, "unknown": 1}
    assert SbomComponent.objects.get(evidence=evidence, name="c2").license_declared == "Vendor EULA"
    assert any("'Vendor EULA'" in warning for warning in evidence.summary["warnings"])


def _gate(**params):
    return GateRule(id="licences", kind="licenses", blocking=True, params=MappingProxyType(params), description="")


def _facts(*entries):
    artifact = {"digest": "sha256:" + "a" * 64, "name": "rsd-api", "sbom": True, "licenses": list(entries)}
    return {"artifacts": [artifact]}


def test_a_deny_list_is_not_passed_by_a_licence_given_by_name():
    # The SBOM said "GNU Affero General Public License v3": it is parsed as AGPL-3.0-only, which the list denies.
    result = gates.gate_licenses(
        _gate(deny=("AGPL-3.0-only",)), _facts({"expression": "AGPL-3.0-only", "count": 1, "components": ["x"]})
    )
    assert result["status"] == "fail"


@pytest.mark.parametrize(
    ("unknown", "status", "blocking"),
    [(None, "fail", True), ("fail", "fail", True), ("review", "fail", False), ("pass", "pass", True)],
)
def test_what_an_unknown_licence_does_is_the_policys_choice(unknown, status, blocking):
    params = {"deny": ("AGPL-3.0-only",)} | ({"unknown": unknown} if unknown else {})
    entry = {"expression": "unknown", "count": 1, "components": ["vendor-lib"], "declared": "Vendor EULA"}
    result = gates.gate_licenses(_gate(**params), _facts(entry))
    assert (result["status"], result["blocking"]) == (status, blocking)
    if status == "fail":
        assert "vendor-lib ('Vendor EULA' is not an SPDX licence)" in result["detail"]
