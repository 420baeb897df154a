"""The traceability API: import (CSV, JSON, ReqIF samples), the trace matrix, items, links, baselines."""

from __future__ import annotations

import io

import pytest

from changecontrol.models import AuditEvent
from tests.samples import sample_bytes
from tests.traceability.factories import artifact, item, link, results
from tests.traceability.test_items import CSV
from traceability import baselines
from traceability import services as items
from traceability.models import TraceItem, TraceLink

pytestmark = pytest.mark.django_db

IMPORT = "/api/v1/products/rsd/requirements/import"


def upload(client, data: bytes, fmt: str = "csv", name: str = "items.csv"):
    file = io.BytesIO(data)
    file.name = name
    return client.post(IMPORT, {"format": fmt, "file": file}, format="multipart")


def test_ci_imports_a_csv_with_its_token_and_a_reimport_changes_nothing(api, ci_token, product, cast):
    client = api(token=ci_token)
    first = upload(client, CSV)
    assert first.status_code == 200, first.json()
    assert first.json()["created"] == ["REQ-001", "REQ-002", "HAZ-1", "RC-1"]
    second = upload(client, CSV).json()
    assert (second["created"], second["versioned"], second["unchanged"]) == (
        [],
        [],
        ["REQ-001", "REQ-002", "HAZ-1", "RC-1"],
    )
    event = AuditEvent.objects.filter(action="trace_items.imported").last()
    assert event.via_token.startswith("ci (")


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("reqif/doors-rational-capella-vp.reqif", ["_xen_QMkhEee8KsfWrp9EJQ"]),
        ("reqif/polarion-roundtrip-export.reqif", 2),
        ("reqif/ibm-engineering-requirements-user-example.reqif", 1),
    ],
)
def test_real_reqif_exports_import_through_the_api_and_reimport_unchanged(api, ci_token, product, sample, expected):
    client = api(token=ci_token)
    body = upload(client, sample_bytes(sample), "reqif", sample.split("/")[1]).json()
    if isinstance(expected, list):
        assert body["created"] == expected
    else:
        assert len(body["created"]) == expected
    assert body["source_format"] == "reqif"
    again = upload(client, sample_bytes(sample), "reqif").json()
    assert again["created"] == again["versioned"] == []
    assert sorted(again["unchanged"]) == sorted(body["created"])


def test_polarion_status_is_kept_and_its_heading_is_not_a_matrix_row(api, ci_token, product):
    upload(api(token=ci_token), sample_bytes("reqif/polarion-roundtrip-export.reqif"), "reqif")
    assert TraceItem.objects.get(identifier="LOREM-818").status == "draft"
    rows = api(token=ci_token).get("/api/v1/products/rsd/trace-matrix").json()["rows"]
    assert [row["id"] for row in rows] == ["LOREM-818"]


def test_a_broken_file_is_400_listing_each_problem(api, ci_token, product):
    response = upload(api(token=ci_token), b"id,title\nREQ-1,\n")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_input"
    assert response.json()["errors"] == ["line 2: column 'title' is empty; every item needs a title"]


def test_an_unknown_format_is_400(api, ci_token, product):
    response = upload(api(token=ci_token), CSV, "xlsx")
    assert response.status_code == 400


def test_a_token_without_the_requirements_scope_is_403(api, product, admin_user, ci_account):
    from changecontrol.api_auth import token_create

    _, secret = token_create(
        actor=admin_user, name="status", user=ci_account, products=[product], scopes=["status:read"]
    )
    response = upload(api(token=secret), CSV)
    assert response.status_code == 403
    assert "requirements:write" in response.json()["detail"]


def test_an_auditor_may_read_the_matrix_but_not_import(api, auditor, product):
    assert api(auditor).get("/api/v1/products/rsd/trace-matrix").status_code == 200
    assert upload(api(auditor), CSV).status_code == 403


def test_outsider_and_another_products_token_get_404_on_every_endpoint(
    api, outsider, other_product_token, product, author
):
    req = item(product, author, "REQ-001")
    control = item(product, author, "RC-1")
    made = link(control, req, "implements", author)
    for client in (api(outsider), api(token=other_product_token)):
        assert upload(client, CSV).status_code == 404
        for path in (
            "/api/v1/products/rsd/trace-matrix",
            "/api/v1/products/rsd/trace-matrix.csv",
            "/api/v1/releases/rsd/7.2.4/trace-matrix",
            "/api/v1/products/rsd/items",
            "/api/v1/products/rsd/items/REQ-001",
            "/api/v1/products/rsd/items/REQ-001/impact",
            "/api/v1/products/rsd/items/export.csv",
            "/api/v1/products/rsd/baselines",
        ):
            assert client.get(path).status_code == 404, path
        assert (
            client.post(
                "/api/v1/products/rsd/links", {"source": "RC-1", "target": "REQ-001", "kind": "implements"}
            ).status_code
            == 404
        )
        assert client.post(f"/api/v1/products/rsd/links/{made.pk}/clear-suspect", {"comment": "x"}).status_code == 404
        assert client.patch("/api/v1/products/rsd/items/REQ-001", {"title": "mine"}, format="json").status_code == 404
    assert TraceItem.objects.get(identifier="REQ-001").title == "REQ-001"


def test_the_matrix_api_gives_rows_counts_and_coverage_and_filters(api, ci_token, product, author):
    items.items_import(product=product, actor=author, format="csv", data=CSV)
    results(artifact(product, author), author, [("test_score_REQ_001", "passed", ["REQ-001"])])
    body = api(token=ci_token).get("/api/v1/products/rsd/trace-matrix").json()
    assert body["coverage"] == 50.0
    assert body["counts"]["missing_test"] == 1
    assert {row["id"]: row["status"] for row in body["rows"]} == {"REQ-001": "verified", "REQ-002": "missing_test"}
    gaps = api(token=ci_token).get("/api/v1/products/rsd/trace-matrix?status=gaps").json()
    assert [row["id"] for row in gaps["rows"]] == ["REQ-002"]
    csv_text = api(token=ci_token).get("/api/v1/products/rsd/trace-matrix.csv").content.decode()
    assert csv_text.splitlines()[0].startswith("id,title,version,status")
    assert "REQ-002,Flag amber scores,1,missing_test,error" in csv_text


def test_the_release_matrix_of_an_unknown_release_is_404(api, ci_token, product):
    assert api(token=ci_token).get("/api/v1/releases/rsd/9.9.9/trace-matrix").status_code == 404


def test_items_list_detail_export_and_an_edit_that_versions(api, author, product):
    items.items_import(product=product, actor=author, format="csv", data=CSV)
    client = api(author)
    listed = client.get("/api/v1/products/rsd/items?kind=requirement").json()
    assert [i["id"] for i in listed] == ["REQ-001", "REQ-002"]
    changed = client.patch(
        "/api/v1/products/rsd/items/req-002", {"text": "Strictly above.", "reason": "clinical review"}, format="json"
    )
    assert changed.status_code == 200
    assert (changed.json()["versioned"], changed.json()["version"]) == (True, 2)
    detail = client.get("/api/v1/products/rsd/items/REQ-002").json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["versions"][0]["reason"] == "clinical review"
    assert [(x["source"], x["kind"]) for x in detail["links"]["incoming"]] == [("RC-1", "implements")]
    exported = client.get("/api/v1/products/rsd/items/export.csv")
    assert exported["Content-Type"].startswith("text/csv")
    assert b"REQ-002" in exported.content
    assert client.get("/api/v1/products/rsd/items/export.json").json()["items"][0]["id"] == "HAZ-1"


def test_a_disallowed_link_kind_is_400_naming_the_allowed_kinds(api, author, product):
    item(product, author, "REQ-001")
    item(product, author, "HAZ-1")
    response = api(author).post(
        "/api/v1/products/rsd/links", {"source": "REQ-001", "target": "HAZ-1", "kind": "mitigates"}
    )
    assert response.status_code == 400
    assert response.json()["allowed"] == ["implements", "mitigates", "derives_from"]
    assert "Allowed kinds: implements (risk control → requirement)" in response.json()["detail"]


def test_clearing_a_suspect_link_through_the_api_needs_a_comment(api, author, quality_reviewer, product):
    control, req = item(product, author, "RC-1"), item(product, author, "REQ-001")
    made = link(control, req, "implements", author)
    items.item_edit(item=control, actor=author, text="changed")
    url = f"/api/v1/products/rsd/links/{made.pk}/clear-suspect"
    assert api(quality_reviewer).post(url, {"comment": ""}).status_code == 400
    response = api(quality_reviewer).post(url, {"comment": "Banner wording only"})
    assert response.status_code == 200
    assert response.json()["cleared_by"] == "Quinn Quality"
    assert api(quality_reviewer).post(url, {"comment": "again"}).status_code == 409
    assert TraceLink.objects.get(pk=made.pk).suspect is False


def test_impact_lists_everything_downstream_and_open_change_requests(api, author, release_manager, product):
    from tests.conftest import open_change_request

    items.items_import(product=product, actor=author, format="csv", data=CSV)
    change = open_change_request(product=product, requester=release_manager)
    items.change_request_items_link(change_request=change, actor=release_manager, identifiers=["REQ-002"])
    body = api(author).get("/api/v1/products/rsd/items/HAZ-1/impact").json()
    assert [i["id"] for i in body["downstream"]] == ["RC-1", "REQ-002"]
    assert body["open_change_requests"] == [
        {"id": change.human_id, "title": change.title, "state": "submitted", "items": ["REQ-002"]}
    ]
    upstream = api(author).get("/api/v1/products/rsd/items/REQ-001/impact").json()
    assert [i["id"] for i in upstream["downstream"]] == ["REQ-002"]


def test_a_change_request_names_its_items_and_hears_about_unknown_ids(api, release_manager, author, product):
    from tests.conftest import open_change_request

    item(product, author, "REQ-017")
    change = open_change_request(product=product, requester=release_manager)
    response = api(release_manager).post(
        f"/api/v1/change-requests/{change.human_id}/items", {"items": ["REQ-017", "REQ-9"]}, format="json"
    )
    assert response.json() == {"linked": ["REQ-017"], "unknown": ["REQ-9"]}


def test_baselines_compare_through_the_api(api, auditor, author, release_manager, product):
    items.items_import(product=product, actor=author, format="csv", data=CSV)
    baselines.trace_baseline_take(product=product, release_version="7.2.3", artifact_ids=[], actor=release_manager)
    items.item_edit(item=TraceItem.objects.get(identifier="REQ-001"), actor=author, title="Show the sepsis risk score")
    baselines.trace_baseline_take(product=product, release_version="7.2.4", artifact_ids=[], actor=release_manager)
    client = api(auditor)
    assert [b["release"] for b in client.get("/api/v1/products/rsd/baselines").json()] == ["7.2.4", "7.2.3"]
    diff = client.get("/api/v1/products/rsd/baselines/compare?from=7.2.3&to=7.2.4").json()
    assert [(c["id"], c["from_version"], c["to_version"]) for c in diff["changed"]] == [("REQ-001", 1, 2)]
    assert client.get("/api/v1/products/rsd/baselines/compare?from=7.2.3&to=8.0").status_code == 404
    assert client.get("/api/v1/products/rsd/baselines/compare").status_code == 400


def test_the_release_matrix_api_counts_only_the_release_artifacts(
    api, ci_token, other_product_token, product, author, release_manager
):
    from approvals.models import Release

    items.items_import(product=product, actor=author, format="csv", data=CSV)
    shipped, other = artifact(product, author), artifact(product, author)
    results(shipped, author, [("test_score", "passed", ["REQ-001"])])
    results(other, author, [("test_amber", "passed", ["REQ-002"])])
    release = Release.objects.create(product=product, version="7.2.4", created_by=release_manager)
    release.artifacts.add(shipped)
    body = api(token=ci_token).get("/api/v1/releases/rsd/7.2.4/trace-matrix").json()
    assert body["release"] == "7.2.4"
    assert {row["id"]: row["status"] for row in body["rows"]} == {"REQ-001": "verified", "REQ-002": "missing_test"}
    assert body["coverage"] == 50.0
    assert api(token=other_product_token).get("/api/v1/releases/rsd/7.2.4/trace-matrix").status_code == 404
