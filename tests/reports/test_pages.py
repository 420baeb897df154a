"""Auditor pages (issue 7, item 7): search by release, CR, requirement, digest or date; downloads; read-only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.reports import test_packets
from traceability.models import TraceItem

pytestmark = pytest.mark.django_db
release = test_packets.release  # the packet tests' release: rsd 7.2.4 with parsed evidence and an approved CR
PAGES = ["/auditor/", "/auditor/population", "/auditor/audit-export", "/auditor/releases/rsd/7.2.4"]


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _result_links(html: str) -> list[str]:
    return re.findall(r'<td><a href="([^"]+)">', html)


def test_search_by_digest_finds_the_artifact_and_its_release(release, auditor):
    digest = release.artifacts.get().digest
    html = browser_for(auditor).get("/auditor/", {"q": digest[:24]}).content.decode()
    assert f"/artifacts/{digest}?product=rsd" in _result_links(html)
    assert "/auditor/releases/rsd/7.2.4" in _result_links(html)


def test_search_by_change_request_requirement_version_and_date(release, auditor, product):
    client = browser_for(auditor)
    cr = release.change_requests.get()
    links = _result_links(client.get("/auditor/", {"q": cr.human_id.lower()}).content.decode())
    assert f"/change-requests/{cr.human_id}" in links and "/auditor/releases/rsd/7.2.4" in links
    TraceItem.objects.create(
        product=product, kind="requirement", identifier="REQ-017", title="Amber threshold", fingerprint="0" * 64
    )
    links = _result_links(client.get("/auditor/", {"q": "REQ-017"}).content.decode())
    assert "/products/rsd/items/REQ-017" in links and "/auditor/releases/rsd/7.2.4" in links
    assert _result_links(client.get("/auditor/", {"q": "rsd 7.2.4"}).content.decode()) == [
        "/auditor/releases/rsd/7.2.4"
    ]
    today = timezone.now().date()
    links = _result_links(client.get("/auditor/", {"q": str(today)}).content.decode())
    assert "/auditor/releases/rsd/7.2.4" in links
    assert (
        f"/auditor/population?from={today}&amp;to={today}"
        in client.get("/auditor/", {"q": str(today)}).content.decode()
    )


def test_search_for_nothing_says_so(release, auditor):
    html = browser_for(auditor).get("/auditor/", {"q": "no-such-thing"}).content.decode()
    assert "Nothing you may see matches" in html


def test_release_page_offers_every_download(release, auditor):
    html = browser_for(auditor).get("/auditor/releases/rsd/7.2.4").content.decode()
    assert 'data-export-url="/api/v1/releases/rsd/7.2.4/packet.pdf"' in html
    assert 'data-export-url="/api/v1/releases/rsd/7.2.4/bundle.zip"' in html
    for extension in ("md", "html", "pdf"):
        assert f"/api/v1/releases/rsd/7.2.4/release-notes.{extension}" in html
    assert "/api/v1/audit-events/export?object=rsd+7.2.4&amp;format=pdf" in html
    assert "auditor.js" in html


def test_population_page_shows_the_report_and_its_downloads(release, auditor):
    today = timezone.now().date()
    html = (
        browser_for(auditor)
        .get("/auditor/population", {"from": str(today - timedelta(days=1)), "to": str(today)})
        .content.decode()
    )
    assert "counted independently" in html and "the report is complete" in html
    assert "format=csv" in html and "format=pdf" in html
    bad = browser_for(auditor).get("/auditor/population", {"from": "soon", "to": str(today)}).content.decode()
    assert "is not a date" in bad


def test_audit_export_page_links_csv_json_and_pdf(release, auditor):
    html = browser_for(auditor).get("/auditor/audit-export", {"object": "rsd 7.2.4"}).content.decode()
    for fmt in ("csv", "json", "pdf"):
        assert f"/api/v1/audit-events/export?object=rsd+7.2.4&amp;format={fmt}" in html


def test_auditor_can_read_every_page_but_change_nothing(release, auditor):
    client = browser_for(auditor)
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        # The only form that posts is the sign-out button of the site header.
        assert response.content.decode().count('method="post"') == 1, url
        assert client.post(url).status_code == 405, url


def test_outsider_gets_404_on_every_page(release, outsider):
    client = browser_for(outsider)
    for url in PAGES:
        assert client.get(url).status_code == 404, url
    assert client.get("/auditor/", {"q": release.artifacts.get().digest}).status_code == 404


def test_another_products_reader_finds_nothing_of_rsd(release, other_product, admin_user, db):
    from changecontrol import roles
    from changecontrol.models import Role
    from tests.conftest import make_user

    lab_auditor = make_user("larry", "Larry Lab-Auditor")
    roles.role_grant(actor=admin_user, user=lab_auditor, product=other_product, role=Role.AUDITOR)
    client = browser_for(lab_auditor)
    assert _result_links(client.get("/auditor/", {"q": release.artifacts.get().digest}).content.decode()) == []
    assert client.get("/auditor/releases/rsd/7.2.4").status_code == 404


def test_anonymous_visitor_is_sent_to_sign_in(release):
    response = Client().get("/auditor/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# ---------------------------------------------------------------- in Chromium


@pytest.mark.django_db(transaction=True)
def test_auditor_searches_a_digest_opens_the_release_and_downloads_the_packet(release, auditor, signed_in_page):
    digest = release.artifacts.get().digest
    page = signed_in_page(auditor)
    page.goto("/auditor/")
    page.get_by_label("Release, CR, requirement, deployment, digest or date (YYYY-MM-DD)").fill(digest)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="rsd 7.2.4").click()
    page.wait_for_url("**/auditor/releases/rsd/7.2.4")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="PDF release packet").click()
    download = download_info.value
    assert download.suggested_filename == "rsd-7.2.4-packet.pdf"
    with open(download.path(), "rb") as handle:
        assert handle.read(5) == b"%PDF-"
    status = page.locator("#downloads li").first
    assert "Ready" in status.locator(".export-status").inner_text()
    assert status.locator("progress").get_attribute("value") == "100"
