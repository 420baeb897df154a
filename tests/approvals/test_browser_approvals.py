"""Promotion approval in real headless Chromium: a quality reviewer approves, the requester is refused, expiry shows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals.models import Promotion
from changecontrol.models import Signature
from tests.builders import rewrite_sealed, sign
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in_dialog(page, username, meaning_label="Approved", comment=""):
    page.get_by_role("button", name="Sign or reject…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label(meaning_label).check()
    expect(dialog.locator("[data-sign-statement]")).to_contain_text("21 CFR Part 11")
    expect(dialog.get_by_label("Password")).to_be_hidden()
    dialog.get_by_role("button", name=re.compile("I have read this statement")).click()
    dialog.get_by_label("Username").fill(username)
    dialog.get_by_label("Password").fill(PASSWORD)
    if comment:
        dialog.get_by_label(re.compile("^Comment")).fill(comment)
    dialog.get_by_role("button", name="Sign", exact=True).click()


def test_quality_reviewer_approves_from_pending_approvals(signed_in_page, production_promotion, cast):
    page = signed_in_page(cast["quinn"])
    page.goto("/approvals/")
    page.get_by_role("link", name=production_promotion.human_id).click()
    expect(page.get_by_test_id("decision")).to_have_text("Pending")
    expect(page.get_by_role("dialog")).to_be_hidden()
    _sign_in_dialog(page, "quinn", comment="Gates pass, evidence reviewed.")
    signature = Signature.objects.get(signer=cast["quinn"], subject_type="approvals.promotion")
    expect(page.get_by_role("status").first).to_contain_text(f"Signed: {signature.manifestation}")
    expect(page.get_by_test_id("state")).to_have_text("Approved")
    expect(page.get_by_test_id("decision")).to_have_text("Allowed")
    assert Promotion.objects.get(pk=production_promotion.pk).state == "approved"


def test_requesters_attempt_is_refused_with_the_rule_named(signed_in_page, production_promotion, cast):
    page = signed_in_page(cast["rory"])
    page.goto(f"/promotions/{production_promotion.human_id}")
    _sign_in_dialog(page, "rory")
    expect(page.get_by_role("alert").first).to_contain_text("Refused by rule sod.requester_cannot_sign")
    expect(page.get_by_test_id("state")).to_have_text("Awaiting approval")


def test_an_expired_approval_shows_as_expired(signed_in_page, production_promotion, cast):
    signature = sign(production_promotion, cast["quinn"])
    rewrite_sealed(Signature.objects.filter(pk=signature.pk), expires_at=timezone.now() - timedelta(minutes=1))
    page = signed_in_page(cast["audrey"])
    page.goto(f"/promotions/{production_promotion.human_id}")
    expect(page.get_by_test_id("signatures").locator("[data-signature-status]")).to_have_text("Expired")
    expect(page.get_by_test_id("reasons")).to_contain_text("expired")
    expect(page.get_by_test_id("decision")).to_have_text("Pending")
