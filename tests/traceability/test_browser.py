"""The trace matrix and an item page in headless Chromium, as a quality engineer meets them."""

from __future__ import annotations

import pytest

from tests.traceability.factories import artifact, results
from tests.traceability.test_items import CSV
from traceability import services as items
from traceability.models import TraceItem

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_quality_engineer_filters_the_matrix_and_clears_a_suspect_link(
    signed_in_page, product, author, quality_reviewer
):
    items.items_import(product=product, actor=author, format="csv", data=CSV)
    results(artifact(product, author), author, [("test_score", "passed", ["REQ-001"])])
    items.item_edit(item=TraceItem.objects.get(identifier="RC-1"), actor=author, text="Banner after 10 minutes")

    page = signed_in_page(quality_reviewer)
    page.goto("/products/rsd/trace-matrix")
    assert page.get_by_test_id("coverage").inner_text() == "50.0%"
    assert page.locator("tr.gap-error[data-id='REQ-002']").count() == 1
    page.get_by_label("Status").select_option("verified")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#trace-matrix tbody tr").count() == 1
    assert page.locator("tr[data-id='REQ-001']").count() == 1

    page.goto("/products/rsd/items/REQ-002")
    page.get_by_label("Why the link still holds").fill("The banner timing does not change the amber flag")
    page.get_by_role("button", name="Clear suspect").click()
    assert "no longer suspect" in page.content()
    assert "cleared by Quinn Quality" in page.content()


def test_an_engineer_creates_a_requirement_edits_it_and_sees_version_2_with_the_diff(signed_in_page, product, author):
    page = signed_in_page(author)
    page.goto("/products/rsd/items")
    page.get_by_role("link", name="New requirement").click()
    page.get_by_label("Title").fill("Flag amber scores")
    page.get_by_label("Text").fill("Scores at or above the amber threshold shall be flagged.")
    page.get_by_role("button", name="Create requirement").click()
    page.wait_for_url("**/products/rsd/items/REQ-001")
    assert "REQ-001 created at version 1." in page.content()

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Text").fill("Scores strictly above the amber threshold shall be flagged.")
    page.get_by_label("Why").fill("Clinical panel review")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/products/rsd/items/REQ-001")
    assert "REQ-001 is now version 2" in page.content()
    assert page.locator("h3", has_text="Changes from v1 to v2").count() == 1
    assert page.locator("pre.diff del").inner_text() == "-Scores at or above the amber threshold shall be flagged."
    assert page.locator("pre.diff ins").inner_text() == "+Scores strictly above the amber threshold shall be flagged."
    assert page.get_by_role("cell", name="Clinical panel review").count() == 1

    page.get_by_label("Link kind").select_option("derives_from")
    page.get_by_label("Other item").fill("REQ-404")
    page.get_by_role("button", name="Add link").click()
    assert "rsd has no item REQ-404" in page.content()
