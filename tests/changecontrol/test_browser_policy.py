"""Policy activation in real headless Chromium: a quality reviewer signs a proposed version on the history page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from changecontrol import services
from changecontrol.models import User
from changecontrol.policy import DEFAULT_POLICY_YAML
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_quality_reviewer_signs_a_proposed_policy_and_it_becomes_active(signed_in_page, cast, product):
    services.policy_version_propose(
        product=product,
        author=User.objects.get(username="polly"),
        source=DEFAULT_POLICY_YAML.replace("valid_for_hours: 72 ", "valid_for_hours: 48 "),
        reason="Shorter approval window after the Q3 audit",
    )
    page = signed_in_page(cast["quinn"])
    page.goto("/products/rsd/policy")
    expect(page.get_by_test_id("state-v2")).to_have_text(re.compile("^Proposed"))

    page.get_by_role("button", name="Sign to activate…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-sign-statement]")).to_contain_text("I approve policy v2 of Risk Score Dashboard")
    expect(dialog.get_by_label("Password")).to_be_hidden()
    dialog.get_by_role("button", name=re.compile("I have read this statement")).click()
    dialog.get_by_label("Username").fill("quinn")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_label(re.compile("^Comment")).fill("Reviewed against SOP-QA-012")
    dialog.get_by_role("button", name="Sign", exact=True).click()

    expect(page.get_by_role("status").first).to_contain_text("rsd policy v2 is now the active policy")
    expect(page.get_by_test_id("state-v2")).to_have_text("Active")
    expect(page.get_by_test_id("state-v1")).to_have_text("Superseded")
    expect(page.get_by_role("button", name="Sign to activate…")).to_have_count(0)
    assert services.active_policy(product).version == 2
