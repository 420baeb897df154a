"""Scenarios for policy-as-code, releases and promotions (DESIGN §5, §4.4–4.5), driven from outside.

A policy arrives as a YAML file through `manage.py load_policy`; releases, promotions, evidence and the status
answer go through the public API; history and diff are read as pages. Fixtures come from the fixed cast. A test
marked xfail(strict) asserts what the design text requires where Custody differs; its reason says how.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals import services as approval_services
from approvals import status as approval_status
from approvals.models import Decision
from changecontrol import services
from changecontrol.models import PolicyVersion
from changecontrol.policy import DEFAULT_POLICY_YAML
from tests.conftest import LOW_RISK, MEDIUM_RISK, PASSWORD, dialog_sha256, policy_version_sha256
from tests.samples import sample_bytes
from tests.scenarios.driver import (
    Pipeline,
    assert_error,
    dsse_envelope,
    junit_passing,
    open_change_request,
    sign_promotion,
    slsa_statement,
)

# ---------------------------------------------------------------- what CI sends


PASSING_JUNIT = junit_passing(("test_amber_threshold", "REQ-001"), ("test_red_threshold", "REQ-001"))


def cyclonedx(*components: tuple[str, dict]) -> bytes:
    """A CycloneDX 1.5 SBOM; each component is (name, its `licenses` entry)."""
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "version": 1,
            "components": [
                {
                    "type": "library",
                    "name": name,
                    "version": "1.0.0",
                    "purl": f"pkg:pypi/{name}@1.0.0",
                    "licenses": [licence],
                }
                for name, licence in components
            ],
        }
    ).encode()


# `MIT OR GPL-3.0-only` names a denied id, yet MIT is a choice the policy allows.
DUAL_LICENSED_SBOM = cyclonedx(
    ("requests", {"license": {"id": "Apache-2.0"}}),
    ("dual-licensed-lib", {"expression": "MIT OR GPL-3.0-only"}),
)
GPL_ONLY_SBOM = cyclonedx(("copyleft-lib", {"license": {"id": "GPL-3.0-only"}}))


def grype_scan(*matches: tuple[str, str]) -> bytes:
    """A Grype scan with one match per (vulnerability id, severity)."""
    return json.dumps(
        {
            "descriptor": {"name": "grype", "version": "0.94.0"},
            "source": {"type": "image", "target": {"userInput": "ghcr.io/acme/rsd:7.2.4"}},
            "matches": [
                {
                    "vulnerability": {
                        "id": vuln_id,
                        "severity": severity,
                        "fix": {"state": "fixed", "versions": ["9"]},
                    },
                    "artifact": {"name": "zlib", "version": "1.2.3", "purl": "pkg:deb/debian/zlib@1.2.3"},
                }
                for vuln_id, severity in matches
            ],
        }
    ).encode()


# One low finding: nothing a blocking gate refuses, but the informational `low-vulns` gate fails on it.
LOW_SCAN = grype_scan(("CVE-2024-0001", "Low"))
EMPTY_SARIF = json.dumps(
    {
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{"tool": {"driver": {"name": "semgrep", "rules": []}}, "results": []}],
    }
).encode()


def openvex_not_affected(digest: str, vuln_id: str, *, document: str = "rsd-1") -> bytes:
    return json.dumps(
        {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": f"https://acme.example/vex/{document}",
            "author": "Acme Product Security",
            "timestamp": "2026-11-01T10:00:00Z",
            "version": 1,
            "statements": [
                {
                    "vulnerability": {"name": vuln_id},
                    "products": [{"@id": digest}],
                    "status": "not_affected",
                    "justification": "vulnerable_code_not_in_execute_path",
                }
            ],
        }
    ).encode()


def ready_artifact(ci, signing_key, run: str) -> str:
    """An artifact with passing tests, a clean SBOM and scan, and signed provenance from the allowed builder."""
    digest = ci.built_artifact(run)
    for evidence_type, content in (
        ("junit", PASSING_JUNIT),
        ("cyclonedx", DUAL_LICENSED_SBOM),
        ("grype", LOW_SCAN),
        ("dsse", dsse_envelope(signing_key, slsa_statement(digest))),
    ):
        processed = ci.processed(digest, evidence_type, content)
        assert processed["state"] == "parsed", processed
    return digest


def promote_to(api, ci, cast, version, environment) -> dict:
    response = ci.promote(version, environment, client=api(cast["rory"]))
    assert response.status_code == 201, response.content
    return response.json()


def staged_release(api, ci, signing_key, cast, *, version, run) -> tuple[str, dict]:
    """A low-tier release approved into integration and staging; returns its digest and change request."""
    digest = ready_artifact(ci, signing_key, run)
    change_request = open_change_request(api, cast["rory"], LOW_RISK)
    ci.release(version, [digest], [change_request["id"]])
    for environment in ("integration", "staging"):
        promoted = promote_to(api, ci, cast, version, environment)
        assert promoted["state"] == "approved", promoted["status"]["reasons"]
    return digest, change_request


def gate(status: dict, gate_id: str) -> dict:
    found = [g for g in status["gates"] if g["id"] == gate_id]
    assert len(found) == 1, (gate_id, [g["id"] for g in status["gates"]])
    return found[0]


def assert_gate(status: dict, gate_id: str, *, kind: str, blocking: bool, state: str, says: str = "") -> dict:
    """A gate entry of the status answer: kind, blocking flag, status, and a sentence a person can act on."""
    entry = gate(status, gate_id)
    assert entry["kind"] == kind, entry
    assert entry["blocking"] is blocking, entry
    assert entry["status"] == state, entry
    assert isinstance(entry["detail"], str) and len(entry["detail"].split()) >= 3, entry
    if says:
        assert says.lower() in entry["detail"].lower(), entry
    return entry


# ---------------------------------------------------------------- policies as files


def write_policy(tmp_path, text: str, name: str = "rsd-policy.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_policy(path, *, author="polly", reason="Tighten production gates after the Q3 audit"):
    """Run `manage.py load_policy`; returns (exit code, stdout, stderr)."""
    import io

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("load_policy", product="rsd", file=str(path), reason=reason, author=author, stdout=out, stderr=err)
        code = 0
    except CommandError as error:
        code = error.returncode or 1
        err.write(str(error))
    except SystemExit as exit_:
        code = exit_.code or 0
    return code, out.getvalue(), err.getvalue()


def sign_policy(version: PolicyVersion, signer, ci: Pipeline | None = None) -> None:
    """A quality reviewer signs a proposed version (Part 11 re-authentication), which activates it; with `ci`, the
    transaction commits as in production, so the open promotions it touches are judged again under the new rules."""

    def activate():
        services.policy_version_sign(
            policy_version=version,
            signer=signer,
            username=signer.username,
            password=PASSWORD,
            seen_sha256=policy_version_sha256(version),
        )

    if ci is None:
        activate()
        return
    with ci.capture(execute=True):
        activate()


def latest_policy(product) -> PolicyVersion:
    return product.policy_versions.order_by("-version").first()


# The default policy with the production approval window shortened and the staging CR gate's sentence reworded:
# a small, reviewable change whose diff is two lines.
POLICY_V2 = DEFAULT_POLICY_YAML.replace("valid_for_hours: 72 ", "valid_for_hours: 48 ").replace(
    'description: "Every change request delivered by the release is approved"}\n\n  production:',
    'description: "Every change request in the release is approved before staging"}\n\n  production:',
)


def test_load_policy_proposes_a_version_that_takes_effect_only_when_a_quality_reviewer_signs(
    api, ci, signing_key, cast, product, tmp_path
):
    assert POLICY_V2 != DEFAULT_POLICY_YAML
    digest, _ = staged_release(api, ci, signing_key, cast, version="7.2.0", run="101")
    promote_to(api, ci, cast, "7.2.0", "production")
    before = ci.answer(digest, "production")
    assert before["policy"]["version"] == 1, before["policy"]

    code, out, err = load_policy(write_policy(tmp_path, POLICY_V2))
    assert code == 0, err
    proposed = latest_policy(product)
    assert proposed.version == 2
    assert proposed.state == PolicyVersion.State.PROPOSED
    assert proposed.sha256 == hashlib.sha256(POLICY_V2.encode()).hexdigest()
    assert proposed.sha256 in out
    assert proposed.author.username == "polly"  # a quality reviewer: who may propose by default
    assert proposed.reason == "Tighten production gates after the Q3 audit"

    # Proposed is not active: decisions still use v1.
    assert services.active_policy(product).version == 1
    assert ci.answer(digest, "production")["policy"]["version"] == 1

    # Loading the very same file again stores nothing new.
    code, out, _ = load_policy(write_policy(tmp_path, POLICY_V2))
    assert code == 0
    assert product.policy_versions.count() == 2
    assert "nothing new" in out

    # A quality reviewer signs: v2 is active and new decisions record it (and its digest).
    sign_policy(proposed, cast["quinn"], ci)
    after = ci.answer(digest, "production")
    assert after["policy"] == {"name": "rsd", "version": 2, "digest": f"sha256:{proposed.sha256}"}, after["policy"]
    assert services.active_policy(product).version == 2
    assert ci.history(digest, "production")[0]["policy_version"] == 2


def test_the_policy_author_cannot_activate_their_own_version(cast, product, tmp_path):
    load_policy(write_policy(tmp_path, POLICY_V2), author="quinn")
    proposed = latest_policy(product)
    with pytest.raises(Exception, match="author"):
        sign_policy(proposed, cast["quinn"])
    proposed.refresh_from_db()
    assert proposed.state == PolicyVersion.State.PROPOSED


def test_a_quality_reviewer_can_sign_a_proposed_policy_in_the_browser(client, cast, product, tmp_path):
    load_policy(write_policy(tmp_path, POLICY_V2))
    client.force_login(cast["quinn"])
    page = client.get("/products/rsd/policy")
    assert page.status_code == 200
    html = page.content.decode()
    # Part 11: the reviewer re-enters the password when signing.
    assert re.search(r'<form[^>]*method="post"', html, re.I), "no form to sign the proposed version"
    assert 'type="password"' in html

    signed = client.post(
        "/products/rsd/policy/2/sign",
        {
            "username": "quinn",
            "password": PASSWORD,
            "comment": "Reviewed",
            "content_sha256": dialog_sha256(html, "/products/rsd/policy/2/sign"),
        },
        follow=True,
    )
    assert "rsd policy v2 is now the active policy" in signed.content.decode()
    assert services.active_policy(product).version == 2


BROKEN_POLICY = """\
policy: rsd
risk:
  questions:
    patient_safety_impact: {none: 0, direct: 4}
  tiers:
    - {tier: high, min_score: 4}
    - {tier: low, min_score: 0}
change_approval:
  low: {auto: true}
  high: {roles: [quality], count: 1}
environments:
  staging:
    after: integration
    gates:
      - {id: unit-tests, kind: tests, max_failures: 0}
      - {id: coverage, kind: coverage, min_line_rate: "high"}
      - {id: fuzz, kind: fuzzing}
      - id: few-skipped
        kind: cel
        expression: "tests.skipped * 10 <="
        description: "No more than 10% of the tests were skipped"
  production:
    after: qa
    gates: []
break_glas: {roles: [sre]}
"""


def test_an_invalid_policy_file_lists_every_error_by_line_and_exits_non_zero(product, cast, tmp_path):
    path = write_policy(tmp_path, BROKEN_POLICY)
    code, out, err = load_policy(path)
    assert code != 0
    report = err
    expected = {
        # (line, words the message must contain)
        13: ("environments.staging.after", "integration"),
        15: ("max_failures", "unknown"),
        16: ("min_line_rate",),
        17: ("fuzzing",),
        20: ("expression", "cel"),
        23: ("environments.production.after", "qa"),
        25: ("break_glas", "unknown"),
    }
    lines = [line for line in report.splitlines() if re.search(r":\d+:", line)]
    for number, words in expected.items():
        matching = [line for line in lines if f":{number}:" in line]
        assert matching, f"no error reported at line {number}:\n{report}"
        assert all(any(w.lower() in line.lower() for line in matching) for w in words), (number, words, report)
    # Nothing was stored, and v1 is still the active policy.
    assert product.policy_versions.count() == 1
    assert services.active_policy(product).version == 1


def test_the_policy_history_page_lists_versions_and_the_diff_page_shows_the_changed_lines(
    client, cast, product, tmp_path
):
    load_policy(write_policy(tmp_path, POLICY_V2))
    v2 = latest_policy(product)
    client.force_login(cast["audrey"])
    history = client.get("/products/rsd/policy")
    assert history.status_code == 200
    html = history.content.decode()
    assert "v1" in html and "v2" in html
    assert v2.sha256[:16] in html
    assert "Tighten production gates after the Q3 audit" in html
    assert "Quentin Quality-Lead" in html  # v1's approval signature is shown

    diff = client.get("/products/rsd/policy/diff", {"a": 1, "b": 2})
    assert diff.status_code == 200
    html = diff.content.decode()
    assert "valid_for_hours: 72" in html and "valid_for_hours: 48" in html
    assert "Every change request in the release is approved before staging" in html
    # Only the two changed lines (and their context) are shown, not the whole document.
    assert "retrospective_review_hours" not in html

    assert client.get("/products/rsd/policy/diff", {"a": 1, "b": 9}).status_code == 404
    client.force_login(cast["olga"])
    assert client.get("/products/rsd/policy").status_code == 404


# ---------------------------------------------------------------- every gate kind


ALL_GATES_POLICY = """\
policy: rsd
risk:
  questions:
    patient_safety_impact: {none: 0, indirect: 2, direct: 4}
    data_sensitivity: {none: 0, internal: 1, phi: 2}
    user_impact: {none: 0, minor: 1, major: 2}
    rollback_complexity: {trivial: 0, moderate: 1, hard: 2}
  tiers:
    - {tier: critical, min_score: 7}
    - {tier: high, min_score: 4}
    - {tier: medium, min_score: 2}
    - {tier: low, min_score: 0}
change_approval:
  low: {auto: true}
  medium: {roles: [quality], count: 1}
  high: {roles: [quality, security], count: 2}
  critical: {roles: [quality, security, product], count: 3}
environments:
  integration:
    gates:
      - {id: tests, kind: tests, max_failed: 0, min_total: 1}
      - {id: coverage, kind: coverage, min_line_rate: 0.9}
      - {id: static, kind: static_analysis, max: {critical: 0, high: 0, medium: 0, low: 0, unknown: 0}}
      - {id: vulns, kind: vulnerabilities, max: {critical: 0, high: 0}}
      - {id: licences, kind: licenses, deny: [GPL-3.0-only, AGPL-3.0-only], allow: [MIT, Apache-2.0]}
      - {id: sbom, kind: sbom}
      - {id: signed, kind: signature}
      - id: provenance
        kind: provenance
        builder_ids: ["https://ci.example/acme/rsd/release.yml@refs/heads/main"]
      - {id: trace, kind: traceability, require: [requirements_tested]}
      - {id: change-requests, kind: change_requests}
      - {id: release-note, kind: evidence, names: [release-note.md]}
      - id: no-failures
        kind: cel
        expression: "tests.failed == 0 && tests.total >= 2"
        description: "At least two tests ran and none failed"
      - {id: low-vulns, kind: vulnerabilities, max: {low: 0}, blocking: false,
         description: "Low vulnerabilities, for the reviewers' judgement"}
      - id: many-tests
        kind: cel
        expression: "tests.total >= 1000"
        description: "A thousand tests ran"
        blocking: false
  staging:
    after: integration
  production:
    after: staging
    approval:
      roles_by_tier: {low: [quality], medium: [quality], high: [quality, security], critical: [quality, security]}
      valid_for_hours: 72
"""

BLOCKING_KINDS = {
    "tests": "tests",
    "coverage": "coverage",
    "static": "static_analysis",
    "vulns": "vulnerabilities",
    "licences": "licenses",
    "sbom": "sbom",
    "signed": "signature",
    "provenance": "provenance",
    "trace": "traceability",
    "change-requests": "change_requests",
    "release-note": "evidence",
    "no-failures": "cel",
}

REQUIREMENTS_CSV = """id,kind,title,text,status,implements,mitigates
REQ-001,requirement,Score shown within 2 s,The dashboard shall show the score within 2 s.,approved,,
"""


@pytest.fixture
def all_gates_policy(api, ci_token, cast, product, tmp_path):
    """The policy above, loaded from its file and signed by the quality reviewer; REQ-001 must be tested."""
    code, _, err = load_policy(write_policy(tmp_path, ALL_GATES_POLICY, "all-gates.yaml"))
    assert code == 0, err
    sign_policy(latest_policy(product), cast["quinn"])
    imported = api(token=ci_token).post(
        "/api/v1/products/rsd/requirements/import",
        {"format": "csv", "file": SimpleUploadedFile("reqs.csv", REQUIREMENTS_CSV.encode())},
        format="multipart",
    )
    assert imported.status_code == 200, imported.content
    return latest_policy(product)


def good_artifact(ci, signing_key, run: str) -> str:
    digest = ready_artifact(ci, signing_key, run)
    for evidence_type, content, name in (
        ("cobertura", sample_bytes("coverage/cobertura-istanbul-flat.xml"), ""),
        ("sarif", EMPTY_SARIF, ""),
        ("generic", b"# rsd 8.0.0\n\nRecalibrated amber threshold (CR-1).\n", "release-note.md"),
    ):
        processed = ci.processed(digest, evidence_type, content, name=name)
        assert processed["state"] == "parsed", processed
    return digest


def test_every_gate_kind_passes_on_good_evidence(api, ci, signing_key, cast, all_gates_policy):
    digest = good_artifact(ci, signing_key, "201")
    change_request = open_change_request(api, cast["rory"], LOW_RISK)
    ci.release("8.0.0", [digest], [change_request["id"]])
    promote_to(api, ci, cast, "8.0.0", "integration")
    status = ci.answer(digest, "integration")
    assert status["policy"]["version"] == all_gates_policy.version
    for gate_id, kind in BLOCKING_KINDS.items():
        assert_gate(status, gate_id, kind=kind, blocking=True, state="pass")
    # `MIT OR GPL-3.0-only` has a choice (MIT) the allow-list permits, though GPL-3.0-only is denied.
    assert_gate(status, "licences", kind="licenses", blocking=True, state="pass", says="2 component")
    assert_gate(status, "provenance", kind="provenance", blocking=True, state="pass", says="github.com/acme/rsd")
    assert_gate(status, "no-failures", kind="cel", blocking=True, state="pass", says="condition holds")


def test_informational_gates_that_fail_never_block(api, ci, signing_key, cast, all_gates_policy):
    digest = good_artifact(ci, signing_key, "211")
    change_request = open_change_request(api, cast["rory"], LOW_RISK)
    ci.release("8.1.0", [digest], [change_request["id"]])
    promoted = promote_to(api, ci, cast, "8.1.0", "integration")
    status = ci.answer(digest, "integration")
    low = assert_gate(status, "low-vulns", kind="vulnerabilities", blocking=False, state="fail", says="1 low")
    assert "CVE-2024-0001" in low["detail"]
    assert_gate(status, "many-tests", kind="cel", blocking=False, state="fail", says="condition does not hold")
    assert status["decision"] == "allowed", status["reasons"]
    assert promoted["state"] == "approved"
    # Blocking gates are listed before informational ones.
    flags = [g["blocking"] for g in status["gates"]]
    assert flags == sorted(flags, reverse=True), flags


def test_every_gate_kind_fails_or_is_missing_on_bad_evidence(api, ci, signing_key, cast, all_gates_policy):
    digest = ci.built_artifact("221")
    for evidence_type, content, name in (
        # Real tool output: Maven Surefire with two failures, coverage.py at 80 %, CodeQL findings,
        # and a Grype scan of busybox with a critical and ten high vulnerabilities.
        ("junit", sample_bytes("junit/TEST-action.surefire.report.calc.StringUtilsTest.xml"), ""),
        ("cobertura", sample_bytes("coverage/cobertura-coveragepy-branch.xml"), ""),
        ("sarif", sample_bytes("sarif/codeql-2.19.0-ruby.sarif"), ""),
        ("grype", sample_bytes("vulns/grype-0.94-busybox-epss.json"), ""),
        ("cyclonedx", GPL_ONLY_SBOM, ""),
    ):
        processed = ci.processed(digest, evidence_type, content, name=name)
        assert processed["state"] == "parsed", processed
    # A medium change request, submitted but not signed: not approved.
    change_request = open_change_request(api, cast["rory"], MEDIUM_RISK)
    ci.release("8.2.0", [digest], [change_request["id"]])
    promoted = promote_to(api, ci, cast, "8.2.0", "integration")
    assert promoted["state"] == "awaiting_approval"
    status = ci.answer(digest, "integration")
    assert status["decision"] == "blocked"

    assert_gate(status, "tests", kind="tests", blocking=True, state="fail", says="2 test(s) failed")
    assert_gate(status, "coverage", kind="coverage", blocking=True, state="fail", says="below the required 90%")
    assert_gate(status, "static", kind="static_analysis", blocking=True, state="fail")
    vulns = assert_gate(status, "vulns", kind="vulnerabilities", blocking=True, state="fail", says="1 critical")
    assert "CVE-" in vulns["detail"]
    assert_gate(status, "licences", kind="licenses", blocking=True, state="fail", says="GPL-3.0-only")
    assert_gate(status, "sbom", kind="sbom", blocking=True, state="pass")
    assert_gate(status, "signed", kind="signature", blocking=True, state="missing", says="registered key")
    assert_gate(status, "provenance", kind="provenance", blocking=True, state="missing", says="provenance")
    assert_gate(status, "trace", kind="traceability", blocking=True, state="fail", says="requirements_tested")
    assert_gate(
        status, "change-requests", kind="change_requests", blocking=True, state="fail", says=change_request["id"]
    )
    assert_gate(status, "release-note", kind="evidence", blocking=True, state="missing", says="release-note.md")
    assert_gate(status, "no-failures", kind="cel", blocking=True, state="fail", says="condition does not hold")
    # Every failing blocking gate is a reason a person can act on.
    reasons = " ".join(status["reasons"])
    for gate_id in ("tests", "vulns", "licences", "signed", "provenance"):
        assert gate_id in reasons, (gate_id, status["reasons"])


def test_provenance_from_a_builder_outside_the_allow_list_fails(api, ci, signing_key, cast, all_gates_policy):
    rogue = "https://github.com/someone-else/fork/.github/workflows/release.yml@refs/heads/main"
    other = ci.built_artifact("232")
    processed = ci.processed(other, "dsse", dsse_envelope(signing_key, slsa_statement(other, builder_id=rogue)))
    assert processed["state"] == "parsed" and processed["verdict"] == "signed", processed
    ci.release("8.3.0", [other], [])
    promote_to(api, ci, cast, "8.3.0", "integration")
    status = ci.answer(other, "integration")
    entry = assert_gate(status, "provenance", kind="provenance", blocking=True, state="fail", says="allow-list")
    assert rogue in entry["detail"]
    # The statement is signed by a registered key, so the signature gate itself passes.
    assert_gate(status, "signed", kind="signature", blocking=True, state="pass")


def test_a_vex_statement_suppresses_a_vulnerability_only_when_signed(api, ci, signing_key, cast, all_gates_policy):
    digest = good_artifact(ci, signing_key, "241")
    ci.processed(digest, "grype", grype_scan(("CVE-2024-9999", "Critical")))
    ci.release("8.4.0", [digest], [open_change_request(api, cast["rory"], LOW_RISK)["id"]])
    promote_to(api, ci, cast, "8.4.0", "integration")
    assert_gate(ci.answer(digest, "integration"), "vulns", kind="vulnerabilities", blocking=True, state="fail")

    vex = openvex_not_affected(digest, "CVE-2024-9999")
    unsigned = ci.processed(digest, "openvex", vex)
    assert unsigned["state"] == "parsed" and unsigned["verdict"] == "unsigned", unsigned
    status = ci.answer(digest, "integration")
    assert_gate(status, "vulns", kind="vulnerabilities", blocking=True, state="fail", says="CVE-2024-9999")

    # The security team's signed statement (its own document) does suppress it.
    signed_vex = openvex_not_affected(digest, "CVE-2024-9999", document="rsd-2")
    signed = ci.processed(digest, "openvex", signed_vex, signature=base64.b64encode(signing_key.sign(signed_vex)))
    assert signed["verdict"] == "signed", signed
    status = ci.answer(digest, "integration")
    assert_gate(status, "vulns", kind="vulnerabilities", blocking=True, state="pass", says="0 critical")


def test_the_same_vex_uploaded_again_with_its_signature_suppresses(api, ci, signing_key, cast, all_gates_policy):
    digest = good_artifact(ci, signing_key, "245")
    ci.processed(digest, "grype", grype_scan(("CVE-2024-9999", "Critical")))
    vex = openvex_not_affected(digest, "CVE-2024-9999")
    assert ci.processed(digest, "openvex", vex)["verdict"] == "unsigned"
    signed = ci.processed(digest, "openvex", vex, signature=base64.b64encode(signing_key.sign(vex)))
    assert signed["verdict"] == "signed", signed


# ---------------------------------------------------------------- releases


def test_a_release_is_frozen_with_a_baseline_at_its_first_promotion_request(api, ci, signing_key, cast):
    digest = ready_artifact(ci, signing_key, "301")
    change_request = open_change_request(api, cast["rory"], LOW_RISK)
    ci.release("7.3.0", [digest], [change_request["id"]])
    release = api(cast["audrey"]).get("/api/v1/releases/rsd/7.3.0").json()
    assert release["frozen"] is False and not release["manifest_sha256"]
    assert not [b for b in api(cast["audrey"]).get("/api/v1/products/rsd/baselines").json() if b["release"] == "7.3.0"]

    promote_to(api, ci, cast, "7.3.0", "integration")
    release = api(cast["audrey"]).get("/api/v1/releases/rsd/7.3.0").json()
    assert release["frozen"] is True and release["frozen_at"]
    assert re.fullmatch(r"[0-9a-f]{64}", release["manifest_sha256"]), release
    assert release["manifest_signature"] and release["manifest_key_id"]
    baselines = [b for b in api(cast["audrey"]).get("/api/v1/products/rsd/baselines").json() if b["release"] == "7.3.0"]
    assert len(baselines) == 1 and re.fullmatch(r"[0-9a-f]{64}", baselines[0]["sha256"]), baselines

    # The same version cannot be created again with other content (a rebuilt artifact means a new release).
    assert_error(ci.release("7.3.0", [digest], [], expect=None), 409)


def test_editing_a_frozen_release_is_409_naming_its_state(api, ci, signing_key, cast):
    digest = ready_artifact(ci, signing_key, "311")
    ci.release("7.3.1", [digest], [])
    promote_to(api, ci, cast, "7.3.1", "integration")
    response = api(cast["rory"]).patch(
        "/api/v1/releases/rsd/7.3.1", {"change_requests": [], "artifacts": [digest]}, format="json"
    )
    body = assert_error(response, 409)
    assert "frozen" in body["detail"], body


# ---------------------------------------------------------------- promotions


def test_a_promotion_goes_requested_awaiting_approved_deployed(api, ci, signing_key, cast):
    digest, _ = staged_release(api, ci, signing_key, cast, version="7.4.0", run="401")
    promotion = promote_to(api, ci, cast, "7.4.0", "production")
    assert re.fullmatch(r"PRM-\d+", promotion["id"])
    assert promotion["state"] == "awaiting_approval"
    assert promotion["status"]["decision"] == "pending"
    assert promotion["status"]["approvals"]["missing"] == ["quality"]
    assert ci.answer(digest, "production")["decision"] == "pending"

    signed = sign_promotion(api, cast["quinn"], promotion["id"])
    assert signed.status_code == 201, signed.content
    detail = api(cast["audrey"]).get(f"/api/v1/promotions/{promotion['id']}").json()
    assert detail["state"] == "approved"
    assert ci.answer(digest, "production")["decision"] == "allowed"

    deployed = ci.deploy(digest, "production")
    assert deployed.status_code == 201 and deployed.json()["authorised"] is True, deployed.content
    assert api(cast["audrey"]).get(f"/api/v1/promotions/{promotion['id']}").json()["state"] == "deployed"

    # The audit trail shows every step of the state machine.
    events = api(cast["audrey"]).get("/api/v1/audit-events", {"object": promotion["id"]})
    assert events.status_code == 200, events.content
    body = events.json()
    rows = body.get("results", body.get("events", [])) if isinstance(body, dict) else body
    actions = [row["action"] for row in rows]
    for step in ("promotion.requested", "promotion.awaiting_approval", "promotion.approved", "promotion.deployed"):
        assert step in actions, (step, actions)


def test_production_blocks_a_digest_never_promoted_to_staging_with_an_actionable_reason(api, ci, signing_key, cast):
    digest = ready_artifact(ci, signing_key, "411")
    ci.release("7.4.1", [digest], [open_change_request(api, cast["rory"], LOW_RISK)["id"]])
    promote_to(api, ci, cast, "7.4.1", "integration")
    promotion = promote_to(api, ci, cast, "7.4.1", "production")
    assert promotion["state"] == "awaiting_approval"
    status = ci.answer(digest, "production")
    assert status["decision"] == "blocked"
    order = assert_gate(status, "after-staging", kind="promotion_order", blocking=True, state="fail")
    assert "never approved in staging" in order["detail"] and "promote" in order["detail"], order
    assert any("staging" in reason for reason in status["reasons"]), status["reasons"]
    # Even a quality signature does not open it.
    sign_promotion(api, cast["quinn"], promotion["id"])
    assert ci.answer(digest, "production")["decision"] == "blocked"


def test_a_rebuilt_artifact_cannot_ride_on_the_old_staging_promotion(api, ci, signing_key, cast):
    staged_digest, change_request = staged_release(api, ci, signing_key, cast, version="7.5.0", run="501")
    assert ci.answer(staged_digest, "staging")["decision"] == "allowed"
    # The same source rebuilt: a new digest in a new release, straight to production.
    rebuilt = ready_artifact(ci, signing_key, "501-rebuild")
    assert rebuilt != staged_digest
    ci.release("7.5.0-rebuild", [rebuilt], [change_request["id"]])
    promote_to(api, ci, cast, "7.5.0-rebuild", "integration")
    promotion = promote_to(api, ci, cast, "7.5.0-rebuild", "production")
    status = ci.answer(rebuilt, "production")
    assert status["decision"] == "blocked"
    order = gate(status, "after-staging")
    assert order["status"] == "fail" and "rebuilt artifact starts again" in order["detail"], order
    assert sign_promotion(api, cast["quinn"], promotion["id"]).status_code == 201
    assert ci.answer(rebuilt, "production")["decision"] == "blocked"
    deployed = ci.deploy(rebuilt, "production")
    assert deployed.status_code == 201 and deployed.json()["authorised"] is False


def test_an_open_promotion_of_an_older_release_is_superseded_when_a_newer_release_is_deployed(
    api, ci, signing_key, cast
):
    """docs/approvals.md: superseded means a newer release was deployed to the environment first."""
    old_digest, _ = staged_release(api, ci, signing_key, cast, version="7.6.0", run="601")
    old = promote_to(api, ci, cast, "7.6.0", "production")
    new_digest, _ = staged_release(api, ci, signing_key, cast, version="7.6.1", run="602")
    new = promote_to(api, ci, cast, "7.6.1", "production")
    assert sign_promotion(api, cast["quinn"], new["id"]).status_code == 201
    assert ci.deploy(new_digest, "production").json()["authorised"] is True

    assert api(cast["audrey"]).get(f"/api/v1/promotions/{old['id']}").json()["state"] == "superseded"
    status = ci.answer(old_digest, "production")
    assert status["decision"] == "blocked"
    assert any("superseded" in reason for reason in status["reasons"]), status["reasons"]
    # A superseded promotion can no longer be signed.
    assert_error(sign_promotion(api, cast["quinn"], old["id"]), 409)


def test_a_second_promotion_of_the_same_release_and_environment_is_409_naming_the_open_one(api, ci, signing_key, cast):
    staged_release(api, ci, signing_key, cast, version="7.6.5", run="605")
    first = promote_to(api, ci, cast, "7.6.5", "production")
    body = assert_error(ci.promote("7.6.5", "production", client=api(cast["rory"])), 409)
    assert first["id"] in body["detail"] and "awaiting approval" in body["detail"], body


def test_an_approved_promotion_whose_approvals_lapse_before_deployment_expires(api, ci, signing_key, cast):
    digest, _ = staged_release(api, ci, signing_key, cast, version="7.7.0", run="701")
    promotion = promote_to(api, ci, cast, "7.7.0", "production")
    assert sign_promotion(api, cast["quinn"], promotion["id"]).status_code == 201
    assert api(cast["audrey"]).get(f"/api/v1/promotions/{promotion['id']}").json()["state"] == "approved"

    # Beat runs this; 73 hours later the 72-hour approval has lapsed.
    expired = approval_services.promotions_expire(at=datetime.now(UTC) + timedelta(hours=73))
    assert promotion["id"] in expired
    assert api(cast["audrey"]).get(f"/api/v1/promotions/{promotion['id']}").json()["state"] == "expired"
    status = ci.answer(digest, "production")
    assert status["decision"] == "blocked"
    assert ci.deploy(digest, "production").json()["authorised"] is False


def test_a_rejection_with_a_reason_ends_the_promotion(api, ci, signing_key, cast):
    digest, _ = staged_release(api, ci, signing_key, cast, version="7.8.0", run="801")
    promotion = promote_to(api, ci, cast, "7.8.0", "production")
    without_reason = sign_promotion(api, cast["quinn"], promotion["id"], meaning="rejected", comment="")
    assert_error(without_reason, 400)
    rejected = sign_promotion(
        api, cast["quinn"], promotion["id"], meaning="rejected", comment="The clinical panel has not reviewed it."
    )
    assert rejected.status_code == 201, rejected.content
    assert api(cast["audrey"]).get(f"/api/v1/promotions/{promotion['id']}").json()["state"] == "rejected"
    status = ci.answer(digest, "production")
    assert status["decision"] == "blocked"
    assert any("clinical panel" in reason for reason in status["reasons"]), status["reasons"]
    # It is over: no further signature, and a new request is a new promotion.
    assert_error(sign_promotion(api, cast["sasha"], promotion["id"]), 409)
    again = promote_to(api, ci, cast, "7.8.0", "production")
    assert again["id"] != promotion["id"]


# ---------------------------------------------------------------- decisions


def test_every_stored_decision_records_its_policy_version_and_replays_after_a_new_version(
    api, ci, signing_key, cast, product, tmp_path
):
    digest, _ = staged_release(api, ci, signing_key, cast, version="7.9.0", run="901")
    promotion = promote_to(api, ci, cast, "7.9.0", "production")
    assert ci.answer(digest, "production")["decision"] == "pending"
    assert sign_promotion(api, cast["quinn"], promotion["id"]).status_code == 201
    assert ci.answer(digest, "production")["decision"] == "allowed"
    under_v1 = ci.history(digest, "production")
    assert {d["decision"] for d in under_v1} >= {"pending", "allowed"}
    assert all(d["policy_version"] == 1 for d in under_v1), under_v1

    code, _, err = load_policy(write_policy(tmp_path, POLICY_V2))
    assert code == 0, err
    sign_policy(latest_policy(product), cast["quinn"], ci)
    now = ci.answer(digest, "production")
    assert now["policy"]["version"] == 2
    history = ci.history(digest, "production")
    assert all(isinstance(d["policy_version"], int) for d in history), history
    assert history[0]["policy_version"] == 2

    # A decision made under v1 replays with v1 and its recorded inputs to the same answer.
    for stored in Decision.objects.filter(policy_version__version=1, artifact__digest=digest):
        replayed = approval_status.decision_replay(stored)
        assert replayed["matches"], (stored.decision, replayed["decision"])
        assert replayed["decision"] == stored.decision
