"""Pages of the runtime record: the log with what runs now, a deployment's walk-back, the manual form, drift, break-glass."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from changecontrol.models import Signature
from runtime.models import BreakGlassReview, Deployment
from tests.builders import rewrite_sealed
from tests.conftest import PASSWORD, dialog_sha256
from tests.runtime.helpers import approved_for_production, deploy

pytestmark = pytest.mark.django_db

WHY = "Certificate rotation broke the score service; patients' scores were not shown."


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_deployment_log_shows_what_runs_in_production_and_where_it_came_from(ci_token, api, release, cast):
    approved_for_production(release, cast)
    digest = release.artifacts.get().digest
    dep = deploy(api, ci_token, digest).json()["id"]
    html = page(cast["audrey"]).get("/deployments/").content.decode()
    assert "Running in rsd Production now" in html
    assert dep in html and "7.2.4" in html and release.artifacts.get().build.human_id in html
    filtered = page(cast["audrey"]).get("/deployments/", {"authorised": "false"}).content.decode()
    assert "No deployments match." in filtered
    assert "/api/v1/deployments.csv?authorised=false" in filtered


def test_deployment_page_walks_back_to_commits_changes_and_approvals(ci_token, api, release, cast, change_request):
    approved_for_production(release, cast)
    dep = deploy(api, ci_token, release.artifacts.get().digest).json()["id"]
    response = page(cast["audrey"]).get(f"/deployments/{dep}")
    html = response.content.decode()
    assert response.status_code == 200
    assert "alice@example.test" in html and change_request.human_id in html and "REQ-017" in html
    assert "Quinn Quality (quality) approved" in html
    assert "Authorised" in html


def test_outsider_gets_404_on_every_runtime_page(ci_token, api, artifact, outsider):
    dep = deploy(api, ci_token, artifact.digest).json()["id"]
    client = page(outsider)
    assert client.get(f"/deployments/{dep}").status_code == 404
    assert client.post(f"/deployments/{dep}/review", {"username": "olga", "password": "x"}).status_code == 404
    assert client.get("/products/rsd/drift").status_code == 404
    assert dep not in client.get("/deployments/").content.decode()
    assert "No break-glass deployments." in client.get("/break-glass/").content.decode()


def test_manual_deployment_form_records_through_the_same_service(release, cast):
    digest = release.artifacts.get().digest
    client = page(cast["sam"])
    assert client.get("/deployments/new").status_code == 200
    response = client.post(
        "/deployments/new",
        {"artifact": digest, "environment": "production", "kind": "break_glass", "justification": WHY},
    )
    deployment = Deployment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/deployments/{deployment.human_id}"
    assert deployment.kind == "break_glass" and deployment.deployer == cast["sam"]
    refused = page(cast["alice"]).post(
        "/deployments/new",
        {"artifact": digest, "environment": "production", "kind": "break_glass", "justification": WHY},
        follow=True,
    )
    assert "break_glass.role_required" in refused.content.decode()
    # The claim is refused; the fact is still recorded, unauthorised.
    recorded = Deployment.objects.exclude(pk=deployment.pk).get()
    assert recorded.deployer == cast["alice"] and recorded.authorised is False
    assert recorded.human_id in refused.content.decode()


def test_drift_page_lists_open_findings_per_environment(api, ci_token, product, cast):
    api(token=ci_token).put(
        "/api/v1/products/rsd/environments/production/snapshot",
        {"artifacts": [{"name": "mystery", "digest": "sha256:" + "e" * 64}]},
        format="json",
    )
    html = page(cast["sam"]).get("/products/rsd/drift").content.decode()
    assert "Running but never registered by a build" in html and "mystery" in html


def test_break_glass_list_shows_overdue_and_quality_reviewer_signs_from_it(release, cast):
    page(cast["sam"]).post(
        "/deployments/new",
        {
            "artifact": release.artifacts.get().digest,
            "environment": "production",
            "kind": "break_glass",
            "justification": WHY,
        },
    )
    deployment = Deployment.objects.get()
    rewrite_sealed(BreakGlassReview.objects.all(), due_at=timezone.now() - timedelta(hours=3))
    html = page(cast["quinn"]).get("/break-glass/").content.decode()
    assert 'data-testid="review-overdue"' in html and "Review…" in html
    assert "Review…" not in page(cast["audrey"]).get("/break-glass/").content.decode()
    action = f"/deployments/{deployment.human_id}/review"
    response = page(cast["quinn"]).post(
        action,
        {
            "meaning": "retrospective_reviewed",
            "username": "quinn",
            "password": PASSWORD,
            "comment": "Justified.",
            "content_sha256": dialog_sha256(html, action),
        },
        follow=True,
    )
    assert "Signed:" in response.content.decode()
    review = BreakGlassReview.objects.get()
    assert review.state == "reviewed" and review.findings == "Justified."
    assert review.signature.meaning == Signature.Meaning.RETROSPECTIVE_REVIEWED


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_chromium_an_overdue_review_shows_red_and_a_quality_reviewer_signs_it(signed_in_page, release, cast):
    import re

    from playwright.sync_api import expect

    from runtime import deployments

    deployment = deployments.deployment_record(
        artifact=release.artifacts.get(),
        environment=release.product.environments.get(key="production"),
        deployer=cast["sam"],
        kind="break_glass",
        justification=WHY,
    )
    rewrite_sealed(BreakGlassReview.objects.all(), due_at=timezone.now() - timedelta(hours=30))
    page = signed_in_page(cast["quinn"])
    page.goto("/break-glass/")
    overdue = page.get_by_test_id("review-overdue")
    expect(overdue).to_be_visible()
    assert overdue.evaluate("e => getComputedStyle(e).color") == "rgb(138, 28, 28)"  # --err-ink
    page.get_by_role("button", name="Review…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("[data-sign-statement]")).to_contain_text("retrospective review")
    dialog.get_by_role("button", name=re.compile("I have read this statement")).click()
    dialog.get_by_label("Username").fill("quinn")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_label(re.compile("^Comment")).fill("Justified emergency; the fix went through CR review afterwards.")
    dialog.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_url(f"**/deployments/{deployment.human_id}")
    expect(page.get_by_test_id("review-state")).to_have_text("Reviewed")
    expect(page.get_by_role("status")).to_contain_text("Retrospectively reviewed")
    review = BreakGlassReview.objects.get()
    assert review.state == "reviewed" and review.reviewer == cast["quinn"]
