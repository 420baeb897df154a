"""Change requests: classification from policy, submission, Part 11 signatures, separation of duties."""

import threading

import pytest
from django.db import connection

from changecontrol import services
from changecontrol.models import AuditEvent, ChangeRequest, Signature
from common.errors import InvalidState, ReauthenticationFailed, SeparationOfDutiesViolation, ValidationFailed
from tests.conftest import HIGH_RISK, LOW_RISK, MEDIUM_RISK, PASSWORD, open_change_request, sign_change_request


def sign(change_request, signer, meaning="approved", password=PASSWORD, comment="Reviewed the evidence."):
    return sign_change_request(change_request, signer, meaning=meaning, password=password, comment=comment)


def test_tier_is_computed_from_the_policy_answers(product, release_manager):
    change_request = open_change_request(product=product, requester=release_manager, answers=HIGH_RISK, submit=False)
    assert (change_request.risk_score, change_request.tier) == (4, "high")
    assert change_request.policy_version.version == 1


def test_low_tier_is_approved_automatically_and_recorded_as_a_system_decision(product, release_manager):
    change_request = open_change_request(product=product, requester=release_manager, answers=LOW_RISK)
    assert change_request.state == ChangeRequest.State.APPROVED and change_request.approved_automatically
    event = AuditEvent.objects.get(action="change_request.auto_approved", object_id=str(change_request.pk))
    assert event.actor is None and event.after["policy_version"] == 1


def test_submitting_a_change_that_needs_signatures_raises_an_approval_requested_alert(product, release_manager):
    from alerts.models import Alert

    change_request = open_change_request(product=product, requester=release_manager, answers=HIGH_RISK)
    alert = Alert.objects.get(event_kind="approval_requested")
    assert alert.product == product and alert.body["change_request"] == change_request.human_id
    assert alert.body["roles"] == "quality, security"
    open_change_request(product=product, requester=release_manager, answers=LOW_RISK)  # auto-approved: no alert
    assert Alert.objects.filter(event_kind="approval_requested").count() == 1


def test_submitting_needs_risk_assessment_and_plans(product, release_manager):
    change_request = services.change_request_create(product=product, requester=release_manager, title="Tidy logging")
    with pytest.raises(ValidationFailed) as refused:
        services.change_request_submit(change_request=change_request, actor=release_manager)
    assert (
        "risk questionnaire" in str(refused.value)
        and "verification plan" in str(refused.value)
        and "rollback plan" in str(refused.value)
    )


def test_medium_tier_needs_one_quality_signature(product, release_manager, quality_reviewer):
    change_request = open_change_request(product=product, requester=release_manager, answers=MEDIUM_RISK)
    signature = sign(change_request, quality_reviewer)
    change_request.refresh_from_db()
    assert change_request.state == ChangeRequest.State.APPROVED
    assert (
        signature.printed_name == "Quinn Quality"
        and signature.role == "quality"
        and len(signature.content_sha256) == 64
    )
    assert "Quinn Quality — Approved as Quality reviewer — " in signature.manifestation


def test_high_tier_needs_quality_and_security(product, release_manager, quality_reviewer, security_reviewer):
    change_request = open_change_request(product=product, requester=release_manager, answers=HIGH_RISK)
    sign(change_request, quality_reviewer)
    change_request.refresh_from_db()
    assert change_request.state == ChangeRequest.State.SUBMITTED
    sign(change_request, security_reviewer)
    change_request.refresh_from_db()
    assert change_request.state == ChangeRequest.State.APPROVED


def test_requester_cannot_sign_own_change(product, cast):
    # Rory holds quality too, but requested the change: separation of duties refuses, and it is audited.
    from changecontrol import roles

    rory = cast["rory"]
    roles.role_grant(actor=None, user=rory, product=product, role="quality")
    change_request = open_change_request(product=product, requester=rory)
    with pytest.raises(SeparationOfDutiesViolation) as refused:
        sign(change_request, rory)
    assert refused.value.rule == "sod.requester_cannot_sign"
    assert AuditEvent.objects.filter(
        action="signature.refused", reason__startswith="sod.requester_cannot_sign"
    ).exists()
    assert not Signature.objects.filter(signer=rory).exists()


def test_author_who_edited_cannot_sign(product, release_manager, quality_reviewer):
    change_request = open_change_request(product=product, requester=release_manager, submit=False)
    services.change_request_update(
        change_request=change_request, actor=quality_reviewer, rollback_plan="Feature flag off, then revert."
    )
    services.change_request_submit(change_request=change_request, actor=release_manager)
    with pytest.raises(SeparationOfDutiesViolation) as refused:
        sign(change_request, quality_reviewer)
    assert refused.value.rule == "sod.author_cannot_sign"


def test_wrong_password_signs_nothing_is_audited_and_counts_toward_lockout(
    product, release_manager, quality_reviewer, settings
):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 2
    change_request = open_change_request(product=product, requester=release_manager)
    for _ in range(2):
        with pytest.raises(ReauthenticationFailed):
            sign(change_request, quality_reviewer, password="wrong")
    quality_reviewer.refresh_from_db()
    assert quality_reviewer.is_locked()
    assert not Signature.objects.filter(signer=quality_reviewer).exists()
    assert AuditEvent.objects.filter(action="signature.failed", actor=quality_reviewer).count() == 2
    assert AuditEvent.objects.filter(action="account.locked").exists()


def test_editing_after_approval_resets_it(product, release_manager, quality_reviewer):
    change_request = open_change_request(product=product, requester=release_manager)
    sign(change_request, quality_reviewer)
    change_request = services.change_request_update(
        change_request=change_request, actor=release_manager, risk_answers=HIGH_RISK
    )
    assert change_request.state == ChangeRequest.State.SUBMITTED and change_request.tier == "high"
    assert not Signature.objects.get(signer=quality_reviewer).is_valid()
    assert AuditEvent.objects.filter(action="change_request.approval_reset").exists()


def test_signing_an_approved_change_is_a_wrong_state(product, release_manager, quality_reviewer, security_reviewer):
    change_request = open_change_request(product=product, requester=release_manager)
    sign(change_request, quality_reviewer)
    with pytest.raises(InvalidState, match="is approved, not submitted"):
        sign(change_request, security_reviewer)


def test_rejection_needs_a_reason_and_ends_the_change(product, release_manager, quality_reviewer):
    change_request = open_change_request(product=product, requester=release_manager)
    with pytest.raises(ValidationFailed):
        sign(change_request, quality_reviewer, meaning="rejected", comment="")
    sign(change_request, quality_reviewer, meaning="rejected", comment="No clinical sign-off attached.")
    change_request.refresh_from_db()
    assert change_request.state == ChangeRequest.State.REJECTED


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_signing_at_the_same_moment_both_count_exactly_once(
    product, release_manager, quality_reviewer, security_reviewer
):
    change_request = open_change_request(product=product, requester=release_manager, answers=HIGH_RISK)
    barrier = threading.Barrier(2)
    errors = []

    def sign_in_thread(signer):
        try:
            barrier.wait(timeout=10)
            sign(change_request, signer)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_in_thread, args=(s,)) for s in (quality_reviewer, security_reviewer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    change_request.refresh_from_db()
    assert change_request.state == ChangeRequest.State.APPROVED
    assert (
        Signature.objects.filter(
            subject_type="changecontrol.changerequest", subject_id=change_request.pk, meaning="approved"
        ).count()
        == 2
    )
    assert AuditEvent.objects.filter(action="change_request.approved").count() == 1
