"""Audit-trail export (issue 7, item 5): any object or date range as CSV, JSON and PDF, hashes and checkpoint included."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from changecontrol import audit
from changecontrol.models import AuditEvent
from tests.conftest import open_change_request
from tests.reports.test_packets import pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def change_request(product, cast):
    return open_change_request(product=product, requester=cast["rory"])


def _events(human_id):
    return list(AuditEvent.objects.filter(object_human_id=human_id).order_by("id"))


def test_json_export_of_an_object_lists_its_events_oldest_first_with_hashes(change_request, auditor, api):
    response = api(auditor).get(f"/api/v1/audit-events/export?object={change_request.human_id}&format=json")
    assert response.status_code == 200
    body = json.loads(response.content)
    expected = _events(change_request.human_id)
    assert [e["id"] for e in body["events"]] == [e.pk for e in expected]
    assert [e["action"] for e in body["events"]][:2] == ["change_request.created", "change_request.submitted"]
    assert (
        body["events"][0]["hash"] == expected[0].hash
        and body["events"][0]["previous_hash"] == expected[0].previous_hash
    )
    assert body["count"] == len(expected) and body["scope"]["object"] == change_request.human_id


def test_csv_export_has_one_row_per_event(change_request, auditor, api):
    response = api(auditor).get(f"/api/v1/audit-events/export?object={change_request.human_id}&format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f"custody-audit-trail-{change_request.human_id}.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(r["id"]) for r in rows] == [e.pk for e in _events(change_request.human_id)]
    assert rows[0]["actor"] == "Rory Release-Manager"


def test_pdf_export_shows_events_hashes_chain_link_and_the_signed_checkpoint(change_request, auditor, api):
    checkpoint = audit.checkpoint_create()
    response = api(auditor).get(f"/api/v1/audit-events/export?object={change_request.human_id}&format=pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    flat = text.replace(" ", "")
    for event in _events(change_request.human_id):
        assert event.action in text
        assert event.hash in flat and event.previous_hash in flat
    assert "(= hash above)" in text  # created and submitted were adjacent in the chain
    assert f"Latest signed checkpoint #{checkpoint.pk}" in text
    assert checkpoint.event_hash in flat and checkpoint.key_id in flat
    assert re.search(r"Signature check VALID under Custody.s key", text, re.IGNORECASE)
    assert "Audit trail CR-" in text and "page 1 of" in text


def test_date_range_export_holds_only_events_in_the_range(change_request, auditor, api):
    today = AuditEvent.objects.order_by("-id").first().at.date()
    body = json.loads(api(auditor).get(f"/api/v1/audit-events/export?since={today}&until={today}").content)
    assert body["count"] > 0 and all(e["at"].startswith(str(today)) for e in body["events"])
    assert (
        json.loads(api(auditor).get("/api/v1/audit-events/export?since=2001-01-01&until=2001-01-02").content)["count"]
        == 0
    )


def test_bad_input_is_400(change_request, auditor, api):
    assert api(auditor).get("/api/v1/audit-events/export").status_code == 400
    response = api(auditor).get("/api/v1/audit-events/export?since=last-tuesday")
    assert response.status_code == 400 and "not a date" in response.json()["detail"]
    assert (
        api(auditor).get(f"/api/v1/audit-events/export?object={change_request.human_id}&format=xls").status_code == 400
    )


def test_too_many_events_for_a_pdf_is_413(change_request, auditor, api, monkeypatch):
    from reports import audit_export

    monkeypatch.setattr(audit_export, "MAX_PDF_EVENTS", 1)
    response = api(auditor).get(f"/api/v1/audit-events/export?object={change_request.human_id}&format=pdf")
    assert response.status_code == 413 and "narrow" in response.json()["detail"]


def test_outsider_and_another_products_token_get_404(change_request, outsider, other_product_token, api):
    url = f"/api/v1/audit-events/export?object={change_request.human_id}&format=json"
    assert api(outsider).get(url).status_code == 404
    assert api(token=other_product_token).get(url).status_code == 404
    assert api(outsider).get(url.replace("json", "pdf")).status_code == 404
