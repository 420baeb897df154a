"""Traceability pages through Django's test client: matrix, items, diff, impact, baselines, import."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.traceability.factories import artifact, results
from tests.traceability.test_items import CSV
from traceability import baselines
from traceability import services as items
from traceability.models import TraceItem, TraceLink

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def imported(product, author):
    items.items_import(product=product, actor=author, format="csv", data=CSV)
    results(artifact(product, author), author, [("test_score", "passed", ["REQ-001"])])


def test_the_matrix_page_highlights_gaps_and_filters(imported, auditor):
    page = client_of(auditor).get("/products/rsd/trace-matrix")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="coverage">50.0%' in html
    assert 'class="gap-error" data-id="REQ-002"' in html
    assert 'class="" data-id="REQ-001"' in html
    assert "/api/v1/products/rsd/trace-matrix.csv" in html
    filtered = client_of(auditor).get("/products/rsd/trace-matrix?status=gaps").content.decode()
    assert 'data-id="REQ-001"' not in filtered and 'data-id="REQ-002"' in filtered


def test_an_item_page_shows_its_history_and_the_diff_between_versions(imported, author):
    item = TraceItem.objects.get(identifier="REQ-002")
    items.item_edit(
        item=item, actor=author, text="Scores strictly above the amber threshold shall be flagged.", reason="panel"
    )
    html = client_of(author).get("/products/rsd/items/REQ-002").content.decode()
    assert "Version history" in html and "panel" in html
    assert "<del>-Scores at or above the amber threshold shall be flagged.</del>" in html
    assert "<ins>+Scores strictly above the amber threshold shall be flagged.</ins>" in html
    assert client_of(author).get("/products/rsd/items/REQ-002?from=1&to=9").status_code == 404


def test_a_suspect_link_is_cleared_from_the_item_page_with_a_comment(imported, author, quality_reviewer):
    items.item_edit(item=TraceItem.objects.get(identifier="RC-1"), actor=author, text="Banner after 10 minutes")
    link = TraceLink.objects.get(kind="implements")
    client = client_of(quality_reviewer)
    assert "Clear suspect" in client.get("/products/rsd/items/REQ-002").content.decode()
    client.post(f"/products/rsd/links/{link.pk}/clear-suspect", {"comment": "", "next_item": "REQ-002"})
    assert TraceLink.objects.get(pk=link.pk).suspect is True
    response = client.post(
        f"/products/rsd/links/{link.pk}/clear-suspect", {"comment": "Wording only", "next_item": "REQ-002"}
    )
    assert response.status_code == 302
    assert TraceLink.objects.get(pk=link.pk).cleared_comment == "Wording only"


def test_the_impact_page_lists_downstream_items(imported, author):
    html = client_of(author).get("/products/rsd/items/HAZ-1/impact").content.decode()
    assert "RC-1" in html and "REQ-002" in html and "No open change request touches it." in html


def test_the_baseline_page_compares_two_releases(imported, author, release_manager, auditor, product):
    baselines.trace_baseline_take(product=product, release_version="7.2.3", artifact_ids=[], actor=release_manager)
    items.item_edit(item=TraceItem.objects.get(identifier="REQ-001"), actor=author, title="Show the sepsis risk score")
    baselines.trace_baseline_take(product=product, release_version="7.2.4", artifact_ids=[], actor=release_manager)
    html = client_of(auditor).get("/products/rsd/baselines?from=7.2.3&to=7.2.4").content.decode()
    assert "REQ-001 Show the sepsis risk score: v1 → v2" in html


def test_the_import_page_imports_and_reports(product, author):
    upload = SimpleUploadedFile("items.csv", CSV, content_type="text/csv")
    html = client_of(author).post("/products/rsd/items/import", {"format": "csv", "file": upload}).content.decode()
    assert "4 created" in html
    bad = SimpleUploadedFile("items.csv", b"id,title\nREQ-1,\n", content_type="text/csv")
    response = client_of(author).post("/products/rsd/items/import", {"format": "csv", "file": bad})
    assert response.status_code == 400
    assert "line 2: column &#x27;title&#x27; is empty" in response.content.decode()


def test_an_auditor_cannot_import_from_the_page(product, auditor):
    upload = SimpleUploadedFile("items.csv", CSV, content_type="text/csv")
    response = client_of(auditor).post("/products/rsd/items/import", {"format": "csv", "file": upload})
    assert response.status_code == 400
    assert TraceItem.objects.count() == 0


def test_outsider_gets_404_on_every_page(imported, outsider):
    client = client_of(outsider)
    for path in (
        "/products/rsd/trace-matrix",
        "/products/rsd/items",
        "/products/rsd/items/REQ-001",
        "/products/rsd/items/REQ-001/impact",
        "/products/rsd/baselines",
        "/products/rsd/items/import",
    ):
        assert client.get(path).status_code == 404, path
    link = TraceLink.objects.first()
    assert client.post(f"/products/rsd/links/{link.pk}/clear-suspect", {"comment": "x"}).status_code == 404
