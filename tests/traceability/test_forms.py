"""Creating and editing items, and adding typed links, through the pages (Django's test client)."""

from __future__ import annotations

import pytest
from django.test import Client

from changecontrol.models import AuditEvent
from tests.traceability.factories import item
from traceability.models import TraceItem, TraceLink

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_engineer_creates_a_requirement_from_the_page_and_it_gets_the_next_number(product, author):
    item(product, author, "REQ-007")
    client = client_of(author)
    form = client.get("/products/rsd/items/new?kind=requirement").content.decode()
    assert 'name="title"' in form and 'name="hazardous_situation"' not in form
    response = client.post(
        "/products/rsd/items/new",
        {"kind": "requirement", "title": "Export the score", "text": "The score shall export as CSV.", "reason": ""},
    )
    assert response.status_code == 302 and response["Location"] == "/products/rsd/items/REQ-008"
    created = TraceItem.objects.get(identifier="REQ-008")
    assert (created.title, created.text, created.version, created.kind) == (
        "Export the score",
        "The score shall export as CSV.",
        1,
        "requirement",
    )
    assert AuditEvent.objects.filter(action="trace_item.created", object_human_id="REQ-008").count() == 1


def test_a_hazard_is_created_with_its_iso_14971_fields(product, author):
    response = client_of(author).post(
        "/products/rsd/items/new",
        {
            "kind": "hazard",
            "identifier": "HAZ-9",
            "title": "Missed deterioration",
            "hazardous_situation": "Score shown stale",
            "harm": "Delayed treatment",
            "severity": "Serious",
            "probability": "Remote",
            "initial_risk": "High",
            "residual_risk": "Low",
            "acceptability": "Acceptable",
        },
    )
    assert response.status_code == 302
    hazard = TraceItem.objects.get(identifier="HAZ-9")
    assert (hazard.kind, hazard.harm, hazard.probability, hazard.residual_risk, hazard.acceptability) == (
        "hazard",
        "Delayed treatment",
        "Remote",
        "Low",
        "Acceptable",
    )
    page = client_of(author).get("/products/rsd/items/HAZ-9").content.decode()
    assert "<dd>Delayed treatment</dd>" in page


def test_a_risk_control_form_is_offered_and_creates_one(product, author):
    response = client_of(author).post("/products/rsd/items/new", {"kind": "risk_control", "title": "Staleness banner"})
    assert response["Location"] == "/products/rsd/items/RC-001"
    assert TraceItem.objects.get(identifier="RC-001").kind == "risk_control"


def test_bad_input_is_shown_on_the_form_and_nothing_is_written(product, author):
    item(product, author, "REQ-001")
    client = client_of(author)
    empty = client.post("/products/rsd/items/new", {"kind": "requirement", "title": ""})
    assert empty.status_code == 400 and "This field is required." in empty.content.decode()
    duplicate = client.post("/products/rsd/items/new", {"kind": "requirement", "identifier": "REQ-001", "title": "x"})
    assert duplicate.status_code == 400
    assert "REQ-001 already exists in rsd" in duplicate.content.decode()
    spaced = client.post("/products/rsd/items/new", {"kind": "requirement", "identifier": "REQ 2", "title": "x"})
    assert spaced.status_code == 400 and "is not a usable ID" in spaced.content.decode()
    assert TraceItem.objects.count() == 1


def test_editing_the_text_makes_version_2_and_the_page_shows_the_diff(product, author):
    item(product, author, "REQ-001", "Flag amber scores", text="Scores at or above amber are flagged.")
    client = client_of(author)
    form = client.get("/products/rsd/items/REQ-001/edit").content.decode()
    assert "Scores at or above amber are flagged." in form and "makes version 2" in form
    response = client.post(
        "/products/rsd/items/REQ-001/edit",
        {"title": "Flag amber scores", "text": "Scores above amber are flagged.", "reason": "Clinical panel"},
        follow=True,
    )
    html = response.content.decode()
    assert "REQ-001 is now version 2" in html
    assert "<del>-Scores at or above amber are flagged.</del>" in html
    assert "<ins>+Scores above amber are flagged.</ins>" in html
    assert TraceItem.objects.get(identifier="REQ-001").version == 2


def test_a_status_change_from_the_page_keeps_the_version(product, author):
    item(product, author, "REQ-001", "Flag amber scores")
    response = client_of(author).post(
        "/products/rsd/items/REQ-001/edit",
        {"title": "Flag amber scores", "text": "", "status": "Approved", "reason": "review done"},
        follow=True,
    )
    assert "still v1" in response.content.decode()
    edited = TraceItem.objects.get(identifier="REQ-001")
    assert (edited.version, edited.status) == (1, "approved")


def test_an_edit_needs_a_reason(product, author):
    item(product, author, "REQ-001", "Flag amber scores")
    response = client_of(author).post("/products/rsd/items/REQ-001/edit", {"title": "Flag red scores"})
    assert response.status_code == 400
    assert TraceItem.objects.get(identifier="REQ-001").title == "Flag amber scores"


def test_a_typed_link_is_added_from_the_item_page(product, author):
    control, requirement = item(product, author, "RC-1"), item(product, author, "REQ-001")
    response = client_of(author).post(
        "/products/rsd/items/RC-1/links", {"direction": "outgoing", "kind": "implements", "other": "req-001"}
    )
    assert response.status_code == 302 and response["Location"] == "/products/rsd/items/RC-1"
    assert TraceLink.objects.filter(source=control, target=requirement, kind="implements").count() == 1
    incoming = client_of(author).post(
        "/products/rsd/items/HAZ-1/links", {"direction": "incoming", "kind": "mitigates", "other": "RC-1"}
    )
    assert incoming.status_code == 404  # no HAZ-1 yet
    item(product, author, "HAZ-1")
    client_of(author).post(
        "/products/rsd/items/HAZ-1/links", {"direction": "incoming", "kind": "mitigates", "other": "RC-1"}
    )
    assert TraceLink.objects.filter(source=control, target__identifier="HAZ-1", kind="mitigates").count() == 1


def test_a_disallowed_link_kind_is_a_form_error_naming_the_allowed_kinds(product, author):
    item(product, author, "REQ-001"), item(product, author, "HAZ-1")
    response = client_of(author).post(
        "/products/rsd/items/REQ-001/links", {"direction": "outgoing", "kind": "mitigates", "other": "HAZ-1"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "a &#x27;mitigates&#x27; link from REQ-001 to HAZ-1 is not allowed" in html
    assert "Allowed kinds: implements (risk control → requirement); mitigates (risk control → hazard)" in html
    unknown = client_of(author).post(
        "/products/rsd/items/REQ-001/links", {"direction": "outgoing", "kind": "implements", "other": "REQ-404"}
    )
    assert unknown.status_code == 400 and "rsd has no item REQ-404" in unknown.content.decode()
    assert TraceLink.objects.count() == 0


def test_an_auditor_may_read_but_not_create_edit_or_link(product, author, auditor):
    item(product, author, "REQ-001"), item(product, author, "RC-1")
    client = client_of(auditor)
    assert "Edit" not in client.get("/products/rsd/items/REQ-001").content.decode().split("Version history")[0]
    assert client.get("/products/rsd/items/new").status_code == 403
    assert client.post("/products/rsd/items/new", {"kind": "requirement", "title": "x"}).status_code == 403
    assert client.post("/products/rsd/items/REQ-001/edit", {"title": "x", "reason": "y"}).status_code == 403
    link = {"direction": "incoming", "kind": "implements", "other": "RC-1"}
    assert client.post("/products/rsd/items/REQ-001/links", link).status_code == 403
    assert TraceItem.objects.count() == 2 and TraceLink.objects.count() == 0


def test_outsider_gets_404_on_every_form(product, author, outsider):
    item(product, author, "REQ-001")
    client = client_of(outsider)
    assert client.get("/products/rsd/items/new").status_code == 404
    assert client.post("/products/rsd/items/new", {"kind": "requirement", "title": "x"}).status_code == 404
    assert client.get("/products/rsd/items/REQ-001/edit").status_code == 404
    assert client.post("/products/rsd/items/REQ-001/links", {"kind": "implements", "other": "x"}).status_code == 404
    assert TraceItem.objects.count() == 1
