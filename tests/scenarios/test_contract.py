"""Scenarios a CI engineer writes against the public API contract (DESIGN §7) and nothing else.

People, products, tokens and the policy come from the fixed cast; everything after that goes through HTTP
exactly as §7 documents it: paths, methods, field names, status codes and the error shape
`{"error": "<code>", "detail": "<sentence>", ...}`. A test marked xfail(strict) asserts the contract where
Custody differs from it; its reason says how.
"""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from datetime import datetime

import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from changecontrol import roles
from changecontrol.models import Role
from tests.conftest import CI_SCOPES, HIGH_RISK, LOW_RISK, MEDIUM_RISK, PASSWORD, make_user
from tests.samples import sample_bytes
from tests.scenarios.driver import (
    BUILDER_ID,
    assert_error,
    content_sha256_of,
    digest_of,
    dsse_envelope,
    junit_passing,
    open_change_request,
    sign_change_request,
    sign_promotion,
    slsa_statement,
)

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


# ---------------------------------------------------------------- what CI sends


CLEAN_SBOM = json.dumps(
    {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "components": [
            {
                "type": "library",
                "name": "requests",
                "version": "2.32.3",
                "purl": "pkg:pypi/requests@2.32.3",
                "licenses": [{"license": {"id": "Apache-2.0"}}],
            }
        ],
    }
).encode()

# A Grype scan with one low finding: nothing the production gates refuse.
CLEAN_SCAN = json.dumps(
    {
        "descriptor": {"name": "grype", "version": "0.94.0"},
        "source": {"type": "image", "target": {"userInput": "ghcr.io/acme/rsd:7.2.4"}},
        "matches": [
            {
                "vulnerability": {
                    "id": "CVE-2024-0001",
                    "severity": "Low",
                    "fix": {"state": "fixed", "versions": ["1.2.4"]},
                },
                "artifact": {"name": "zlib", "version": "1.2.3", "purl": "pkg:deb/debian/zlib@1.2.3"},
            }
        ],
    }
).encode()


def ready_artifact(ci, signing_key, run: str, *, commits=(), builder_identity: str = BUILDER_ID) -> str:
    """Build, register and upload passing evidence for one artifact; returns its digest."""
    build = ci.build(run, commits=commits, builder_identity=builder_identity)
    digest = digest_of(f"scoring-service-{run}")
    ci.artifact(digest, build["id"])
    for evidence_type, content in (
        ("junit", junit_passing(("test_amber_threshold", None), ("test_red_threshold", None))),
        ("cyclonedx", CLEAN_SBOM),
        ("grype", CLEAN_SCAN),
        ("dsse", dsse_envelope(signing_key, slsa_statement(digest))),
    ):
        processed = ci.evidence(ci.upload(digest, evidence_type, content))
        assert processed["state"] == "parsed", processed
    return digest


CHANGE_REVIEWERS = {"low": (), "medium": ("quinn",), "high": ("quinn", "sasha")}


def approved_change_request(api, cast, requester="rory", answers=LOW_RISK) -> dict:
    """A submitted change request with the signatures its tier needs (low is approved automatically)."""
    change_request = open_change_request(api, cast[requester], answers)
    for reviewer in CHANGE_REVIEWERS[change_request["tier"]]:
        signed = sign_change_request(api, cast[reviewer], change_request["id"])
        assert signed.status_code == 201, signed.content
    return change_request


def promote_through(api, ci, cast, version, environments=("integration", "staging")) -> None:
    """Promotions that need no signature: each is approved at once when its gates pass."""
    for environment in environments:
        response = ci.promote(version, environment, client=api(cast["rory"]))
        assert response.status_code == 201, response.content
        assert response.json()["state"] == "approved", response.json()["status"]["reasons"]


def shipped_release(api, ci, signing_key, cast, *, version, run) -> str:
    """A release approved into staging (low tier); returns its digest."""
    digest = ready_artifact(ci, signing_key, run)
    ci.release(version, [digest], [approved_change_request(api, cast)["id"]])
    promote_through(api, ci, cast, version)
    return digest


def release_at_production(api, ci, signing_key, cast, *, version, run, answers=LOW_RISK, requester="rory", **build):
    """A release promoted through integration and staging, and requested for production; returns the promotion."""
    digest = ready_artifact(ci, signing_key, run, **build)
    change_request = approved_change_request(api, cast, requester, answers)
    ci.release(version, [digest], [change_request["id"]])
    promote_through(api, ci, cast, version)
    response = ci.promote(version, "production", client=api(cast["rory"]))
    assert response.status_code == 201, response.content
    return digest, change_request, response.json()


# ---------------------------------------------------------------- 1. the whole CI flow


def test_ci_flow_from_build_to_an_authorised_production_deployment(api, ci, signing_key, cast):
    # 1. The build: a re-run job registering the same pipeline URL gets the same build back.
    build = ci.build("101", commits=[{"sha": "a" * 40, "author_email": "alice@example.test", "message": "CR-1"}])
    assert re.fullmatch(r"rsd-b\d+", build["id"]), build["id"]
    again = ci.build("101", commits=[], expect=200)
    assert again["id"] == build["id"]

    # 2. The artifact: idempotent on its digest; the same digest under another build is a conflict.
    digest = digest_of("scoring-service 7.2.4")
    first = ci.artifact(digest, build["id"])
    second = ci.artifact(digest, build["id"], expect=200)
    assert second.json()["digest"] == first.json()["digest"] == digest
    other_build = ci.build("102")
    assert_error(ci.artifact(digest, other_build["id"], expect=None), 409)

    # 3. Evidence of several types from real tools, then a passing report for this artifact; poll each until parsed.
    sample_digest = digest_of("scoring-service sample reports")
    ci.artifact(sample_digest, other_build["id"])
    for evidence_type, content in (
        ("junit", sample_bytes("junit/pytest-with-properties.xml")),
        ("cyclonedx", sample_bytes("sbom/cyclonedx-1.6-cyclonedx-py-pipenv.json")),
        ("sarif", sample_bytes("sarif/codeql-2.19.0-ruby.sarif")),
    ):
        processed = ci.evidence(ci.upload(sample_digest, evidence_type, content))
        assert processed["state"] == "parsed", processed
        assert processed["summary"], processed
    # The test report goes with a cosign sign-blob signature (base64) made by the registered release key.
    report = junit_passing(("test_amber_threshold", None), ("test_red_threshold", None))
    processed = ci.evidence(ci.upload(digest, "junit", report, signature=base64.b64encode(signing_key.sign(report))))
    assert (processed["state"], processed["verdict"]) == ("parsed", "signed"), processed
    for evidence_type, content in (
        ("cyclonedx", CLEAN_SBOM),
        ("grype", CLEAN_SCAN),
        ("sarif", sample_bytes("sarif/trivy-alpine-310.sarif")),
        ("dsse", dsse_envelope(signing_key, slsa_statement(digest))),
    ):
        processed = ci.evidence(ci.upload(digest, evidence_type, content))
        assert processed["state"] == "parsed", processed
    assert processed["verdict"] == "signed", processed
    # The same bytes again (a re-run job) answer the evidence already on file.
    assert (
        ci.upload(digest, "cyclonedx", CLEAN_SBOM).json()["id"]
        == ci.upload(digest, "cyclonedx", CLEAN_SBOM).json()["id"]
    )

    # 4. The change request and the release, then the promotions in order.
    change_request = open_change_request(api, cast["rory"], HIGH_RISK)
    for reviewer in ("quinn", "sasha"):
        assert sign_change_request(api, cast[reviewer], change_request["id"]).status_code == 201
    release = ci.release("7.2.4", [digest], [change_request["id"]])
    assert release.json()["version"] == "7.2.4"
    # CI itself (releases:write) requests the promotions.
    for environment in ("integration", "staging"):
        response = ci.promote("7.2.4", environment)
        assert response.status_code == 201, response.content
        assert set(response.json()) >= {"id", "state", "status"}
        assert response.json()["state"] == "approved", response.json()["status"]["reasons"]
    response = ci.promote("7.2.4", "production")
    assert response.status_code == 201, response.content
    promotion = response.json()
    assert promotion["id"].startswith("PRM-")

    # 5. The gate says pending, naming the approvals still missing.
    status = ci.status(digest, "production").json()
    assert status["decision"] == "pending", status
    assert status["promotion"] == promotion["id"]
    assert sorted(status["approvals"]["missing"]) == ["quality", "security"], status["approvals"]
    assert [g for g in status["gates"] if g["blocking"] and g["status"] != "pass"] == [], status["gates"]

    # 6. The reviewers sign with re-authentication; the gate then allows.
    for reviewer in ("quinn", "sasha"):
        signed = sign_promotion(api, cast[reviewer], promotion["id"])
        assert signed.status_code == 201, signed.content
    detail = api(cast["audrey"]).get(f"/api/v1/promotions/{promotion['id']}")
    assert detail.status_code == 200
    assert detail.json()["state"] == "approved"
    status = ci.status(digest, "production").json()
    assert status["decision"] == "allowed", status
    assert status["approvals"]["missing"] == []

    # 7. CI deploys and records it.
    deployed = ci.deploy(digest, "production")
    assert deployed.status_code == 201, deployed.content
    body = deployed.json()
    assert body["id"].startswith("DEP-")
    assert body["authorised"] is True
    assert isinstance(body["reasons"], list)

    # 8. Every write made with the token is in the audit trail, naming the token; the chain verifies.
    trail = api(cast["audrey"]).get("/api/v1/audit-events", {"product": "rsd", "actor": "ci-rsd"})
    assert trail.status_code == 200
    actions = {event["action"] for event in trail.json() if event["via_token"]}
    assert {
        "build.registered",
        "artifact.registered",
        "evidence.uploaded",
        "release.created",
        "promotion.requested",
        "deployment.recorded",
    } <= actions, actions
    call_command("checkpoint_audit", stdout=io.StringIO())
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "Audit trail intact" in out.getvalue()


# ---------------------------------------------------------------- 2. the status object


STATUS_FIELDS = {
    "decision",
    "product",
    "release",
    "promotion",
    "environment",
    "policy",
    "gates",
    "approvals",
    "reasons",
    "evaluated_at",
}


def assert_status_document(status: dict) -> None:
    """Every documented field with its documented type (fields §7 does not name are reported elsewhere)."""
    assert set(status) == STATUS_FIELDS, set(status) ^ STATUS_FIELDS
    assert status["decision"] in ("allowed", "blocked", "pending")
    assert status["product"] == "rsd"
    assert {"name", "version", "digest"} <= set(status["policy"]), status["policy"]
    assert isinstance(status["policy"]["name"], str) and status["policy"]["name"]
    assert isinstance(status["policy"]["version"], int)
    assert isinstance(status["policy"]["digest"], str) and status["policy"]["digest"]
    assert isinstance(status["gates"], list) and status["gates"]
    for gate in status["gates"]:
        assert {"id", "kind", "blocking", "status", "detail"} <= set(gate), gate
        assert isinstance(gate["id"], str) and isinstance(gate["kind"], str)
        assert isinstance(gate["blocking"], bool)
        assert gate["status"] in ("pass", "fail", "missing"), gate
        assert isinstance(gate["detail"], str)
    assert {"required", "signed", "missing"} <= set(status["approvals"]), status["approvals"]
    for key in ("required", "signed", "missing"):
        assert isinstance(status["approvals"][key], list)
        assert all(isinstance(role, str) for role in status["approvals"][key]), status["approvals"]
    assert isinstance(status["reasons"], list)
    assert all(isinstance(reason, str) and reason for reason in status["reasons"])
    evaluated_at = datetime.fromisoformat(status["evaluated_at"].replace("Z", "+00:00"))
    assert evaluated_at.tzinfo is not None


def test_status_object_has_the_documented_fields_and_types(api, ci, signing_key, cast):
    digest, _, promotion = release_at_production(
        api, ci, signing_key, cast, version="7.3.0", run="201", answers=HIGH_RISK, requester="paula"
    )
    assert sign_promotion(api, cast["quinn"], promotion["id"]).status_code == 201
    response = ci.status(digest, "production")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    status = response.json()
    assert_status_document(status)
    assert (status["decision"], status["release"], status["promotion"], status["environment"]) == (
        "pending",
        "7.3.0",
        promotion["id"],
        "production",
    )
    assert status["approvals"] == {**status["approvals"], "required": ["quality", "security"], "signed": ["quality"]}
    assert status["approvals"]["missing"] == ["security"]
    assert any("security" in reason for reason in status["reasons"]), status["reasons"]
    # The promotion answer and the promotion record carry the same status object.
    assert_status_document(promotion["status"])
    assert_status_document(ci.client.get(f"/api/v1/promotions/{promotion['id']}").json()["status"])


def test_status_gates_and_approvals_have_every_documented_key(api, ci, signing_key, cast):
    """§7 grows by adding, never renaming: gates also carry `description`, approvals `signers` and `notes`."""
    digest, _, _ = release_at_production(api, ci, signing_key, cast, version="7.3.1", run="202")
    status = ci.status(digest, "production").json()
    assert status["gates"]
    assert all(set(gate) >= {"id", "kind", "blocking", "status", "detail"} for gate in status["gates"]), status["gates"]
    assert set(status["approvals"]) >= {"required", "signed", "missing"}


def test_status_of_a_digest_with_no_release_is_a_status_document_not_an_error(api, ci, cast):
    build = ci.build("203")
    digest = digest_of("never released")
    ci.artifact(digest, build["id"])
    response = ci.status(digest, "staging")
    assert response.status_code == 200, response.content
    status = response.json()
    assert status["decision"] in ("blocked", "pending")
    assert status["release"] is None and status["promotion"] is None
    assert status["reasons"], "a refusal must say why"


# ---------------------------------------------------------------- 3. promote, never rebuild


def test_production_refuses_a_digest_that_never_went_through_staging(api, ci, signing_key, cast):
    digest = ready_artifact(ci, signing_key, "301")
    change_request = open_change_request(api, cast["rory"], LOW_RISK)
    ci.release("7.4.0", [digest], [change_request["id"]])
    response = ci.promote("7.4.0", "production", client=api(cast["rory"]))
    if response.status_code == 201:
        assert response.json()["state"] != "approved"
        reasons = " ".join(response.json()["status"]["reasons"])
        status = ci.status(digest, "production").json()
        assert status["decision"] == "blocked", status
        reasons += " ".join(status["reasons"])
    else:
        body = assert_error(response, 409)
        reasons = body["detail"]
    assert "staging" in reasons, reasons

    # Deploying it anyway is recorded, unauthorised, with the same reason.
    deployed = ci.deploy(digest, "production")
    assert deployed.status_code == 201
    assert deployed.json()["authorised"] is False
    assert any("staging" in reason for reason in deployed.json()["reasons"]), deployed.json()


# ---------------------------------------------------------------- 4. separation of duties


def test_separation_of_duties_refuses_requester_change_author_commit_author_and_builder(
    api, ci, signing_key, cast, product, admin_user
):
    # Paula builds, Sasha authored a commit, Quinn requested the change; each also holds the quality role.
    for username in ("paula", "sasha"):
        roles.role_grant(actor=admin_user, user=cast[username], product=product, role=Role.QUALITY)
    digest, change_request, promotion = release_at_production(
        api,
        ci,
        signing_key,
        cast,
        version="7.5.0",
        run="401",
        requester="quinn",
        commits=[{"sha": "d" * 40, "author_email": "sasha@example.test", "message": "CR-1 tune amber"}],
        builder_identity="paula@example.test",
    )
    expected = {
        "rory": "requester",  # requested the promotion
        "quinn": "change",  # requested the change request the release delivers
        "sasha": "commit",  # wrote a commit in the release
        "paula": "builder",  # the build's identity
    }
    for username, rule_word in expected.items():
        response = sign_promotion(api, cast[username], promotion["id"])
        body = assert_error(response, 403)
        named = json.dumps(body)
        assert rule_word in named, (username, body)
    # Every refusal is in the audit trail with its rule.
    refusals = api(cast["audrey"]).get("/api/v1/audit-events", {"product": "rsd", "action": "signature.refused"})
    assert sorted(event["actor"] for event in refusals.json()) == sorted(
        cast[username].full_name for username in expected
    ), refusals.json()
    # None of those refusals counted.
    status = ci.status(digest, "production").json()
    assert status["approvals"]["signed"] == [] and status["decision"] == "pending", status["approvals"]

    # A wrong password signs nothing and says so; an independent reviewer then signs.
    vic = make_user_with_role(product, admin_user, "vic", Role.QUALITY)
    response = sign_promotion(api, vic, promotion["id"], password="not the password")
    body = assert_error(response, 403)
    assert "password" in body["detail"]
    assert ci.status(digest, "production").json()["approvals"]["signed"] == []
    assert sign_promotion(api, vic, promotion["id"]).status_code == 201
    assert ci.status(digest, "production").json()["decision"] == "allowed"


def make_user_with_role(product, admin_user, username, *grants):
    person = make_user(username, f"{username.title()} Reviewer")
    for role in grants:
        roles.role_grant(actor=admin_user, user=person, product=product, role=role)
    return person


def test_one_person_with_two_roles_counts_once(api, ci, signing_key, cast, product, admin_user):
    digest, _, promotion = release_at_production(
        api, ci, signing_key, cast, version="7.5.1", run="402", answers=HIGH_RISK, requester="paula"
    )
    vera = make_user_with_role(product, admin_user, "vera", Role.QUALITY, Role.SECURITY)
    assert sign_promotion(api, vera, promotion["id"]).status_code == 201
    status = ci.status(digest, "production").json()
    assert status["decision"] == "pending", status
    assert len(status["approvals"]["missing"]) == 1, status["approvals"]
    again = sign_promotion(api, vera, promotion["id"])
    assert again.status_code in (403, 409), again.content
    assert_error(again, again.status_code)
    assert ci.status(digest, "production").json()["decision"] == "pending"


def test_a_rejection_needs_a_reason_closes_the_gate_and_deploying_anyway_is_flagged(api, ci, signing_key, cast):
    digest, _, promotion = release_at_production(api, ci, signing_key, cast, version="7.5.3", run="404")
    assert_error(sign_promotion(api, cast["quinn"], promotion["id"], meaning="rejected", comment=""), 400)
    assert_error(sign_promotion(api, cast["quinn"], promotion["id"], meaning="reviewed"), 400)
    rejected = sign_promotion(api, cast["quinn"], promotion["id"], meaning="rejected", comment="Coverage dropped")
    assert rejected.status_code == 201, rejected.content
    status = ci.status(digest, "production").json()
    assert status["decision"] == "blocked", status
    assert any("Coverage dropped" in reason for reason in status["reasons"]), status["reasons"]
    deployed = ci.deploy(digest, "production").json()
    assert deployed["authorised"] is False
    assert any("rejected" in reason for reason in deployed["reasons"]), deployed["reasons"]


def test_new_failing_evidence_closes_a_gate_that_was_open(api, ci, signing_key, cast):
    digest, _, promotion = release_at_production(api, ci, signing_key, cast, version="7.5.4", run="405")
    assert sign_promotion(api, cast["quinn"], promotion["id"]).status_code == 201
    assert ci.status(digest, "production").json()["decision"] == "allowed"
    # A later report from a real tool with failures: the next answer must not be a stale "allowed".
    processed = ci.evidence(ci.upload(digest, "junit", sample_bytes("junit/pytest-with-properties.xml")))
    assert processed["summary"]["failed"] == 2, processed
    status = ci.status(digest, "production").json()
    assert status["decision"] == "blocked", status
    failing = {gate["id"]: gate for gate in status["gates"] if gate["blocking"] and gate["status"] != "pass"}
    # The staging promotion, approved on the same evidence and not deployed, is reopened by the report too, so
    # staging no longer stands behind these digests either (docs/approvals.md, "Reopened promotions").
    assert set(failing) == {"tests", "after-staging"}, failing
    assert "failed" in failing["tests"]["detail"], failing
    assert ci.deploy(digest, "production").json()["authorised"] is False


def test_the_deployer_of_the_release_cannot_approve_its_promotion(api, ci, signing_key, cast, product, admin_user):
    roles.role_grant(actor=admin_user, user=cast["sam"], product=product, role=Role.QUALITY)
    digest = shipped_release(api, ci, signing_key, cast, version="7.5.2", run="403")
    assert ci.deploy(digest, "staging", client=api(cast["sam"])).json()["authorised"] is True
    promotion = ci.promote("7.5.2", "production", client=api(cast["rory"])).json()
    body = assert_error(sign_promotion(api, cast["sam"], promotion["id"]), 403)
    assert "deploy" in json.dumps(body), body


def test_an_approval_does_not_carry_over_to_evidence_the_signer_never_saw(api, ci, signing_key, cast):
    digest, _, promotion = release_at_production(api, ci, signing_key, cast, version="7.5.5", run="406")
    assert sign_promotion(api, cast["quinn"], promotion["id"]).status_code == 201
    assert ci.status(digest, "production").json()["decision"] == "allowed"
    scan = {"matches": [{"vulnerability": {"id": "CVE-2025-0002", "severity": "Medium"}, "artifact": {"name": "x"}}]}
    assert ci.evidence(ci.upload(digest, "grype", json.dumps(scan).encode()))["state"] == "parsed"
    status = ci.status(digest, "production").json()
    assert status["decision"] != "allowed", status
    assert status["approvals"]["missing"] == ["quality"], status["approvals"]
    assert any("evidence changed" in reason for reason in status["reasons"]), status["reasons"]
    # The promotion is reopened (a state that says why) and open for signing again; a fresh signature over what the
    # reviewer now sees counts.
    assert api(cast["quinn"]).get(f"/api/v1/promotions/{promotion['id']}").json()["state"] == "reopened"
    assert sign_promotion(api, cast["quinn"], promotion["id"]).status_code == 201
    assert ci.status(digest, "production").json()["decision"] == "allowed"


def test_a_failed_signature_is_in_the_products_audit_trail_naming_the_record(api, cast):
    change_request = open_change_request(api, cast["rory"], MEDIUM_RISK)
    assert_error(sign_change_request(api, cast["quinn"], change_request["id"], password="guess"), 403)
    trail = api(cast["audrey"]).get("/api/v1/audit-events", {"product": "rsd", "object": change_request["id"]})
    failed = [event for event in trail.json() if "fail" in event["action"]]
    assert failed and failed[0]["actor"] == "Quinn Quality", trail.json()


def test_an_auditor_changes_nothing(api, ci, signing_key, cast):
    digest = shipped_release(api, ci, signing_key, cast, version="7.5.6", run="407")
    auditor = api(cast["audrey"])
    attempts = {
        "deployment": auditor.post(
            "/api/v1/deployments", {"artifact": digest, "environment": "staging"}, format="json"
        ),
        "snapshot": auditor.put("/api/v1/products/rsd/environments/staging/snapshot", {"artifacts": []}, format="json"),
        "release": auditor.post(
            "/api/v1/products/rsd/releases", {"version": "9.9", "artifacts": [digest]}, format="json"
        ),
        "build": auditor.post(
            "/api/v1/products/rsd/builds", {"commit": "f" * 40, "pipeline_url": "https://ci.example/a"}, format="json"
        ),
    }
    assert {name: r.status_code for name, r in attempts.items()} == dict.fromkeys(attempts, 403)
    assert ci.client.get("/api/v1/deployments", {"product": "rsd"}).json() == []


def test_change_request_signatures_refuse_the_requester_by_rule(api, cast):
    change_request = open_change_request(api, cast["quinn"], MEDIUM_RISK)
    response = sign_change_request(api, cast["quinn"], change_request["id"])
    body = assert_error(response, 403)
    assert "requester" in json.dumps(body), body


# ---------------------------------------------------------------- 5. who may see what


def test_another_products_token_sees_nothing_of_rsd(api, ci, signing_key, cast, other_product_token):
    digest, change_request, promotion = release_at_production(api, ci, signing_key, cast, version="7.6.0", run="501")
    evidence_id = ci.upload(digest, "junit", junit_passing(("test_extra", None))).json()["id"]
    deployment = ci.deploy(digest, "staging").json()["id"]
    outsider = api(token=other_product_token)
    for path in (
        f"/api/v1/status?artifact={digest}&environment=production",
        f"/api/v1/evidence/{evidence_id}",
        f"/api/v1/promotions/{promotion['id']}",
        "/api/v1/releases/rsd/7.6.0",
        f"/api/v1/deployments/{deployment}",
        "/api/v1/products/rsd/trace-matrix",
        "/api/v1/releases/rsd/7.6.0/trace-matrix",
        "/api/v1/releases/rsd/7.6.0/packet.pdf",
        "/api/v1/releases/rsd/7.6.0/bundle.zip",
    ):
        assert_error(outsider.get(path), 404)
    # A deployment is a fact lab records about its own environment: rsd's digest is one no build of lab registered.
    deployed = outsider.post("/api/v1/deployments", {"artifact": digest, "environment": "staging"}, format="json")
    assert (
        deployed.status_code == 201
        and deployed.json()["product"] == "lab"
        and "rsd" not in deployed.json()["reasons"][0]
    )
    for path, body in (
        ("/api/v1/products/rsd/releases", {"version": "9.9.9", "artifacts": [digest]}),
        ("/api/v1/releases/rsd/7.6.0/promotions", {"environment": "production"}),
        ("/api/v1/products/rsd/builds", {"commit": "a" * 40, "pipeline_url": "https://ci.example/x"}),
        (f"/api/v1/change-requests/{change_request['id']}/signatures", {"meaning": "approved"}),
        (f"/api/v1/promotions/{promotion['id']}/signatures", {"meaning": "approved"}),
    ):
        assert_error(outsider.post(path, body, format="json"), 404)
    upload = {"type": "junit", "file": SimpleUploadedFile("junit.xml", junit_passing(("test_x", None)))}
    assert_error(outsider.post(f"/api/v1/artifacts/{digest}/evidence", upload, format="multipart"), 404)
    assert_error(
        outsider.put("/api/v1/products/rsd/environments/staging/snapshot", {"artifacts": []}, format="json"), 404
    )


def create_token(*, scopes: list[str], user: str = "", name: str = "ci") -> str:
    """`manage.py create_token` as docs/operations.md shows it; the secret is the last line of its output."""
    out = io.StringIO()
    options = {"product": "rsd", "name": name, "scopes": ",".join(scopes), "stdout": out, "stderr": io.StringIO()}
    if user:
        options["user"] = user
    call_command("create_token", **options)
    return out.getvalue().strip().splitlines()[-1]


def test_a_token_without_the_scope_is_403_naming_it_and_no_token_is_401(api, ci, product):
    build = ci.build("502")
    digest = digest_of("scoped")
    ci.artifact(digest, build["id"])
    import_body = {"format": "csv", "file": SimpleUploadedFile("r.csv", b"id,title\nREQ-1,x\n")}
    for scope, method, path, body in (
        ("status:read", "get", f"/api/v1/status?artifact={digest}&environment=staging", None),
        ("deployments:write", "post", "/api/v1/deployments", {"artifact": digest, "environment": "staging"}),
        ("snapshots:write", "put", "/api/v1/products/rsd/environments/staging/snapshot", {"artifacts": []}),
        ("releases:write", "post", "/api/v1/products/rsd/releases", {"version": "1.0", "artifacts": [digest]}),
        (
            "evidence:write",
            "post",
            "/api/v1/products/rsd/builds",
            {"commit": "b" * 40, "pipeline_url": "https://x.example/1"},
        ),
        ("requirements:write", "post", "/api/v1/products/rsd/requirements/import", import_body),
    ):
        client = api(token=create_token(scopes=[s for s in CI_SCOPES if s != scope], name=scope.split(":")[0]))
        if method == "get":
            response = client.get(path)
        else:
            response = getattr(client, method)(path, body, format="multipart" if "file" in body else "json")
        error = assert_error(response, 403)
        assert scope in error["detail"], error

    anonymous = api()
    for method, path in (
        ("get", f"/api/v1/status?artifact={digest}&environment=staging"),
        ("post", "/api/v1/deployments"),
        ("post", "/api/v1/products/rsd/builds"),
        ("get", "/api/v1/products/rsd/trace-matrix"),
    ):
        assert_error(getattr(anonymous, method)(path), 401)
    assert_error(api(token="cst_not-a-real-token").get("/api/v1/products/rsd/trace-matrix"), 401)

    # A revoked token stops working at once.
    secret = create_token(scopes=["status:read"], name="short-lived")
    status_path = f"/api/v1/status?artifact={digest}&environment=staging"
    assert api(token=secret).get(status_path).status_code == 200
    call_command("revoke_token", secret[:10], reason="rotated", stdout=io.StringIO())
    assert_error(api(token=secret).get(status_path), 401)


def test_a_personal_token_acts_for_its_person(api, cast):
    """§7: people use their session or a personal token; change requests accept tokens acting for a person."""
    scopes = [*CI_SCOPES, "changes:write"]
    rory = api(token=create_token(scopes=scopes, user="rory", name="rory-laptop"))
    response = rory.post(
        "/api/v1/products/rsd/change-requests",
        {
            "title": "Open from a script",
            "risk_answers": LOW_RISK,
            "verification_plan": "Run the regression suite.",
            "rollback_plan": "Redeploy the previous digest.",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["requester"] == "rory"
    submitted = rory.post(f"/api/v1/change-requests/{response.json()['id']}/submit", format="json")
    assert submitted.status_code == 200, submitted.content
    # With only the scopes §7 lists, the same person's token is refused by a scope §7 does not name.
    limited = api(token=create_token(scopes=CI_SCOPES, user="rory", name="rory-ci"))
    refused = limited.post("/api/v1/products/rsd/change-requests", {"title": "x"}, format="json")
    assert "changes:write" in assert_error(refused, 403)["detail"]


# ---------------------------------------------------------------- 6. bad input


def test_bad_input_is_400_with_error_and_detail(api, ci, ci_token):
    client = api(token=ci_token)
    build = ci.build("601")
    digest = digest_of("bad input")
    ci.artifact(digest, build["id"])
    for path, body in (
        ("/api/v1/products/rsd/builds", {"branch": "main"}),  # no commit, no pipeline_url
        ("/api/v1/products/rsd/builds", {"commit": "not-hex", "pipeline_url": "not a url"}),
        ("/api/v1/products/rsd/artifacts", {"name": "x", "digest": "md5:abc", "build": build["id"]}),
        ("/api/v1/products/rsd/releases", {"version": "", "artifacts": []}),
        ("/api/v1/products/rsd/releases", {"version": "1.0", "artifacts": [digest_of("unknown")]}),
        ("/api/v1/deployments", {"artifact": "sha256:short", "environment": "staging"}),
        ("/api/v1/deployments", {"artifact": digest, "environment": "staging", "kind": "sideways"}),
    ):
        assert_error(client.post(path, body, format="json"), 400)
    not_json = client.post("/api/v1/products/rsd/builds", b"{not json", content_type="application/json")
    assert_error(not_json, 400)
    assert_error(client.get("/api/v1/status", {"artifact": "sha256:xyz", "environment": "staging"}), 400)
    assert_error(client.get("/api/v1/status", {"artifact": digest}), 400)


def test_unknown_evidence_type_lists_the_supported_ones_and_a_missing_file_is_400(ci):
    build = ci.build("602")
    digest = digest_of("evidence types")
    ci.artifact(digest, build["id"])
    body = assert_error(ci.upload(digest, "pdf-report", b"%PDF-1.4"), 400)
    for supported in [
        "junit",
        "cobertura",
        "lcov",
        "sarif",
        "cyclonedx",
        "spdx",
        "grype",
        "trivy",
        "osv",
        "openvex",
        "dsse",
        "cosign",
        "generic",
    ]:
        assert supported in body["detail"], body
    no_file = ci.client.post(f"/api/v1/artifacts/{digest}/evidence", {"type": "junit"}, format="multipart")
    assert_error(no_file, 400)


def test_a_report_that_does_not_parse_says_where(ci, signing_key):
    build = ci.build("603")
    digest = digest_of("broken report")
    ci.artifact(digest, build["id"])
    truncated = ci.evidence(ci.upload(digest, "junit", b"<testsuite><testcase name='x'>"))
    assert truncated["state"] in ("rejected", "failed"), truncated
    assert "line 1" in truncated["error"], truncated
    nameless = ci.evidence(ci.upload(digest, "cyclonedx", b'{"bomFormat": "CycloneDX", "components": [{}]}'))
    assert nameless["state"] in ("rejected", "failed"), nameless
    assert "components[0]" in nameless["error"], nameless
    # An attestation about another digest is never counted for this one.
    elsewhere = ci.evidence(ci.upload(digest, "dsse", dsse_envelope(signing_key, slsa_statement(digest_of("other")))))
    assert (elsewhere["state"], elsewhere["verdict"]) == ("rejected", "subject_mismatch"), elsewhere
    assert elsewhere["counts_as_evidence"] is False


def test_an_oversized_upload_is_413_and_stores_nothing(ci, settings):
    build = ci.build("604")
    digest = digest_of("oversized")
    ci.artifact(digest, build["id"])
    settings.CUSTODY_MAX_UPLOAD_BYTES = 1024
    response = ci.upload(digest, "generic", b"x" * 4096)
    body = assert_error(response, 413)
    assert "1024" in body["detail"], body
    assert ci.client.get(f"/api/v1/artifacts/{digest}").json()["evidence"] == []


def test_a_wrong_state_is_409_naming_the_state(api, ci, signing_key, cast):
    change_request = open_change_request(api, cast["rory"], MEDIUM_RISK)
    again = api(cast["rory"]).post(f"/api/v1/change-requests/{change_request['id']}/submit", format="json")
    body = assert_error(again, 409)
    assert change_request["state"].replace("_", " ") in body["detail"].replace("_", " "), body

    digest = ready_artifact(ci, signing_key, "605")
    ci.release("7.7.0", [digest], [])
    promoted = ci.promote("7.7.0", "integration", client=api(cast["rory"]))
    assert promoted.json()["state"] == "approved"
    body = assert_error(sign_promotion(api, cast["quinn"], promoted.json()["id"]), 409)
    assert "approved" in body["detail"], body
    # Staging is blocked (the release delivers no change request): asking again while it is open is 409 too.
    blocked = ci.promote("7.7.0", "staging", client=api(cast["rory"]))
    assert blocked.status_code == 201 and blocked.json()["state"] == "awaiting_approval"
    body = assert_error(ci.promote("7.7.0", "staging", client=api(cast["rory"])), 409)
    assert blocked.json()["id"] in body["detail"], body
    # A release version is used once.
    assert_error(ci.release("7.7.0", [digest], [], expect=None), 409)


def test_a_release_version_is_either_refused_or_addressable(ci):
    build = ci.build("606")
    digest = digest_of("slashed version")
    ci.artifact(digest, build["id"])
    response = ci.release("2025.03/hotfix", [digest], [], expect=None)
    if response.status_code == 201:
        found = ci.client.get("/api/v1/releases/rsd/2025.03%2Fhotfix")
        assert found.status_code == 200, found.content[:200]
    else:
        assert_error(response, 400)


def test_unknown_api_paths_and_methods_answer_in_the_error_shape(api, ci_token):
    client = api(token=ci_token)
    assert_error(client.get("/api/v1/promotions/PRM-999999"), 404)
    assert_error(client.get("/api/v1/evidence/EV-999999"), 404)
    assert_error(client.delete("/api/v1/products/rsd/builds"), 405)


def test_odd_input_is_a_json_400_never_a_500(api, ci, ci_token):
    build = ci.build("607")
    digest = digest_of("odd input")
    ci.artifact(digest, build["id"])
    client = api(token=ci_token)
    client.raise_request_exception = False
    nested = b'{"commit": "' + b"a" * 40 + b'", "pipeline_url": "https://ci.example/deep", "parameters": '
    nested += b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"
    upload = {"type": "generic", "name": "notes\u0000.txt", "file": SimpleUploadedFile("notes.txt", b"hello")}
    answers = {
        "NUL in parameters": client.post(
            "/api/v1/products/rsd/builds",
            {"commit": "a" * 40, "pipeline_url": "https://ci.example/nul", "parameters": {"stage": "deploy\u0000"}},
            format="json",
        ),
        "NUL in evidence name": client.post(f"/api/v1/artifacts/{digest}/evidence", upload, format="multipart"),
        "NUL in snapshot name": client.put(
            "/api/v1/products/rsd/environments/staging/snapshot",
            {"artifacts": [{"name": "sidecar\u0000", "digest": digest}]},
            format="json",
        ),
        "NUL in status environment": client.get("/api/v1/status", {"artifact": digest, "environment": "stag\u0000ing"}),
        "deeply nested JSON": client.post("/api/v1/products/rsd/builds", nested, content_type="application/json"),
    }
    wrong = {label: r.status_code for label, r in answers.items() if r.status_code >= 500}
    assert wrong == {}, wrong
    for response in answers.values():
        assert_error(response, 400)


def test_a_path_outside_every_route_is_a_json_404(api, ci_token):
    assert_error(api(token=ci_token).get("/api/v1/no-such-thing"), 404)


# ---------------------------------------------------------------- 7. deployments


def test_an_unapproved_deployment_is_recorded_unauthorised_with_reasons(ci):
    build = ci.build("701")
    digest = digest_of("hotfix built on a laptop")
    ci.artifact(digest, build["id"])
    response = ci.deploy(digest, "production")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("DEP-")
    assert body["authorised"] is False
    assert body["reasons"] and all(isinstance(reason, str) for reason in body["reasons"])
    recorded = ci.client.get(f"/api/v1/deployments/{body['id']}")
    assert recorded.status_code == 200
    assert recorded.json()["authorised"] is False


def test_a_deployment_of_an_unregistered_digest_is_still_recorded(ci):
    response = ci.deploy(digest_of("built on a laptop, never registered"), "production")
    assert response.status_code == 201, response.content
    assert response.json()["authorised"] is False
    assert response.json()["reasons"]


def test_break_glass_needs_a_justification_and_the_sre_role(api, ci, cast):
    build = ci.build("702")
    digest = digest_of("emergency fix")
    ci.artifact(digest, build["id"])
    sre = api(cast["sam"])
    body = assert_error(ci.deploy(digest, "production", kind="break_glass", client=sre), 400)
    assert "justification" in body["detail"], body
    response = ci.deploy(
        digest, "production", kind="break_glass", client=sre, justification="Sepsis alerts down for every ward."
    )
    assert response.status_code == 201, response.content
    emergency = response.json()
    assert emergency["kind"] == "break_glass"
    assert isinstance(emergency["authorised"], bool)
    assert any("Sepsis alerts down" in reason for reason in emergency["reasons"]), emergency["reasons"]
    # The retrospective review is demanded at once, with its deadline.
    assert emergency["review"]["due_at"] and emergency["review"]["overdue"] is False, emergency["review"]
    # Someone without the break-glass role is refused by rule, and the fact is still recorded.
    refused = ci.deploy(
        digest, "production", kind="break_glass", client=api(cast["alice"]), justification="I think it is urgent."
    )
    body = assert_error(refused, 403)
    assert "sre" in body["detail"].lower(), body
    recorded = ci.client.get(f"/api/v1/deployments/{body['deployment']}")
    assert recorded.status_code == 200
    assert recorded.json()["authorised"] is False


def test_rollback_to_a_release_approved_for_the_environment_is_authorised(api, ci, signing_key, cast):
    old = shipped_release(api, ci, signing_key, cast, version="7.8.0", run="703")
    assert ci.deploy(old, "staging").json()["authorised"] is True
    new = shipped_release(api, ci, signing_key, cast, version="7.8.1", run="704")
    assert ci.deploy(new, "staging").json()["authorised"] is True

    back = ci.deploy(old, "staging", kind="rollback")
    assert back.status_code == 201, back.content
    assert back.json()["kind"] == "rollback"
    assert back.json()["authorised"] is True, back.json()

    never = ready_artifact(ci, signing_key, "705")
    refused = ci.deploy(never, "staging", kind="rollback")
    assert refused.status_code == 201, refused.content
    assert refused.json()["authorised"] is False
    assert refused.json()["reasons"], refused.json()


# ---------------------------------------------------------------- 8. snapshots and drift


def test_snapshot_put_answers_with_drift_findings(api, ci, signing_key, cast):
    approved = shipped_release(api, ci, signing_key, cast, version="7.9.0", run="801")
    ci.deploy(approved, "staging")
    rogue = digest_of("something nobody approved")
    response = ci.client.put(
        "/api/v1/products/rsd/environments/staging/snapshot",
        {"artifacts": [{"name": "scoring-service", "digest": approved}, {"name": "sidecar", "digest": rogue}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    findings = response.json()["findings"]
    opened = findings["opened"] if isinstance(findings, dict) else findings
    assert [f["digest"] for f in opened] == [rogue], findings
    assert opened[0]["kind"], opened

    # The next snapshot without the rogue digest resolves it.
    response = ci.client.put(
        "/api/v1/products/rsd/environments/staging/snapshot",
        {"artifacts": [{"name": "scoring-service", "digest": approved}]},
        format="json",
    )
    assert [f["digest"] for f in response.json()["findings"]["resolved"]] == [rogue]
    assert_error(
        ci.client.put("/api/v1/products/rsd/environments/staging/snapshot", {"artifacts": "nope"}, format="json"), 400
    )
    assert_error(
        ci.client.put("/api/v1/products/rsd/environments/moon/snapshot", {"artifacts": []}, format="json"), 404
    )


# ---------------------------------------------------------------- 9. packet and bundle


def test_packet_and_bundle_are_202_with_progress_then_200_with_the_file(
    api, ci, signing_key, cast, django_capture_on_commit_callbacks
):
    shipped_release(api, ci, signing_key, cast, version="8.0.0", run="901")
    auditor = api(cast["audrey"])
    for path, content_type, magic in (
        ("/api/v1/releases/rsd/8.0.0/packet.pdf", "application/pdf", b"%PDF"),
        ("/api/v1/releases/rsd/8.0.0/bundle.zip", "application/zip", b"PK"),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            first = auditor.get(path)
        if first.status_code == 202:
            progress = first.json()
            assert "progress" in progress and isinstance(progress["progress"], int), progress
            assert 0 <= progress["progress"] <= 100
        else:
            assert first.status_code == 200, first.content[:300]
        done = auditor.get(path)
        assert done.status_code == 200, done.content[:300]
        assert done["Content-Type"] == content_type
        content = b"".join(done.streaming_content)
        assert content.startswith(magic)
        if magic == b"PK":
            names = zipfile.ZipFile(io.BytesIO(content)).namelist()
            assert "manifest.json" in names and "manifest.sig.json" in names


# ---------------------------------------------------------------- 10. keys and schema


def test_public_keys_are_served_without_a_token(api):
    response = api().get("/api/v1/keys")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys and all("BEGIN PUBLIC KEY" in json.dumps(key) for key in keys)


SECTION_7_PATHS = [
    ("post", "/api/v1/products/{product}/builds"),
    ("post", "/api/v1/products/{product}/artifacts"),
    ("post", "/api/v1/artifacts/{digest}/evidence"),
    ("get", "/api/v1/evidence/{id}"),
    ("post", "/api/v1/products/{product}/change-requests"),
    ("post", "/api/v1/change-requests/{id}/submit"),
    ("post", "/api/v1/change-requests/{id}/signatures"),
    ("post", "/api/v1/products/{product}/requirements/import"),
    ("get", "/api/v1/products/{product}/trace-matrix"),
    ("get", "/api/v1/releases/{product}/{version}/trace-matrix"),
    ("post", "/api/v1/products/{product}/releases"),
    ("post", "/api/v1/releases/{product}/{version}/promotions"),
    ("get", "/api/v1/promotions/{id}"),
    ("post", "/api/v1/promotions/{id}/signatures"),
    ("get", "/api/v1/status"),
    ("post", "/api/v1/deployments"),
    ("put", "/api/v1/products/{product}/environments/{environment}/snapshot"),
    ("get", "/api/v1/releases/{product}/{version}/packet.pdf"),
    ("get", "/api/v1/releases/{product}/{version}/bundle.zip"),
    ("get", "/api/v1/keys"),
]


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def openapi_schema(client) -> dict:
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200, response.content[:300]
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    return schema


def operation(schema: dict, method: str, path: str) -> dict:
    paths = {_shape(p): operations for p, operations in schema["paths"].items()}
    return paths[_shape(path)][method]


def test_openapi_schema_lists_every_section_7_path(api, cast):
    schema = openapi_schema(api(cast["audrey"]))
    paths = {_shape(path): operations for path, operations in schema["paths"].items()}
    missing = [
        f"{method.upper()} {path}" for method, path in SECTION_7_PATHS if method not in paths.get(_shape(path), {})
    ]
    assert missing == [], missing
    assert api(cast["audrey"]).get("/api/v1/docs/").status_code == 200


# (method, path, the fields §7 names, further optional fields Custody documents beside them)
SECTION_7_REQUEST_FIELDS = [
    (
        "post",
        "/api/v1/products/{product}/builds",
        {"commit", "branch", "pipeline_url", "ci_system", "build_number"},
        {"builder_identity", "started_at", "finished_at", "commits", "parameters"},
    ),
    ("post", "/api/v1/products/{product}/artifacts", {"name", "digest", "build", "kind", "uri"}, set()),
    ("post", "/api/v1/products/{product}/releases", {"version", "artifacts", "change_requests"}, {"notes"}),
    ("post", "/api/v1/releases/{product}/{version}/promotions", {"environment"}, set()),
    # content_sha256 (wave 2): the hash of the record the signer saw.
    (
        "post",
        "/api/v1/change-requests/{id}/signatures",
        {"meaning", "comment", "username", "password", "content_sha256"},
        {"role"},
    ),
    (
        "post",
        "/api/v1/promotions/{id}/signatures",
        {"meaning", "comment", "username", "password", "content_sha256"},
        {"role"},
    ),
    # `product` names the product of a digest no build registered (deployments are always recorded).
    (
        "post",
        "/api/v1/deployments",
        {"artifact", "environment", "pipeline_url", "kind", "justification"},
        {"product"},
    ),
    ("put", "/api/v1/products/{product}/environments/{environment}/snapshot", {"artifacts"}, set()),
]


def request_fields(schema: dict, op: dict) -> set[str]:
    content = op["requestBody"]["content"]
    body = content.get("application/json") or next(iter(content.values()))
    ref = body["schema"]["$ref"].rsplit("/", 1)[-1]
    return set(schema["components"]["schemas"][ref]["properties"])


def test_openapi_request_bodies_document_the_section_7_fields(api, cast):
    schema = openapi_schema(api(cast["audrey"]))
    wrong = {}
    for method, path, fields, extras in SECTION_7_REQUEST_FIELDS:
        documented = request_fields(schema, operation(schema, method, path))
        if not fields <= documented <= fields | extras:
            wrong[f"{method.upper()} {path}"] = sorted(documented)
    assert wrong == {}, wrong


def test_openapi_schema_declares_bearer_token_authentication(api, cast):
    schema = openapi_schema(api(cast["audrey"]))
    schemes = schema.get("components", {}).get("securitySchemes", {}).values()
    assert any(s.get("type") == "http" and s.get("scheme", "").lower() == "bearer" for s in schemes), schemes
    status = operation(schema, "get", "/api/v1/status")
    bearer = [name for name, s in schema["components"]["securitySchemes"].items() if s.get("scheme") == "bearer"]
    assert any(set(requirement) & set(bearer) for requirement in status.get("security", [])), status.get("security")


def test_openapi_status_response_documents_the_status_fields(api, cast):
    schema = openapi_schema(api(cast["audrey"]))
    response = operation(schema, "get", "/api/v1/status")["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in response:
        response = schema["components"]["schemas"][response["$ref"].rsplit("/", 1)[-1]]
    assert set(response.get("properties", {})) >= STATUS_FIELDS, response


def test_openapi_schema_is_readable_with_the_ci_token(api, ci_token):
    """CI generates its client from the schema with the token it already holds."""
    assert openapi_schema(api(token=ci_token))["paths"]


# ---------------------------------------------------------------- 11. requirements and the trace matrix


REQUIREMENTS_CSV = """id,kind,title,text,status,implements,mitigates
REQ-001,requirement,Score shown within 2 s,The dashboard shall show the score within 2 s.,approved,,
REQ-002,requirement,Amber threshold configurable,The amber threshold shall be configurable.,approved,,
HAZ-1,hazard,Wrong score shown,,,,
RC-1,risk_control,Threshold double-check,,,REQ-002,HAZ-1
"""


def import_file(client, fmt: str, content: bytes, filename: str):
    return client.post(
        "/api/v1/products/rsd/requirements/import",
        {"format": fmt, "file": SimpleUploadedFile(filename, content)},
        format="multipart",
    )


def test_requirements_import_reports_created_versioned_unchanged_and_refused(api, ci_token, cast):
    client = api(token=ci_token)
    response = import_file(client, "csv", REQUIREMENTS_CSV.encode(), "reqs.csv")
    assert response.status_code == 200, response.content
    report = response.json()
    for key in ("created", "versioned", "unchanged", "refused"):
        assert isinstance(report[key], list), report
    assert sorted(report["created"]) == ["HAZ-1", "RC-1", "REQ-001", "REQ-002"], report

    # Same file again: nothing changes.
    again = import_file(client, "csv", REQUIREMENTS_CSV.encode(), "reqs.csv").json()
    assert again["created"] == [] and again["versioned"] == []
    assert sorted(again["unchanged"]) == ["HAZ-1", "RC-1", "REQ-001", "REQ-002"], again

    # A new title versions REQ-001; HAZ-1 arriving as a requirement and a link to an unknown item are refused.
    edited = (
        REQUIREMENTS_CSV.replace("Score shown within 2 s,", "Score shown within 1 s,")
        .replace("HAZ-1,hazard,", "HAZ-1,requirement,")
        .replace(",REQ-002,HAZ-1", ",REQ-002;REQ-404,")
    )
    response = import_file(client, "csv", edited.encode(), "reqs.csv")
    assert response.status_code == 200, response.content
    third = response.json()
    assert third["versioned"] == ["REQ-001"], third
    assert "REQ-002" in third["unchanged"], third
    refused = json.dumps(third["refused"])
    assert "HAZ-1" in refused and "REQ-404" in refused, third

    document = {"items": [{"id": "REQ-003", "kind": "requirement", "title": "Audit every score override"}]}
    response = import_file(client, "json", json.dumps(document).encode(), "reqs.json")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == ["REQ-003"]

    response = import_file(client, "reqif", sample_bytes("reqif/polarion-roundtrip-export.reqif"), "export.reqif")
    assert response.status_code == 200, response.content
    assert len(response.json()["created"]) == 2, response.json()

    broken = import_file(client, "csv", b"title\nno id column\n", "broken.csv")
    body = assert_error(broken, 400)
    assert "id" in body["detail"], body
    assert_error(import_file(client, "xlsx", b"PK", "reqs.xlsx"), 400)


def test_trace_matrix_per_product_and_per_release(api, ci, signing_key, cast, ci_token):
    import_file(api(token=ci_token), "csv", REQUIREMENTS_CSV.encode(), "reqs.csv")
    build = ci.build("1101")
    digest = digest_of("traced")
    ci.artifact(digest, build["id"])
    ci.upload(digest, "junit", junit_passing(("test_score_latency", "REQ-001"), ("test_threshold_config", None)))
    ci.release("8.1.0", [digest], [])

    product_matrix = ci.client.get("/api/v1/products/rsd/trace-matrix")
    release_matrix = ci.client.get("/api/v1/releases/rsd/8.1.0/trace-matrix")
    for response in (product_matrix, release_matrix):
        assert response.status_code == 200, response.content
        matrix = response.json()
        assert isinstance(matrix["coverage"], int | float)
        rows = {row["id"]: row for row in matrix["rows"]}
        assert set(rows) == {"REQ-001", "REQ-002"}, rows
        assert rows["REQ-001"]["status"] == "verified", rows["REQ-001"]
        assert rows["REQ-002"]["status"] == "missing_test", rows["REQ-002"]
        assert matrix["coverage"] == 50.0
    assert_error(ci.client.get("/api/v1/releases/rsd/0.0.0/trace-matrix"), 404)


# ---------------------------------------------------------------- 12. change requests through the API


def test_change_request_open_submit_and_sign_with_reauthentication(api, cast, ci_token):
    change_request = open_change_request(api, cast["rory"], HIGH_RISK, submit=False)
    assert change_request["id"].startswith("CR-")
    assert change_request["tier"] == "high"
    submitted = api(cast["rory"]).post(f"/api/v1/change-requests/{change_request['id']}/submit", format="json")
    assert submitted.status_code == 200
    state = submitted.json()["state"]

    wrong = sign_change_request(api, cast["quinn"], change_request["id"], password="guess")
    body = assert_error(wrong, 403)
    assert "password" in body["detail"], body
    detail = api(cast["rory"]).get(f"/api/v1/change-requests/{change_request['id']}").json()
    assert detail["signatures"] == [] and detail["state"] == state

    quinn = sign_change_request(api, cast["quinn"], change_request["id"])
    assert quinn.status_code == 201, quinn.content
    signature = quinn.json()
    assert signature["printed_name"] == "Quinn Quality" and signature["meaning"] == "approved"
    assert signature["signed_at"] and DIGEST_PATTERN.match("sha256:" + signature["content_sha256"])
    sasha = sign_change_request(api, cast["sasha"], change_request["id"])
    assert sasha.status_code == 201, sasha.content
    assert sasha.json()["change_request"]["state"] == "approved"

    # Changing an answer after approval resets the approval (DESIGN §4.1) and invalidates the signatures (§6).
    changed = api(cast["rory"]).patch(
        f"/api/v1/change-requests/{change_request['id']}",
        {"risk_answers": {**HIGH_RISK, "user_impact": "minor"}, "reason": "Users will notice the new colours."},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["state"] != "approved"
    assert all(not signature["valid"] for signature in changed.json()["signatures"]), changed.json()["signatures"]

    # A CI service token cannot open or sign a change: that needs a person.
    robot = api(token=ci_token).post(
        "/api/v1/products/rsd/change-requests", {"title": "by a robot", "risk_answers": LOW_RISK}, format="json"
    )
    assert_error(robot, 403)
    # A signature whose username is someone else's signs nothing.
    impostor = api(cast["paula"]).post(
        f"/api/v1/change-requests/{change_request['id']}/signatures",
        {
            "meaning": "approved",
            "comment": "",
            "username": "quinn",
            "password": PASSWORD,
            "content_sha256": content_sha256_of(api(cast["paula"]), f"/api/v1/change-requests/{change_request['id']}"),
        },
        format="json",
    )
    assert_error(impostor, 403)


def test_bad_risk_answers_are_400_naming_the_question(api, cast):
    response = api(cast["rory"]).post(
        "/api/v1/products/rsd/change-requests",
        {"title": "Incomplete", "risk_answers": {"patient_safety_impact": "catastrophic"}},
        format="json",
    )
    body = assert_error(response, 400)
    assert "patient_safety_impact" in json.dumps(body), body


# ---------------------------------------------------------------- the `custody` client against a running server


def run_cli(*argv: str) -> tuple[int, str, str]:
    from contextlib import redirect_stderr, redirect_stdout

    from custody_cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_custody_gate_and_keys_against_a_running_custody(live_server, product, ci_token, ci_account, monkeypatch):
    import urllib.request

    def call(method: str, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            live_server.url + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {ci_token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local test server
            return json.loads(response.read())

    build = call("POST", "/api/v1/products/rsd/builds", {"commit": "e" * 40, "pipeline_url": "https://ci.example/r/1"})
    digest = digest_of("gated by the cli")
    call("POST", "/api/v1/products/rsd/artifacts", {"name": "scoring-service", "digest": digest, "build": build["id"]})
    monkeypatch.setenv("CUSTODY_URL", live_server.url)
    monkeypatch.setenv("CUSTODY_TOKEN", ci_token)

    # Nothing was promoted: blocked is exit 1, and the reason is printed.
    code, out, _ = run_cli("gate", "--artifact", digest, "--environment", "production")
    assert code == 1, out
    assert "promotion" in out, out
    code, out, _ = run_cli("gate", "--artifact", digest, "--environment", "production", "--json")
    assert code == 1
    assert set(json.loads(out)) == STATUS_FIELDS
    # A digest the token cannot see is the server's 404: exit 4 with the server's error.
    code, _, err = run_cli("gate", "--artifact", digest_of("unknown"), "--environment", "production")
    assert code == 4 and "not_found" in err, err
    code, out, err = run_cli("keys")
    assert code == 0 and out.startswith("-----BEGIN PUBLIC KEY-----"), (out, err)
