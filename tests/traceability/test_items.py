"""Traceability services: items and versions, typed links, suspect links, CR links, import, baselines."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from changecontrol.models import AuditEvent
from common.errors import Conflict, NotPermitted, ValidationFailed
from tests.conftest import open_change_request
from tests.traceability.factories import item, link
from traceability import baselines
from traceability import services as items
from traceability.models import TraceBaseline, TraceItem, TraceItemVersion, TraceLink

pytestmark = pytest.mark.django_db

CSV = b"""id,kind,title,text,status,hazardous_situation,harm,severity,implements,mitigates,derives_from,comment
REQ-001,requirement,Show the sepsis score,The dashboard shall show the score for every admitted patient.,approved,,,,,,,
REQ-002,requirement,Flag amber scores,Scores at or above the amber threshold shall be flagged.,approved,,,,,,REQ-001,
HAZ-1,hazard,Missed deterioration,,,Score shown stale,Delayed treatment,Serious,,,,
RC-1,risk_control,Staleness banner,,,,,,REQ-002,HAZ-1,,
"""


def test_creating_an_item_without_an_id_assigns_the_next_req_number(product, author):
    item(product, author, "REQ-007")
    created = items.item_create(product=product, actor=author, kind="requirement", title="Export the score")
    assert created.identifier == "REQ-008"
    assert created.version == 1
    assert TraceItemVersion.objects.get(item=created).version == 1
    assert AuditEvent.objects.filter(action="trace_item.created", object_human_id="REQ-008").count() == 1


def test_a_content_edit_makes_a_new_version_and_a_status_or_comment_edit_does_not(product, author):
    requirement = item(product, author, "REQ-001", "Show the score", text="Shown on the ward view.")
    requirement, versioned = items.item_edit(item=requirement, actor=author, text="Shown on the ward and unit views.")
    assert (versioned, requirement.version) == (True, 2)
    requirement, versioned = items.item_edit(item=requirement, actor=author, status="Approved")
    assert (versioned, requirement.version, requirement.status) == (False, 2, "approved")
    requirement, versioned = items.item_edit(
        item=requirement, actor=author, attributes={"comment": "reviewed by Quinn"}
    )
    assert (versioned, requirement.version) == (False, 2)
    requirement, versioned = items.item_edit(
        item=requirement, actor=author, attributes={"comment": "x", "Owner": "ana"}
    )
    assert (versioned, requirement.version) == (True, 3)
    assert list(requirement.versions.values_list("version", flat=True)) == [1, 2, 3]
    assert AuditEvent.objects.filter(action="trace_item.updated", object_human_id="REQ-001").count() == 2


def test_an_edit_that_changes_nothing_writes_nothing(product, author):
    requirement = item(product, author, "REQ-001", "Show the score")
    before = AuditEvent.objects.count()
    _, versioned = items.item_edit(item=requirement, actor=author, title="Show the score")
    assert versioned is False
    assert AuditEvent.objects.count() == before


def test_an_auditor_cannot_create_or_edit_items(product, author, auditor):
    with pytest.raises(NotPermitted):
        items.item_create(product=product, actor=auditor, kind="requirement", title="Sneaky")
    requirement = item(product, author, "REQ-001")
    with pytest.raises(NotPermitted):
        items.item_edit(item=requirement, actor=auditor, title="Changed")


def test_only_hazards_carry_risk_analysis_fields(product, author):
    with pytest.raises(ValidationFailed, match="only hazards"):
        items.item_create(product=product, actor=author, kind="requirement", title="x", harm="Death")


def test_a_duplicate_id_is_a_conflict(product, author):
    item(product, author, "REQ-001")
    with pytest.raises(Conflict, match="REQ-001 already exists"):
        item(product, author, "REQ-001")


def test_a_disallowed_link_kind_is_refused_naming_the_allowed_kinds(product, author):
    requirement, hazard = item(product, author, "REQ-001"), item(product, author, "HAZ-1")
    with pytest.raises(ValidationFailed) as refused:
        link(requirement, hazard, "mitigates", author)
    assert "no link may go from a requirement to a hazard" in refused.value.detail
    assert "implements (risk control → requirement)" in refused.value.detail
    assert "mitigates (risk control → hazard)" in refused.value.detail
    control = item(product, author, "RC-1")
    with pytest.raises(ValidationFailed, match="only implements is allowed"):
        link(control, requirement, "verifies", author)
    assert TraceLink.objects.count() == 0


def test_a_content_change_upstream_marks_every_downstream_link_suspect(product, author):
    hazard, control = item(product, author, "HAZ-1"), item(product, author, "RC-1")
    req, child = item(product, author, "REQ-001"), item(product, author, "REQ-002")
    mitigates, implements = link(control, hazard, "mitigates", author), link(control, req, "implements", author)
    derived = link(child, req, "derives_from", author)

    items.item_edit(item=hazard, actor=author, harm="Delayed antibiotics")
    assert TraceLink.objects.get(pk=mitigates.pk).suspect is True
    assert TraceLink.objects.get(pk=implements.pk).suspect is False

    items.item_edit(item=req, actor=author, text="New wording")
    derived.refresh_from_db()
    assert derived.suspect is True
    assert derived.suspect_reason == "REQ-001 changed to version 2"
    assert TraceLink.objects.get(pk=implements.pk).suspect is False  # REQ-001 is downstream of RC-1

    items.item_edit(item=control, actor=author, title="Staleness banner v2")
    assert TraceLink.objects.get(pk=implements.pk).suspect is True


def test_a_status_change_does_not_mark_links_suspect(product, author):
    control, req = item(product, author, "RC-1"), item(product, author, "REQ-001")
    made = link(control, req, "implements", author)
    items.item_edit(item=control, actor=author, status="approved")
    assert TraceLink.objects.get(pk=made.pk).suspect is False


def test_clearing_a_suspect_link_needs_a_comment_and_is_audited(product, author, quality_reviewer):
    control, req = item(product, author, "RC-1"), item(product, author, "REQ-001")
    made = link(control, req, "implements", author)
    items.item_edit(item=control, actor=author, text="Banner shows after 10 minutes, not 15")
    with pytest.raises(ValidationFailed, match="needs a comment"):
        items.trace_link_clear_suspect(link=made, actor=quality_reviewer, comment="  ")
    cleared = items.trace_link_clear_suspect(link=made, actor=quality_reviewer, comment="REQ-001 already covers 10 min")
    assert (cleared.suspect, cleared.cleared_by, cleared.cleared_comment) == (
        False,
        quality_reviewer,
        "REQ-001 already covers 10 min",
    )
    event = AuditEvent.objects.get(action="trace_link.suspect_cleared")
    assert (event.actor, event.reason) == (quality_reviewer, "REQ-001 already covers 10 min")
    with pytest.raises(Conflict, match="is not suspect"):
        items.trace_link_clear_suspect(link=made, actor=quality_reviewer, comment="again")


def test_an_auditor_cannot_clear_a_suspect_link(product, author, auditor):
    control, req = item(product, author, "RC-1"), item(product, author, "REQ-001")
    made = link(control, req, "implements", author)
    items.item_edit(item=control, actor=author, text="changed")
    with pytest.raises(NotPermitted):
        items.trace_link_clear_suspect(link=made, actor=auditor, comment="looks fine")


def test_a_change_request_links_the_items_it_affects_and_reports_unknown_ids(product, author, release_manager):
    item(product, author, "REQ-017")
    item(product, author, "HAZ-3")
    change = open_change_request(product=product, requester=release_manager)
    result = items.change_request_items_link(
        change_request=change, actor=release_manager, identifiers=["req-017", "HAZ-3", "REQ-999"]
    )
    assert result == {"linked": ["HAZ-3", "REQ-017"], "unknown": ["REQ-999"]}
    again = items.change_request_items_link(change_request=change, actor=release_manager, identifiers=["REQ-017"])
    assert again == {"linked": [], "unknown": []}


def test_references_in_text_are_found_once_each_in_order():
    assert items.references_in("CR-42: fix REQ-017 and req-017, see HAZ-3 (not sha256)") == [
        "CR-42",
        "REQ-017",
        "HAZ-3",
    ]


def test_importing_a_csv_creates_items_and_links_and_reimporting_changes_nothing(product, author):
    report = items.items_import(product=product, actor=author, format="csv", data=CSV)
    assert report.created == ["REQ-001", "REQ-002", "HAZ-1", "RC-1"]
    assert sorted(report.links_created) == [
        "RC-1 implements REQ-002",
        "RC-1 mitigates HAZ-1",
        "REQ-002 derives_from REQ-001",
    ]
    assert TraceItem.objects.get(identifier="HAZ-1").harm == "Delayed treatment"
    events = AuditEvent.objects.count()

    again = items.items_import(product=product, actor=author, format="csv", data=CSV)
    assert again.created == again.versioned == again.updated == again.links_created == []
    assert again.unchanged == ["REQ-001", "REQ-002", "HAZ-1", "RC-1"]
    assert AuditEvent.objects.count() == events + 1  # only the import summary itself


def test_importing_an_edited_file_versions_only_what_changed(product, author):
    items.items_import(product=product, actor=author, format="csv", data=CSV)
    edited = CSV.replace(b"Scores at or above", b"Scores strictly above").replace(
        b"every admitted patient.,approved", b"every admitted patient.,obsolete"
    )
    report = items.items_import(product=product, actor=author, format="csv", data=edited)
    assert report.versioned == ["REQ-002"]
    assert report.updated == ["REQ-001"]
    assert report.unchanged == ["HAZ-1", "RC-1"]
    assert TraceItem.objects.get(identifier="REQ-002").version == 2
    assert TraceItem.objects.get(identifier="REQ-001").version == 1
    # REQ-002 changed: nothing derives from it; RC-1 → REQ-002 has REQ-002 downstream, so stays trusted.
    assert list(TraceLink.objects.filter(suspect=True)) == []


def test_an_import_refuses_a_kind_change_and_links_to_unknown_items_but_keeps_the_rest(product, author):
    item(product, author, "REQ-050", kind="requirement")
    data = b"id,kind,title,implements\nREQ-050,hazard,Now a hazard?,\nRC-9,risk_control,Guard,REQ-404\n"
    report = items.items_import(product=product, actor=author, format="csv", data=data)
    assert report.created == ["RC-9"]
    assert report.refused == [
        {"id": "REQ-050", "reason": "REQ-050 is a requirement in Custody; the file says hazard"},
        {"id": "RC-9", "reason": "'implements' link to REQ-404: no such item in rsd"},
    ]


def test_a_broken_file_imports_nothing_and_lists_every_problem(product, author):
    data = b"id,title\nREQ-1,\nREQ-2,Once\nREQ-2,Twice\n"
    with pytest.raises(ValidationFailed) as refused:
        items.items_import(product=product, actor=author, format="csv", data=data)
    assert refused.value.detail.startswith("nothing was imported")
    assert len(refused.value.extra["errors"]) == 2
    assert TraceItem.objects.count() == 0


def test_export_re_imports_unchanged(product, author):
    items.items_import(product=product, actor=author, format="csv", data=CSV)
    for fmt in ("csv", "json"):
        data, _ = items.items_export(product=product, format=fmt)
        report = items.items_import(product=product, actor=author, format=fmt, data=data)
        assert report.unchanged == ["HAZ-1", "RC-1", "REQ-001", "REQ-002"] or sorted(report.unchanged) == sorted(
            ["HAZ-1", "RC-1", "REQ-001", "REQ-002"]
        )
        assert report.versioned == report.created == report.updated == report.refused == []


def test_a_baseline_is_taken_once_never_changes_and_compares_with_another(product, author, release_manager):
    items.items_import(product=product, actor=author, format="csv", data=CSV)
    first = baselines.trace_baseline_take(
        product=product, release_version="7.2.3", artifact_ids=[], actor=release_manager
    )
    assert [i["id"] for i in first.content["items"]] == ["HAZ-1", "RC-1", "REQ-001", "REQ-002"]
    assert len(first.sha256) == 64
    with pytest.raises(Conflict, match="already has its baseline"):
        baselines.trace_baseline_take(product=product, release_version="7.2.3", artifact_ids=[], actor=release_manager)

    req = TraceItem.objects.get(identifier="REQ-002")
    items.item_edit(item=req, actor=author, text="Scores strictly above the amber threshold are flagged.")
    item(product, author, "REQ-003", "Show the trend")
    second = baselines.trace_baseline_take(
        product=product, release_version="7.2.4", artifact_ids=[], actor=release_manager
    )
    diff = baselines.trace_baseline_compare(first, second)
    assert [i["id"] for i in diff["added"]] == ["REQ-003"]
    assert diff["removed"] == []
    assert [(c["id"], c["from_version"], c["to_version"]) for c in diff["changed"]] == [("REQ-002", 1, 2)]
    assert diff["status_changes"] == []  # REQ-003 is new; the rest stayed missing_test

    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="never change"), transaction.atomic():
            TraceBaseline.objects.filter(pk=first.pk).update(content={})
    assert TraceBaseline.objects.get(pk=first.pk).content["release"] == "7.2.3"


def test_a_link_to_itself_is_refused_by_the_database_too(product, author):
    req = item(product, author, "REQ-001")
    with pytest.raises(IntegrityError), transaction.atomic():
        TraceLink.objects.create(product=product, source=req, target=req, kind="derives_from", created_by=author)


def test_the_demo_seed_is_a_real_design_history_and_runs_twice_without_change(product, cast):
    import io
    from types import SimpleNamespace

    from traceability import demo as items_demo

    people = {"emma": cast["alice"], "ravi": cast["rory"]}
    context = SimpleNamespace(products={"rsd": product}, people=people, password="", stdout=io.StringIO())
    items_demo.seed(context)
    assert TraceItem.objects.filter(kind="requirement").count() == 12
    assert TraceItem.objects.filter(kind="hazard").count() == 3
    assert TraceItem.objects.filter(kind="risk_control").count() == 4
    links = TraceLink.objects.count()
    items_demo.seed(context)
    assert TraceLink.objects.count() == links
    assert TraceItem.objects.filter(version__gt=1).count() == 0
