"""The dashboard in real headless Chromium: a quality reviewer's morning, counts checked against the database.

Set CUSTODY_SHOTS_DIR=/tmp/shots to keep a screenshot of every page these tests pass through.
"""

# The fixtures are shared with test_dashboard.py by import, so pytest finds them here by name (F401/F811).
# ruff: noqa: F401, F811

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals.models import Promotion
from changecontrol.models import ChangeRequest
from evidence.models import Evidence
from runtime.models import BreakGlassReview, Deployment, DriftFinding, EnvironmentSnapshot
from tests.builders import add_evidence, make_artifact, make_build, sign
from tests.conftest import MEDIUM_RISK, open_change_request
from tests.home.test_dashboard import (
    _fresh_cache,
    blocked_promotion,
    environment,
    policy,
    production_promotion,
    record_deployment,
    release,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page, name: str) -> None:
    directory = os.environ.get("CUSTODY_SHOTS_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{directory}/{name}.png", full_page=True)


@pytest.fixture
def busy_morning(product, cast, ci_account, production_promotion, blocked_promotion):
    """Something in every panel: failed evidence, an ageing CR, drift, break-glass, an unauthorised deployment."""
    artifact = make_artifact(make_build(product, registered_by=ci_account), name="rsd-scheduler")
    failed = add_evidence(artifact, "cobertura", state="failed", name="coverage.xml")
    Evidence.objects.filter(pk=failed.pk).update(error="line 1: not well-formed (invalid token)")
    add_evidence(artifact, "sarif", state="rejected", name="semgrep.sarif")
    ageing = open_change_request(
        product=product, requester=cast["rory"], answers=MEDIUM_RISK, title="Rotate the HL7 gateway certificate"
    )
    ChangeRequest.objects.filter(pk=ageing.pk).update(submitted_at=timezone.now() - timedelta(days=12))
    break_glass = record_deployment(product, artifact, deployer=cast["sam"], kind="break_glass", authorised=False)
    BreakGlassReview.objects.create(deployment=break_glass, product=product, due_at=timezone.now() - timedelta(hours=6))
    snapshot = EnvironmentSnapshot.objects.create(
        product=product, environment=environment(product), reported_by=ci_account, artifacts=[], sha256="0" * 64
    )
    DriftFinding.objects.create(
        product=product,
        environment=environment(product),
        digest=artifact.digest,
        name=artifact.name,
        kind="unapproved",
        opened_by=snapshot,
    )
    return {"ageing": ageing, "break_glass": break_glass}


def test_quality_reviewer_sees_a_pending_approval_and_opens_the_promotion_from_it(
    signed_in_page, quality_reviewer, production_promotion
):
    page = signed_in_page(quality_reviewer)
    page.goto("/")
    panel = page.locator("#panel-pending_approvals")
    expect(panel.get_by_role("heading", name=re.compile("Awaiting my signature"))).to_be_visible()
    expect(panel.get_by_test_id("count-pending_approvals")).to_have_text("1")
    shoot(page, "dashboard-quality-one-pending")
    panel.get_by_role("link", name=production_promotion.human_id).click()
    page.wait_for_url(f"**/promotions/{production_promotion.human_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(production_promotion.human_id)


def test_every_count_on_the_dashboard_matches_the_database(signed_in_page, cast, busy_morning):
    quinn = cast["quinn"]
    expected = {
        "pending_approvals": 2,  # the production promotion and the ageing medium CR
        "blocked_promotions": 1,
        "failed_evidence": Evidence.objects.filter(state__in=["failed", "rejected"]).count(),
        "ageing_change_requests": ChangeRequest.objects.filter(
            state="submitted", submitted_at__lt=timezone.now() - timedelta(days=7)
        ).count(),
        "break_glass_reviews": BreakGlassReview.objects.filter(state="due").count(),
        "drift_findings": DriftFinding.objects.filter(state="open").count(),
        "unauthorised_deployments": Deployment.objects.filter(authorised=False).count(),
    }
    assert expected["failed_evidence"] == 2 and expected["unauthorised_deployments"] == 1
    page = signed_in_page(quinn)
    page.goto("/")
    for key, count in expected.items():
        expect(page.get_by_test_id(f"count-{key}")).to_have_text(str(count))
        expect(page.locator(f'.dash-tile[data-panel="{key}"] .dash-count')).to_have_text(str(count))
    overdue = page.locator("#panel-break_glass_reviews tr.row-overdue")
    expect(overdue).to_have_count(1)
    expect(overdue).to_contain_text(busy_morning["break_glass"].human_id)
    # Red means red: the overdue row's background is the error colour.
    background = overdue.locator("td").first.evaluate("cell => getComputedStyle(cell).backgroundColor")
    assert background == "rgb(253, 231, 231)"
    expect(page.locator("#panel-blocked_promotions")).to_contain_text("2 test(s) failed")
    page.get_by_text("Show the figures as a table").first.click()
    expect(page.get_by_test_id("chart-lead-time-table")).to_be_visible()
    shoot(page, "dashboard-quality-busy")


def test_release_manager_and_sre_see_their_panels_first(signed_in_page, cast, busy_morning):
    production = Promotion.objects.filter(environment__key="production").get()
    sign(production, cast["quinn"])
    page = signed_in_page(cast["rory"])
    page.goto("/")
    expect(page.locator(".dash-panel").first).to_have_attribute("data-panel", "blocked_promotions")
    shoot(page, "dashboard-release-manager")
    page = signed_in_page(cast["sam"])
    page.goto("/")
    expect(page.locator(".dash-panel").first).to_have_attribute("data-panel", "drift_findings")
    shoot(page, "dashboard-sre")
    page = signed_in_page(cast["audrey"])
    page.goto("/")
    expect(page.locator(".dash-panel").first).to_have_attribute("data-panel", "unauthorised_deployments")
    shoot(page, "dashboard-auditor")
