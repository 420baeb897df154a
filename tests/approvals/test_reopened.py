"""A promotion's state agrees with its gate: evidence that arrives after approval reopens an approved promotion.

The reopened promotion names the evidence that changed (its audit event, its page, the status API's reasons), its
earlier approvals are invalidated, the reviewers' inbox lists it again, and a new signature approves it again.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction

from approvals import services
from approvals.models import Promotion
from changecontrol.models import AuditEvent, Signature
from common.errors import InvalidState
from tests.builders import add_scan, add_tests, sign

JUNIT_FAILING = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2" failures="1" errors="0" skipped="0" time="0.1">
<testcase classname="tests.test_score" name="test_score_in_range" time="0.1"/>
<testcase classname="tests.test_score" name="test_score_rounding" time="0.1"><failure message="off by one"/></testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def approved(production_promotion, cast):
    sign(production_promotion, cast["quinn"])
    production_promotion.refresh_from_db()
    assert production_promotion.state == Promotion.State.APPROVED
    return production_promotion


def _status(api, token, digest):
    response = api(token=token).get("/api/v1/status", {"artifact": digest, "environment": "production"})
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_failing_report_after_approval_reopens_the_promotion_naming_the_report(
    api, ci_token, approved, artifact, cast, ci_account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(token=ci_token).post(
            f"/api/v1/artifacts/{artifact.digest}/evidence",
            {"type": "junit", "file": SimpleUploadedFile("junit.xml", JUNIT_FAILING), "name": "unit-tests-rerun"},
            format="multipart",
        )
    assert response.status_code == 202, response.json()
    report = f"EV-{response.json()['id']}" if str(response.json()["id"]).isdigit() else response.json()["id"]
    approved.refresh_from_db()
    assert approved.state == Promotion.State.REOPENED
    assert report in approved.reopen_reason and "gate tests fail" in approved.reopen_reason
    # 1. The audit event names the evidence and the person (pipeline) whose report moved it.
    event = AuditEvent.objects.get(action="promotion.reopened", object_human_id=approved.human_id)
    assert event.actor == ci_account
    assert event.before == {"state": "approved"}
    assert any(report in label for label in event.after["evidence"]["new"])
    assert "tests" in event.after["failing_gates"]  # and after-staging: staging, approved on it too, reopened first
    # 2. The approvals given before no longer count: they are invalidated, with the reason.
    quinns = Signature.objects.get(subject_human_id=approved.human_id, signer=cast["quinn"])
    assert quinns.invalidated_at is not None and "reopened after approval" in quinns.invalidated_reason
    assert event.after["invalidated_signatures"] == [quinns.human_id]
    # 3. The status API, the promotion API and the page agree.
    body = _status(api, ci_token, artifact.digest)
    assert body["decision"] == "blocked"
    assert any("reopened" in r and report in r for r in body["reasons"]), body["reasons"]
    assert body["approvals"]["missing"] == ["quality"]
    detail = api(cast["quinn"]).get(f"/api/v1/promotions/{approved.human_id}").json()
    assert detail["state"] == "reopened" and report in detail["reopen_reason"]
    page = api(cast["quinn"]).get(f"/promotions/{approved.human_id}").content.decode()
    assert 'data-testid="reopened"' in page and report in page
    # 4. The reviewer's inbox lists it again.
    pending = api(cast["quinn"]).get("/approvals/").content.decode()
    assert approved.human_id in pending and "Reopened" in pending


def test_a_reopened_promotion_is_approved_again_by_a_new_signature_over_what_is_now_on_file(
    api, ci_token, approved, artifact, cast
):
    add_scan(artifact, severities=("medium",))  # informational only, but the reviewer never saw it
    services.promotion_refresh(promotion=approved, actor=None)
    approved.refresh_from_db()
    assert approved.state == Promotion.State.REOPENED
    assert "the evidence changed since approval: new EV-" in approved.reopen_reason
    body = _status(api, ci_token, artifact.digest)
    assert body["decision"] == "pending"
    assert any("reopened" in r for r in body["reasons"])
    sign(approved, cast["quinn"])
    approved.refresh_from_db()
    assert approved.state == Promotion.State.APPROVED
    assert _status(api, ci_token, artifact.digest)["decision"] == "allowed"
    approved_again = AuditEvent.objects.filter(action="promotion.approved", object_human_id=approved.human_id)
    assert approved_again.order_by("-id").first().before == {"state": "reopened"}


def test_withdrawn_evidence_does_not_bring_the_old_approval_back(api, ci_token, approved, artifact, cast):
    failing = add_tests(artifact, passed=5, failed=2)
    services.promotion_refresh(promotion=approved, actor=None)
    approved.refresh_from_db()
    assert approved.state == Promotion.State.REOPENED
    # The bad report is taken back: the evidence is what the reviewer saw, but their signature was invalidated.
    # (processed again, and this time failing: the steps the evidence table allows)
    for step in ("pending", "processing", "failed"):
        type(failing).objects.filter(pk=failing.pk).update(state=step)
    services.promotion_refresh(promotion=approved, actor=None)
    approved.refresh_from_db()
    assert approved.state == Promotion.State.REOPENED
    body = _status(api, ci_token, artifact.digest)
    assert body["decision"] == "pending" and body["approvals"]["missing"] == ["quality"]


def test_an_approval_that_still_stands_is_not_reopened(approved):
    services.promotion_refresh(promotion=approved, actor=None)
    approved.refresh_from_db()
    assert approved.state == Promotion.State.APPROVED
    assert not AuditEvent.objects.filter(action="promotion.reopened").exists()


def test_a_reopened_promotion_cannot_be_marked_deployed(approved, artifact):
    add_tests(artifact, passed=5, failed=2)
    services.promotion_refresh(promotion=approved, actor=None)
    with pytest.raises(InvalidState, match="reopened, not approved"):
        services.promotion_mark_deployed(promotion=approved, actor=None)


def test_the_database_refuses_a_reopened_promotion_without_its_reason(approved):
    with pytest.raises(IntegrityError), transaction.atomic():
        Promotion.objects.filter(pk=approved.pk).update(state="reopened", reopen_reason="")


def test_the_schema_lists_reopened_among_the_promotion_states(api, cast):
    response = api(cast["quinn"]).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    assert "reopened" in response.content.decode()
