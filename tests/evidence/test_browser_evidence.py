"""The artifact and evidence pages in headless Chromium, as a reviewer meets them before signing."""

from __future__ import annotations

import pytest

from evidence.models import Vulnerability
from tests.evidence.conftest import DIGEST
from tests.samples import sample_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_a_reviewer_sees_failures_first_and_filters_vulnerabilities_by_severity(
    signed_in_page, artifact, upload, quality_reviewer
):
    assert (
        upload(DIGEST, "junit", sample_bytes("junit/TEST-action.surefire.report.calc.StringUtilsTest.xml")).status_code
        == 202
    )
    assert upload(DIGEST, "grype", sample_bytes("vulns/grype-presenter-golden-image.json")).status_code == 202

    severities = set(Vulnerability.objects.values_list("severity", flat=True))
    wanted = sorted(severities)[0]
    page = signed_in_page(quality_reviewer)
    page.goto(f"/artifacts/{DIGEST}")
    assert DIGEST in page.content()
    first_test_row = page.locator("h2:has-text('Tests') + p + table tbody tr").first
    assert "Failed" in first_test_row.inner_text()

    page.get_by_label("Severity").select_option(wanted)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("h2:has-text('Vulnerabilities') ~ table").first.locator("tbody tr")
    assert rows.count() == Vulnerability.objects.filter(severity=wanted).count() >= 1
    for index in range(rows.count()):
        assert rows.nth(index).locator(".badge").first.inner_text().strip() == wanted

    page.get_by_role("link", name="EV-", exact=False).first.click()
    assert "Raw" in page.content() or "raw" in page.content()
