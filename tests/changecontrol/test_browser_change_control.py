"""Change control in real headless Chromium: classify with the live tier preview, submit, sign, refuse.

Set CUSTODY_SHOTS_DIR=/tmp/shots to keep a screenshot of every page these tests pass through.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from changecontrol import roles
from changecontrol.models import ChangeRequest, Signature
from tests.conftest import MEDIUM_RISK, PASSWORD, open_change_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page, name: str) -> None:
    directory = os.environ.get("CUSTODY_SHOTS_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{directory}/{name}.png", full_page=True)


def test_sign_in_page_shows_the_part_11_notice_and_a_failed_sign_in_says_why(new_page, cast):
    page = new_page()
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", name="Authorised use only")).to_be_visible()
    shoot(page, "sign-in")
    page.get_by_label("Username").fill("quinn")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("locked after repeated failed attempts")
    shoot(page, "sign-in-failed")


def test_release_manager_creates_classifies_and_submits_a_change_request(
    signed_in_page, release_manager, quality_reviewer
):
    page = signed_in_page(release_manager)
    shoot(page, "home")
    page.get_by_role("link", name="Products").click()
    shoot(page, "products")
    page.get_by_role("link", name="rsd").click()
    page.get_by_role("link", name="New change request").click()

    page.get_by_label("Title").fill("Raise the amber threshold of the sepsis score")
    page.get_by_label("Why is this change needed?").fill(
        "The clinical panel found too many amber flags on low-risk patients."
    )
    page.get_by_label("What changes").fill("Amber threshold 0.35 → 0.42 in the scoring configuration.")
    page.get_by_label("Kind").select_option("configuration")
    page.get_by_label("Verification plan").fill("Replay last quarter's anonymised cases against the panel's labels.")
    page.get_by_label("Rollback plan").fill("Revert the configuration commit; redeploy the previous digest.")

    preview = page.locator("[data-risk-preview]")
    expect(preview.locator("[data-tier]")).to_have_text("not computed yet")
    for question, answer in MEDIUM_RISK.items():
        page.locator(f"select[data-risk-question={question}]").select_option(answer)
    expect(preview.locator("[data-tier]")).to_have_text("Medium")
    expect(preview).to_contain_text("1 signature(s) from distinct people holding: quality")
    shoot(page, "create-medium")

    # A direct patient-safety impact raises the tier while the person watches, before anything is saved.
    page.get_by_label("Patient safety impact").select_option("direct")
    expect(preview.locator("[data-tier]")).to_have_text("High")
    expect(preview).to_contain_text("quality, security")
    shoot(page, "create-high")
    assert not ChangeRequest.objects.exists()

    page.get_by_role("button", name="Open as draft").click()
    expect(page.get_by_role("status").first).to_contain_text("was opened as a draft")
    expect(page.get_by_test_id("state")).to_have_text("Draft")
    shoot(page, "detail-draft")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_test_id("state")).to_have_text("Submitted")
    shoot(page, "detail-submitted")

    change_request = ChangeRequest.objects.get()
    assert (change_request.state, change_request.tier, change_request.risk_score) == ("submitted", "high", 4)
    assert change_request.requester == release_manager

    page.get_by_role("link", name="Change requests", exact=True).click()
    page.get_by_label("Tier").select_option("high")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name=change_request.human_id)).to_be_visible()
    shoot(page, "change-requests")


def test_quality_reviewer_signs_in_the_dialog_and_the_manifestation_appears(
    signed_in_page, product, release_manager, quality_reviewer
):
    change_request = open_change_request(product=product, requester=release_manager, answers=MEDIUM_RISK)
    page = signed_in_page(quality_reviewer)
    page.get_by_role("link", name=change_request.human_id).first.click()

    page.get_by_role("button", name="Sign…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    statement = dialog.locator("[data-sign-statement]")
    expect(statement).to_contain_text(f"By signing I approve {change_request.human_id}")
    expect(statement).to_contain_text("legally binding equivalent of my handwritten signature (21 CFR Part 11)")
    # The statement comes first; the password is asked only after the signer has read it.
    expect(dialog.get_by_label("Password")).to_be_hidden()
    shoot(page, "sign-dialog-statement")
    dialog.get_by_role("button", name=re.compile("I have read this statement")).click()
    dialog.get_by_label("Username").fill("quinn")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_label(re.compile("^Comment")).fill("Replay results match the panel's labels.")
    shoot(page, "sign-dialog-credentials")
    dialog.get_by_role("button", name="Sign", exact=True).click()

    signature = Signature.objects.get(signer=quality_reviewer)
    expect(page.get_by_role("status").first).to_contain_text(f"Signed: {signature.manifestation}")
    signatures = page.get_by_test_id("signatures")
    expect(signatures).to_contain_text("Quinn Quality")
    expect(signatures).to_contain_text("Quality reviewer")
    expect(signatures).to_contain_text(f"{signature.signed_at:%Y-%m-%d %H:%M:%S} UTC")
    expect(signatures).to_contain_text("valid")
    expect(page.get_by_test_id("state")).to_have_text("Approved")
    shoot(page, "detail-signed")

    page.get_by_role("link", name="Open in the audit trail").click()
    expect(page.locator("table")).to_contain_text("signature.approved")
    shoot(page, "audit-trail")


def test_requesters_own_signature_is_refused_with_the_rule_named_on_the_page(
    signed_in_page, product, release_manager, admin_user
):
    # Rory also holds the quality role, so the dialog is offered; separation of duties still refuses.
    roles.role_grant(actor=admin_user, user=release_manager, product=product, role="quality")
    change_request = open_change_request(product=product, requester=release_manager, answers=MEDIUM_RISK)
    page = signed_in_page(release_manager)
    page.goto(f"/change-requests/{change_request.human_id}")
    page.get_by_role("button", name="Sign…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name=re.compile("I have read this statement")).click()
    dialog.get_by_label("Username").fill("rory")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Sign", exact=True).click()

    expect(page.get_by_role("alert")).to_have_text(
        "Refused by rule sod.requester_cannot_sign: the requester of a change request cannot sign its approval"
    )
    expect(page.get_by_test_id("state")).to_have_text("Submitted")
    shoot(page, "detail-refused")
    assert not Signature.objects.filter(subject_id=change_request.pk).exists()
