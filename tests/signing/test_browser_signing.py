"""What you see is what you sign, in real headless Chromium: the dialog names the hash of the record as the page
showed it and posts it back; a record that changes while the dialog is open is refused, and the page says so.

Set CUSTODY_SHOTS_DIR=/tmp/shots to keep a screenshot of the dialog, the refusal and the signature page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from changecontrol import services
from changecontrol.models import Signature
from tests.builders import add_scan, promotion_sha256
from tests.conftest import MEDIUM_RISK, PASSWORD, change_request_sha256, open_change_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page, name: str) -> None:
    directory = os.environ.get("CUSTODY_SHOTS_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{directory}/{name}.png", full_page=True)


def open_dialog(page, button: str, *, username: str):
    """Open the signing dialog, read the statement, and enter the credentials, stopping short of Sign."""
    page.get_by_role("button", name=button).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=re.compile("I have read this statement")).click()
    dialog.get_by_label("Username").fill(username)
    dialog.get_by_label("Password").fill(PASSWORD)
    return dialog


def test_a_reviewer_signs_the_content_the_dialog_names_and_opens_the_signature(
    signed_in_page, product, release_manager, quality_reviewer
):
    change_request = open_change_request(product=product, requester=release_manager, answers=MEDIUM_RISK)
    shown = change_request_sha256(change_request)
    page = signed_in_page(quality_reviewer)
    page.goto(f"/change-requests/{change_request.human_id}")
    page.get_by_role("button", name="Sign…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("[data-sign-content-hash]")).to_contain_text(f"You are signing content sha256 {shown[:12]}…")
    expect(dialog.locator("input[name=content_sha256]")).to_have_value(shown)
    shoot(page, "sign-dialog-content-hash")
    dialog.get_by_role("button", name=re.compile("I have read this statement")).click()
    dialog.get_by_label("Username").fill("quinn")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Sign", exact=True).click()

    signature = Signature.objects.get(signer=quality_reviewer)
    expect(page.get_by_role("status").first).to_contain_text(f"Signed: {signature.manifestation}")
    assert signature.content_sha256 == shown

    page.get_by_test_id("signatures").locator("[data-signature-link]").click()
    expect(page).to_have_url(re.compile(rf"/signatures/{signature.pk}$"))
    expect(page.get_by_test_id("manifestation")).to_have_text(signature.manifestation)
    expect(page.get_by_test_id("content-sha256")).to_have_text(shown)
    expect(page.get_by_test_id("hash-check")).to_contain_text("it matches")
    expect(page.get_by_test_id("signed-content")).to_contain_text('"content_version": 1')
    shoot(page, "signature-page")


def test_a_change_request_edited_while_the_dialog_is_open_is_refused_and_shown_again(
    signed_in_page, product, release_manager, quality_reviewer
):
    change_request = open_change_request(product=product, requester=release_manager, answers=MEDIUM_RISK)
    seen = change_request_sha256(change_request)
    page = signed_in_page(quality_reviewer)
    page.goto(f"/change-requests/{change_request.human_id}")
    dialog = open_dialog(page, "Sign…", username="quinn")

    # The author edits the change request while the reviewer's dialog is open.
    services.change_request_update(
        change_request=change_request,
        actor=release_manager,
        rollback_plan="Turn the feature flag off; then revert the configuration commit.",
        reason="Faster rollback",
    )
    now = change_request_sha256(change_request)
    dialog.get_by_role("button", name="Sign", exact=True).click()

    alert = page.get_by_role("alert").first
    expect(alert).to_contain_text(f"You reviewed content sha256 {seen}; the record is now {now}")
    expect(alert).to_contain_text("reload it and review again (nothing was signed)")
    shoot(page, "sign-refused-content-changed")
    assert not Signature.objects.filter(signer=quality_reviewer).exists()
    # The page shows the record as it is now, and a new dialog would sign that.
    expect(page.get_by_text("content version 2", exact=False).first).to_be_visible()
    expect(page.get_by_role("definition").filter(has_text="Turn the feature flag off;")).to_be_visible()
    expect(page.locator("dialog input[name=content_sha256]")).to_have_value(now)


def test_a_report_arriving_while_the_promotion_dialog_is_open_is_refused(
    signed_in_page, production_promotion, artifact, cast
):
    seen = promotion_sha256(production_promotion)
    page = signed_in_page(cast["quinn"])
    page.goto(f"/promotions/{production_promotion.human_id}")
    dialog = open_dialog(page, "Sign or reject…", username="quinn")
    add_scan(artifact, severities=("medium",))  # a new report: the evidence the reviewer saw no longer counts alone
    now = promotion_sha256(production_promotion)
    dialog.get_by_role("button", name="Sign", exact=True).click()

    expect(page.get_by_role("alert").first).to_contain_text(
        f"You reviewed content sha256 {seen}; the record is now {now}"
    )
    expect(page.get_by_test_id("state")).to_have_text("Awaiting approval")
    assert not Signature.objects.filter(subject_type="approvals.promotion").exists()
