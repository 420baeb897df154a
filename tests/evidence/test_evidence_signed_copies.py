"""A signature sent with a file already held: the signed copy is its own evidence, counts, and nothing doubles."""

from __future__ import annotations

import json

import pytest

from approvals import releases
from approvals import selectors as approval_selectors
from changecontrol.models import AuditEvent
from evidence import selectors, services
from evidence.models import Evidence, SignerKey, TestResult
from evidence.processing import evidence_process
from tests.evidence.conftest import DIGEST, evidence_of
from tests.evidence.test_evidence_signatures import GRYPE, OPENVEX
from tests.samples import sample_bytes

pytestmark = pytest.mark.django_db

JUNIT = b"""<testsuite name="scoring" tests="3" failures="1">
  <testcase classname="scoring" name="test_REQ-017_amber"/>
  <testcase classname="scoring" name="test_green"/>
  <testcase classname="scoring" name="test_red"><failure message="boom"/></testcase>
</testsuite>"""
SBOM = "sbom/cyclonedx-1.6-cyclonedx-py-pipenv.json"


def stored_files(private_media) -> int:
    return sum(1 for path in (private_media / "evidence").rglob("*") if path.is_file())


@pytest.fixture
def release(cast, artifact):
    return releases.release_create(
        product=artifact.product, actor=cast["rory"], version="7.2.4", artifact_digests=[artifact.digest]
    )


def facts_of(release) -> dict:
    return approval_selectors.release_facts(release=release, environment_key="staging", after=None)["artifacts"][0]


# ---------------------------------------------------------------- idempotency stays


def test_the_same_signed_file_with_the_same_signature_is_the_same_evidence(
    upload, artifact, registered_key, private_media
):
    signature = registered_key.sign_b64(JUNIT)
    first = upload(DIGEST, "junit", JUNIT, signature=signature)
    again = upload(DIGEST, "junit", JUNIT, signature=signature)
    assert first.json()["id"] == again.json()["id"]
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert Evidence.objects.count() == 1 and TestResult.objects.count() == 3
    assert stored_files(private_media) == 2  # the report and its signature


def test_the_same_unsigned_file_again_is_the_same_evidence(upload, artifact, private_media):
    first = upload(DIGEST, "junit", JUNIT)
    again = upload(DIGEST, "junit", JUNIT)
    assert first.json()["id"] == again.json()["id"] and again.json()["created"] is False
    assert Evidence.objects.count() == 1 and stored_files(private_media) == 1


# ---------------------------------------------------------------- the signed copy counts, the unsigned one stops


def test_a_signature_sent_with_a_file_held_unsigned_makes_signed_evidence_that_counts_alone(
    api, ci_token, upload, artifact, registered_key, release
):
    unsigned = evidence_of(upload(DIGEST, "junit", JUNIT))
    assert unsigned.verdict == "unsigned" and unsigned.state == "parsed"

    response = upload(DIGEST, "junit", JUNIT, signature=registered_key.sign_b64(JUNIT))
    assert response.status_code == 202 and response.json()["created"] is True
    signed = evidence_of(response)
    assert signed.pk != unsigned.pk
    assert signed.verdict == "signed" and signed.state == "parsed" and signed.counts_as_evidence()

    unsigned.refresh_from_db()
    assert unsigned.state == "superseded" and unsigned.superseded_by == signed
    assert not unsigned.counts_as_evidence()
    shown = api(token=ci_token).get(f"/api/v1/evidence/{unsigned.human_id}").json()
    assert shown["state"] == "superseded" and shown["superseded_by"] == signed.human_id
    assert shown["counts_as_evidence"] is False
    event = AuditEvent.objects.get(action="evidence.superseded", object_human_id=unsigned.human_id)
    assert signed.human_id in event.reason and "signature" in event.reason

    # The file's three tests count once, from the signed copy, wherever totals are read.
    assert selectors.test_counts(artifact) == {"passed": 2, "failed": 1, "error": 0, "skipped": 0, "total": 3}
    facts = facts_of(release)
    assert facts["tests"] == {"total": 3, "passed": 2, "failed": 1, "error": 0, "skipped": 0}
    assert [(e["id"], e["verdict"]) for e in facts["evidence"]] == [(signed.pk, "signed")]
    assert facts["signed_types"] == ["junit"]
    assert api(token=ci_token).get(f"/api/v1/artifacts/{DIGEST}").json()["tests"]["total"] == 3


def test_a_signed_sbom_sent_again_counts_its_components_once(upload, artifact, registered_key, release):
    sbom = sample_bytes(SBOM)
    unsigned = evidence_of(upload(DIGEST, "cyclonedx", sbom))
    components = facts_of(release)["sbom_components"]
    assert components > 0

    signed = evidence_of(upload(DIGEST, "cyclonedx", sbom, signature=registered_key.sign_b64(sbom)))
    assert signed.verdict == "signed" and signed.state == "parsed"
    assert Evidence.objects.get(pk=unsigned.pk).state == "superseded"
    facts = facts_of(release)
    assert facts["sbom_components"] == components
    assert sum(group["count"] for group in facts["licenses"]) == components
    assert "cyclonedx" in facts["signed_types"]


def test_a_signed_scan_sent_again_counts_its_vulnerabilities_once(upload, artifact, registered_key, release):
    scan = json.dumps(GRYPE).encode()
    evidence_of(upload(DIGEST, "grype", scan))
    evidence_of(upload(DIGEST, "grype", scan, signature=registered_key.sign_b64(scan)))
    assert selectors.vulnerability_counts(artifact)["critical"] == 1
    assert facts_of(release)["vulns"]["all"] == {"critical": 1}


def test_the_same_vex_sent_again_with_its_signature_suppresses(upload, artifact, registered_key):
    evidence_of(upload(DIGEST, "grype", json.dumps(GRYPE).encode()))
    vex = json.dumps(OPENVEX).encode()
    evidence_of(upload(DIGEST, "openvex", vex))
    assert selectors.vulnerability_counts(artifact)["critical"] == 1
    signed = evidence_of(upload(DIGEST, "openvex", vex, signature=registered_key.sign_b64(vex)))
    assert signed.verdict == "signed"
    assert selectors.vulnerability_counts(artifact)["critical"] == 0


def test_the_file_sent_again_without_its_signature_leaves_the_signed_copy_counting(
    upload, artifact, registered_key, release
):
    signed = evidence_of(upload(DIGEST, "junit", JUNIT, signature=registered_key.sign_b64(JUNIT)))
    unsigned = evidence_of(upload(DIGEST, "junit", JUNIT))
    assert unsigned.state == "superseded" and unsigned.superseded_by == signed
    assert Evidence.objects.get(pk=signed.pk).state == "parsed"
    assert facts_of(release)["tests"]["total"] == 3


def test_a_copy_whose_signature_fails_supersedes_nothing(upload, artifact, registered_key, ed25519_key, release):
    unsigned = evidence_of(upload(DIGEST, "junit", JUNIT))
    forged = evidence_of(upload(DIGEST, "junit", JUNIT, signature=ed25519_key.sign_b64(b"something else")))
    assert forged.state == "rejected"
    assert Evidence.objects.get(pk=unsigned.pk).state == "parsed"
    assert facts_of(release)["tests"]["total"] == 3


def test_the_unsigned_copy_counts_again_when_the_signed_one_stops_counting(
    upload, artifact, registered_key, admin_user, release
):
    unsigned = evidence_of(upload(DIGEST, "junit", JUNIT))
    signed = evidence_of(upload(DIGEST, "junit", JUNIT, signature=registered_key.sign_b64(JUNIT)))
    services.signer_key_revoke(key=SignerKey.objects.get(), actor=admin_user, reason="compromised")

    evidence_process(evidence_id=signed.pk, reprocess=True)
    assert Evidence.objects.get(pk=signed.pk).state == "rejected"
    unsigned.refresh_from_db()
    assert unsigned.state == "parsed" and unsigned.superseded_by is None
    assert AuditEvent.objects.filter(action="evidence.reinstated", object_human_id=unsigned.human_id).exists()
    facts = facts_of(release)
    assert facts["tests"]["total"] == 3 and [e["verdict"] for e in facts["evidence"]] == ["unsigned"]


def test_reprocessing_a_superseded_copy_leaves_it_superseded(upload, artifact, registered_key):
    unsigned = evidence_of(upload(DIGEST, "junit", JUNIT))
    signed = evidence_of(upload(DIGEST, "junit", JUNIT, signature=registered_key.sign_b64(JUNIT)))
    evidence_process(evidence_id=unsigned.pk, reprocess=True)
    unsigned.refresh_from_db()
    assert unsigned.state == "superseded" and unsigned.superseded_by == signed
    assert selectors.test_counts(artifact)["total"] == 3


def test_the_evidence_page_names_the_copy_that_counts_instead(client, cast, upload, artifact, registered_key):
    unsigned = evidence_of(upload(DIGEST, "junit", JUNIT))
    signed = evidence_of(upload(DIGEST, "junit", JUNIT, signature=registered_key.sign_b64(JUNIT)))
    client.force_login(cast["audrey"])
    page = client.get(f"/evidence/{unsigned.human_id}").content.decode()
    assert f"/evidence/{signed.human_id}" in page and "counts instead" in page


def test_the_client_waiting_on_a_copy_that_turns_superseded_is_done(
    api, ci_token, upload, artifact, registered_key, capsys
):
    from custody_cli.intake import _outcome

    signed = evidence_of(upload(DIGEST, "junit", JUNIT, signature=registered_key.sign_b64(JUNIT)))
    unsigned = evidence_of(upload(DIGEST, "junit", JUNIT))
    shown = api(token=ci_token).get(f"/api/v1/evidence/{unsigned.human_id}").json()
    assert _outcome(shown, evidence_id=unsigned.human_id, name="report.junit", waited=True, timeout=1) == 0
    assert f"{signed.human_id} holds the same file and counts instead" in capsys.readouterr().err
