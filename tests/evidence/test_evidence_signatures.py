"""Signer keys and verdicts: DSSE provenance, cosign image signatures, blob signatures, VEX only when signed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from changecontrol.models import AuditEvent
from evidence import services
from evidence.models import Evidence, Provenance, SignerKey, TestResult, VexStatement, Vulnerability
from evidence.verification import key_id_for
from tests.evidence.conftest import DIGEST, OTHER_DIGEST, dsse_envelope, evidence_of, slsa_statement

pytestmark = pytest.mark.django_db

JUNIT = b'<testsuite name="s"><testcase classname="c" name="test_REQ-001_ok"/></testsuite>'


# ---------------------------------------------------------------- the registry


def test_security_reviewer_registers_a_key_by_api_and_its_id_is_the_spki_hash(
    api, security_reviewer, product, p256_key
):
    response = api(security_reviewer).post(
        "/api/v1/products/rsd/signer-keys",
        {
            "name": "cosign release key",
            "public_key_pem": p256_key.public_pem,
            "allowed_evidence_types": ["cosign", "dsse"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["key_id"] == key_id_for(p256_key.public_pem)
    assert body["algorithm"] == "ecdsa-p256" and body["allowed_evidence_types"] == ["cosign", "dsse"]
    assert AuditEvent.objects.filter(action="signer_key.registered", product_key="rsd").count() == 1
    listed = api(security_reviewer).get("/api/v1/products/rsd/signer-keys").json()
    assert [k["key_id"] for k in listed] == [body["key_id"]]


def test_ci_tokens_and_engineers_cannot_register_keys(api, ci_token, author, product, p256_key):
    payload = {"name": "sneaky", "public_key_pem": p256_key.public_pem}
    assert api(token=ci_token).post("/api/v1/products/rsd/signer-keys", payload, format="json").status_code == 403
    assert api(author).post("/api/v1/products/rsd/signer-keys", payload, format="json").status_code == 403
    assert SignerKey.objects.count() == 0


def test_an_rsa_key_is_refused_with_a_reason(api, security_reviewer, product):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    response = api(security_reviewer).post(
        "/api/v1/products/rsd/signer-keys", {"name": "rsa", "public_key_pem": pem}, format="json"
    )
    assert response.status_code == 400 and "RSA" in response.json()["detail"]


def test_revoking_a_key_is_audited_and_twice_is_409(api, security_reviewer, registered_key):
    key_id = key_id_for(registered_key.public_pem)
    url = f"/api/v1/products/rsd/signer-keys/{key_id}/revoke"
    assert api(security_reviewer).post(url, {"reason": "laptop stolen"}, format="json").status_code == 200
    again = api(security_reviewer).post(url, {"reason": "again"}, format="json")
    assert again.status_code == 409 and "already revoked" in again.json()["detail"]
    assert AuditEvent.objects.get(action="signer_key.revoked").reason == "laptop stolen"


# ---------------------------------------------------------------- DSSE


def test_a_signed_slsa_provenance_is_verified_and_stored(upload, artifact, registered_key):
    evidence = evidence_of(upload(DIGEST, "dsse", dsse_envelope(registered_key, slsa_statement())))
    assert evidence.state == "parsed" and evidence.verdict == "signed", (evidence.verdict_detail, evidence.error)
    assert evidence.signer_key.key_id == key_id_for(registered_key.public_pem)
    provenance = Provenance.objects.get(evidence=evidence)
    assert provenance.builder_id == "https://ci.example/acme/rsd/release.yml@refs/heads/main"
    assert provenance.source_repository == "https://github.com/acme/rsd"
    assert provenance.source_commit == "c" * 40
    assert provenance.invocation_id.endswith("/runs/42/attempts/1")


def test_a_forged_dsse_signature_is_rejected_kept_and_audited(upload, artifact, registered_key, ed25519_key):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from tests.evidence.conftest import KeyPair

    forger = KeyPair(ed25519.Ed25519PrivateKey.generate(), "", "ed25519")
    evidence = evidence_of(upload(DIGEST, "dsse", dsse_envelope(forger, slsa_statement())))
    assert evidence.state == "rejected" and evidence.verdict == "invalid_signature"
    assert not evidence.counts_as_evidence()
    assert not Provenance.objects.exists()
    assert AuditEvent.objects.filter(action="evidence.rejected", object_id=str(evidence.pk)).count() == 1


def test_a_tampered_payload_fails_verification(upload, artifact, registered_key):
    envelope = json.loads(dsse_envelope(registered_key, slsa_statement()))
    import base64

    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["runDetails"]["builder"]["id"] = "https://evil.example/builder"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    evidence = evidence_of(upload(DIGEST, "dsse", json.dumps(envelope).encode()))
    assert evidence.verdict == "invalid_signature"


def test_a_subject_mismatch_is_rejected(upload, artifact, registered_key):
    evidence = evidence_of(upload(DIGEST, "dsse", dsse_envelope(registered_key, slsa_statement(OTHER_DIGEST))))
    assert evidence.state == "rejected" and evidence.verdict == "subject_mismatch"
    assert OTHER_DIGEST in evidence.verdict_detail and DIGEST in evidence.verdict_detail


def test_a_revoked_key_no_longer_verifies(upload, artifact, registered_key, admin_user):
    key = SignerKey.objects.get()
    services.signer_key_revoke(key=key, actor=admin_user, reason="rotated")
    evidence = evidence_of(upload(DIGEST, "dsse", dsse_envelope(registered_key, slsa_statement())))
    assert evidence.verdict == "invalid_signature" and "no registered, unrevoked signer key" in evidence.verdict_detail


def test_a_key_outside_its_validity_window_or_types_does_not_verify(upload, artifact, ed25519_key, admin_user, product):
    services.signer_key_register(
        product=product,
        name="expired",
        public_key_pem=ed25519_key.public_pem,
        actor=admin_user,
        valid_from=timezone.now() - timedelta(days=30),
        valid_until=timezone.now() - timedelta(days=1),
    )
    evidence = evidence_of(upload(DIGEST, "dsse", dsse_envelope(ed25519_key, slsa_statement())))
    assert evidence.verdict == "invalid_signature"


def test_a_key_only_allowed_for_cosign_cannot_sign_dsse(upload, artifact, ed25519_key, admin_user, product):
    services.signer_key_register(
        product=product,
        name="cosign only",
        public_key_pem=ed25519_key.public_pem,
        actor=admin_user,
        allowed_evidence_types=["cosign"],
    )
    evidence = evidence_of(upload(DIGEST, "dsse", dsse_envelope(ed25519_key, slsa_statement())))
    assert evidence.verdict == "invalid_signature"


def test_a_dsse_test_result_statement_becomes_test_rows(upload, artifact, registered_key):
    statement = slsa_statement()
    statement["predicateType"] = "https://in-toto.io/attestation/test-result/v0.1"
    statement["predicate"] = {
        "result": "FAILED",
        "passedTests": ["REQ-017 amber threshold"],
        "failedTests": ["test_red"],
        "configuration": [],
    }
    evidence = evidence_of(upload(DIGEST, "dsse", dsse_envelope(registered_key, statement)))
    assert evidence.state == "parsed" and evidence.verdict == "signed"
    rows = {r.name: r for r in TestResult.objects.filter(evidence=evidence)}
    assert rows["test_red"].status == "failed" and rows["REQ-017 amber threshold"].requirement_ids == ["REQ-017"]


def test_a_document_that_is_not_dsse_fails_with_the_field_named(upload, artifact, registered_key):
    evidence = evidence_of(upload(DIGEST, "dsse", b'{"hello": "world"}'))
    assert evidence.state == "failed" and "payloadType" in evidence.error


# ---------------------------------------------------------------- cosign


def _simplesigning(digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "ghcr.io/acme/rsd"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


def test_a_cosign_image_signature_is_verified_against_the_artifact_digest(
    upload, artifact, product, admin_user, p256_key
):
    services.signer_key_register(product=product, name="cosign", public_key_pem=p256_key.public_pem, actor=admin_user)
    payload = _simplesigning(DIGEST)
    evidence = evidence_of(upload(DIGEST, "cosign", payload, signature=p256_key.sign_b64(payload)))
    assert evidence.state == "parsed" and evidence.verdict == "signed", evidence.verdict_detail
    assert evidence.summary["docker_reference"] == "ghcr.io/acme/rsd"


def test_a_cosign_signature_for_another_image_is_a_subject_mismatch(upload, artifact, product, admin_user, p256_key):
    services.signer_key_register(product=product, name="cosign", public_key_pem=p256_key.public_pem, actor=admin_user)
    payload = _simplesigning(OTHER_DIGEST)
    evidence = evidence_of(upload(DIGEST, "cosign", payload, signature=p256_key.sign_b64(payload)))
    assert evidence.state == "rejected" and evidence.verdict == "subject_mismatch"


def test_a_blob_signature_over_a_report_makes_it_signed_and_a_bad_one_rejects_it(upload, artifact, registered_key):
    good = evidence_of(upload(DIGEST, "junit", JUNIT, signature=registered_key.sign_b64(JUNIT)))
    assert good.verdict == "signed" and good.state == "parsed"
    other = JUNIT.replace(b"_ok", b"_ok2")
    bad = evidence_of(upload(DIGEST, "junit", other, signature=registered_key.sign_b64(JUNIT)))
    assert bad.verdict == "invalid_signature" and bad.state == "rejected"
    assert not TestResult.objects.filter(evidence=bad).exists()


# ---------------------------------------------------------------- VEX suppresses only when signed

GRYPE = {
    "matches": [
        {
            "vulnerability": {
                "id": "CVE-2024-0001",
                "severity": "Critical",
                "fix": {"state": "not-fixed", "versions": []},
            },
            "artifact": {"name": "openssl", "version": "3.0.1", "purl": "pkg:apk/alpine/openssl@3.0.1"},
        }
    ],
    "source": {"type": "image", "target": {"userInput": "rsd"}},
    "descriptor": {"name": "grype", "version": "0.80.0"},
}
OPENVEX = {
    "@context": "https://openvex.dev/ns/v0.2.0",
    "@id": "https://acme.example/vex/1",
    "author": "Acme security",
    "timestamp": "2025-01-01T00:00:00Z",
    "version": 1,
    "statements": [
        {
            "vulnerability": {"name": "CVE-2024-0001"},
            "products": [{"@id": "pkg:apk/alpine/openssl@3.0.1"}],
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
        }
    ],
}


def test_signed_openvex_suppresses_and_unsigned_openvex_does_not(upload, artifact, registered_key):
    evidence_of(upload(DIGEST, "grype", json.dumps(GRYPE).encode()))
    vulnerability = Vulnerability.objects.get()
    assert vulnerability.severity == "critical" and vulnerability.suppressed_by is None

    unsigned = json.dumps(OPENVEX).encode()
    evidence_of(upload(DIGEST, "openvex", unsigned))
    vulnerability.refresh_from_db()
    assert vulnerability.suppressed_by is None  # unsigned VEX never suppresses

    signed_doc = json.dumps({**OPENVEX, "@id": "https://acme.example/vex/2"}).encode()
    vex = evidence_of(upload(DIGEST, "openvex", signed_doc, signature=registered_key.sign_b64(signed_doc)))
    assert vex.verdict == "signed"
    vulnerability.refresh_from_db()
    assert vulnerability.suppressed_by.evidence == vex


def test_vex_is_reapplied_when_a_new_scan_arrives(upload, artifact, registered_key):
    doc = json.dumps(OPENVEX).encode()
    evidence_of(upload(DIGEST, "openvex", doc, signature=registered_key.sign_b64(doc)))
    evidence_of(upload(DIGEST, "grype", json.dumps(GRYPE).encode()))
    assert Vulnerability.objects.get().suppressed_by == VexStatement.objects.get()


def test_reprocessing_a_vex_after_its_key_is_revoked_lifts_the_suppression(
    upload, artifact, registered_key, admin_user
):
    doc = json.dumps(OPENVEX).encode()
    vex = evidence_of(upload(DIGEST, "openvex", doc, signature=registered_key.sign_b64(doc)))
    evidence_of(upload(DIGEST, "grype", json.dumps(GRYPE).encode()))
    services.signer_key_revoke(key=SignerKey.objects.get(), actor=admin_user, reason="compromised")
    from evidence.processing import evidence_process

    evidence_process(evidence_id=vex.pk, reprocess=True)
    assert Evidence.objects.get(pk=vex.pk).state == "rejected"
    assert Vulnerability.objects.get().suppressed_by is None
