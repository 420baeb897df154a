"""The trace matrix and an item page in headless Chromium, as a quality engineer meets them."""

from __future__ import annotations

import pytest

from changecontrol import items
from changecontrol.models import TraceItem
from tests.changecontrol.test_items import CSV
from tests.changecontrol.test_items_factories import artifact, results

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
