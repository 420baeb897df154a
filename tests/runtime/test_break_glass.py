"""Break-glass: only the policy's role, a justification, never by an author of the change; alert at once; a quality
reviewer's retrospective e-signature is due within the policy's window, and overdue reviews alert daily."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert
from changecontrol import roles
from changecontrol.models import AuditEvent, Role, Signature
from runtime import tasks
from runtime.models import BreakGlassReview, Deployment
from tests.builders import POLICY_WITHOUT_TRACE_BLOCK, activate_policy, make_artifact, make_build, rewrite_sealed
from tests.conftest import PASSWORD
from tests.runtime.helpers import deploy

pytestmark = pytest.mark.django_db

WHY = "Sepsis score service crash-looping after a certificate rotation; patients' scores are not shown."


def break_glass(api, user, digest, justification=WHY):
    return api(user).post(
        "/api/v1/deployments",
        {"artifact": digest, "environment": "production", "kind": "break_glass", "justification": justification},
        format="json",
    )


def test_sre_breaks_glass_with_a_justification_alert_at_once_and_review_due(api, cast, release):
    digest = release.artifacts.get().digest
    before = timezone.now()
    response = break_glass(api, cast["sam"], digest)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "break_glass"
    assert body["authorised"] is False  # the pipeline did not allow it: that is what break-glass means
    assert body["reasons"][0] == f"break-glass by Sam SRE: {WHY}"
    assert body["review"]["state"] == "due"
    review = BreakGlassReview.objects.get(deployment_id=int(body["id"][4:]))
    assert before + timedelta(hours=24) <= review.due_at <= timezone.now() + timedelta(hours=24)
    alert = Alert.objects.get(event_kind="break_glass")
    assert body["id"] in alert.subject and alert.body["justification"] == WHY
    assert not Alert.objects.filter(event_kind="unauthorised_deployment").exists()
    assert AuditEvent.objects.filter(action="break_glass_review.due", object_human_id=review.human_id).exists()


def test_break_glass_without_justification_is_400(api, cast, release):
    response = break_glass(api, cast["sam"], release.artifacts.get().digest, justification="   ")
    assert response.status_code == 400
    assert "justification" in response.json()["detail"]
    assert not Deployment.objects.exists()


def test_engineer_cannot_break_glass_and_the_refusal_is_audited(api, cast, release):
    response = break_glass(api, cast["alice"], release.artifacts.get().digest)
    assert response.status_code == 403
    assert response.json()["rule"] == "break_glass.role_required"
    assert "sre" in response.json()["detail"]
    assert AuditEvent.objects.filter(action="deployment.break_glass_refused", actor__username="alice").exists()
    # The claim is refused, the fact is not: the deployment is recorded, unauthorised, and alerted.
    deployment = Deployment.objects.get()
    assert response.json()["deployment"] == deployment.human_id and deployment.human_id in response.json()["detail"]
    assert deployment.authorised is False and deployment.reasons[0].startswith("break-glass refused by rule")
    assert Alert.objects.filter(event_kind="unauthorised_deployment", subject__startswith=deployment.human_id).exists()


def test_ci_service_account_cannot_break_glass(api, ci_token, release):
    response = deploy(api, ci_token, release.artifacts.get().digest, kind="break_glass", justification=WHY)
    assert response.status_code == 403
    assert response.json()["rule"] == "break_glass.role_required"


def test_sre_who_authored_a_commit_cannot_break_glass_for_it(api, cast, product, ci_account):
    artifact = make_artifact(make_build(product, registered_by=ci_account, commit_authors=("SAM@example.test",)))
    response = break_glass(api, cast["sam"], artifact.digest)
    assert response.status_code == 403
    assert response.json()["error"] == "separation_of_duties"
    assert response.json()["rule"] == "break_glass.commit_author_cannot_deploy"
    assert AuditEvent.objects.filter(
        action="deployment.break_glass_refused", reason__startswith="break_glass.commit_author_cannot_deploy"
    ).exists()


def test_sre_who_requested_a_change_in_the_release_cannot_break_glass_for_it(api, cast, release, admin_user, product):
    # Paula requested the release's CR; give her the SRE role too.
    roles.role_grant(actor=admin_user, user=cast["paula"], product=product, role=Role.SRE)
    response = break_glass(api, cast["paula"], release.artifacts.get().digest)
    assert response.status_code == 403
    assert response.json()["rule"] == "break_glass.change_author_cannot_deploy"


def test_the_policy_names_who_may_break_glass(api, cast, release, product):
    activate_policy(
        product,
        POLICY_WITHOUT_TRACE_BLOCK.replace(
            "break_glass: {roles: [sre], retrospective_review_hours: 24}",
            "break_glass: {roles: [release_manager], retrospective_review_hours: 4}",
        ),
    )
    digest = release.artifacts.get().digest
    assert break_glass(api, cast["sam"], digest).json()["rule"] == "break_glass.role_required"
    body = break_glass(api, cast["rory"], digest).json()
    review = BreakGlassReview.objects.get(deployment_id=int(body["id"][4:]))
    assert review.due_at - review.deployment.deployed_at == timedelta(hours=4)


def review(api, user, dep, password=PASSWORD, findings="Justified: the certificate fix was the only change."):
    """Read the deployment as an API client does, then sign its review with the review's content_sha256."""
    client = api(user)
    body = {"username": user.username, "password": password, "findings": findings}
    review_read = client.get(f"/api/v1/deployments/{dep}").json()["review"]
    if review_read is not None:  # a normal deployment has no review, so nothing to read
        body["content_sha256"] = review_read["content_sha256"]
    return client.post(f"/api/v1/deployments/{dep}/review", body, format="json")


def test_quality_reviewer_signs_the_retrospective_review(api, cast, release):
    dep = break_glass(api, cast["sam"], release.artifacts.get().digest).json()["id"]
    response = review(api, cast["quinn"], dep)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "reviewed"
    assert body["reviewer"] == "quinn"
    assert body["signature"]["meaning"] == "retrospective_reviewed"
    assert body["signature"]["printed_name"] == "Quinn Quality"
    signature = Signature.objects.get(subject_type="approvals.breakglassreview")
    assert signature.content["deployment"] == dep and signature.content["justification"] == WHY
    again = review(api, cast["quinn"], dep)
    assert again.status_code == 409 and "reviewed" in again.json()["detail"]


def test_review_refusals_wrong_password_deployer_non_quality_and_no_findings(api, cast, release):
    dep = break_glass(api, cast["sam"], release.artifacts.get().digest).json()["id"]
    assert review(api, cast["quinn"], dep, password="wrong").json()["error"] == "reauthentication_failed"
    refused = review(api, cast["sam"], dep).json()
    assert refused["rule"] == "sod.deployer_cannot_review"
    assert AuditEvent.objects.filter(
        action="signature.refused", reason__startswith="sod.deployer_cannot_review"
    ).exists()
    assert review(api, cast["alice"], dep).status_code == 403
    assert review(api, cast["quinn"], dep, findings="  ").status_code == 400
    assert not Signature.objects.filter(subject_type="approvals.breakglassreview").exists()
    assert BreakGlassReview.objects.get().state == "due"


def test_a_normal_deployment_has_no_review_to_sign(api, ci_token, cast, artifact):
    dep = deploy(api, ci_token, artifact.digest).json()["id"]
    response = review(api, cast["quinn"], dep)
    assert response.status_code == 409 and "normal deployment" in response.json()["detail"]


def test_overdue_reviews_alert_once_a_day(api, cast, release):
    dep = break_glass(api, cast["sam"], release.artifacts.get().digest).json()["id"]
    assert tasks.alert_overdue_reviews() == []
    rewrite_sealed(BreakGlassReview.objects.all(), due_at=timezone.now() - timedelta(hours=2))
    first = tasks.alert_overdue_reviews()
    second = tasks.alert_overdue_reviews()
    assert first == second == [BreakGlassReview.objects.get().human_id]
    alerts = Alert.objects.filter(event_kind="review_overdue")
    assert alerts.count() == 1 and dep in alerts.get().subject
    review(api, cast["quinn"], dep)
    assert tasks.alert_overdue_reviews() == []
