"""A release is judged against its own scope: the requirements, hazards and risk controls in force when it froze, at
their versions then, plus those its change requests link (IEC 62304 §5.7-5.8, §8). Requirements imported later do
not reopen it; evidence about its own artifacts still does.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.cache import cache

from approvals import services
from approvals import status as approval_status
from changecontrol.policy import DEFAULT_POLICY_YAML
from changecontrol.services import active_policy
from common.canonical import canonical_sha256
from reports.bundles import build_release_bundle
from reports.packets import render_packet_html
from runtime.models import Deployment
from tests.builders import activate_policy, pass_through
from tests.runtime.helpers import approved_for_production, deploy, new_release
from tests.samples import sample_bytes
from tests.traceability.factories import item, results
from traceability import services as trace_services
from traceability.models import ChangeRequestItem, TraceBaseline

pytestmark = pytest.mark.django_db

POLICY_JUDGING_CURRENT = DEFAULT_POLICY_YAML.replace("\ntraceability:\n", "\ntraceability:\n  scope: current\n", 1)
assert POLICY_JUDGING_CURRENT != DEFAULT_POLICY_YAML


@pytest.fixture
def policy(product):
    # The product's default policy, in force from the start: its traceability gate blocks production.
    return active_policy(product)


@pytest.fixture
def requirements(product, cast, artifact):
    """Two requirements, verified by passing tests of the release's artifact."""
    made = [item(product, cast["alice"], "REQ-1", "Score in range"), item(product, cast["alice"], "REQ-2", "Audit")]
    results(artifact, cast["alice"], [("test_range", "passed", ["REQ-1"]), ("test_audit", "passed", ["REQ-2"])])
    return made


@pytest.fixture
def approved(release, cast, requirements):
    return approved_for_production(release, cast)


def _status(api, token, digest, environment="production"):
    # Each ask is a fresh evaluation: the cached answer would hide what the gate decides now.
    cache.clear()
    approval_status._local_answers.clear()
    response = api(token=token).get("/api/v1/status", {"artifact": digest, "environment": environment})
    assert response.status_code == 200, response.json()
    return response.json()


def _trace_gate(answer):
    return next(gate for gate in answer["gates"] if gate["id"] == "trace")


def test_the_baseline_records_the_scope_with_the_items_change_requests_link(
    product, cast, release, change_request, requirements
):
    retired = item(product, cast["alice"], "REQ-9", "Retired but changed by this release", status="obsolete")
    trace_services.change_request_items_link(change_request=change_request, actor=cast["alice"], identifiers=["REQ-9"])
    approved_for_production(release, cast)
    content = TraceBaseline.objects.get(product=product, release_version="7.2.4").content
    scope = {entry["id"]: entry for entry in content["scope"]}
    assert set(scope) == {"REQ-1", "REQ-2", "REQ-9"}
    assert scope["REQ-1"] == {
        "id": "REQ-1",
        "kind": "requirement",
        "version": 1,
        "title": "Score in range",
        "status": "",
        "why": "in force",
    }
    assert scope["REQ-9"]["why"] == f"linked by {change_request.human_id}"
    assert ChangeRequestItem.objects.filter(item=retired).exists()


def test_requirements_imported_after_approval_leave_the_release_allowed_and_its_rollback_authorised(
    api, ci_token, product, cast, release, artifact, approved, ci_account, change_request
):
    assert _status(api, ci_token, artifact.digest)["decision"] == "allowed"
    assert deploy(api, ci_token, artifact.digest).json()["authorised"] is True
    # Another team's requirements arrive as a real ReqIF export, and someone adds one by hand.
    report = trace_services.items_import(
        product=product,
        actor=cast["alice"],
        format="reqif",
        data=sample_bytes("reqif/polarion-roundtrip-export.reqif"),
    )
    assert report.created
    item(product, cast["alice"], "REQ-3", "Export the score as PDF")

    answer = _status(api, ci_token, artifact.digest)
    assert answer["decision"] == "allowed", answer["reasons"]
    gate = _trace_gate(answer)
    assert gate["status"] == "pass"
    assert "judged against the scope of release 7.2.4" in gate["detail"]
    assert "for a later release to pick up" in gate["detail"] and "REQ-3" in gate["detail"]

    # A redeploy of 7.2.4 acts on an allowed decision; a rollback to it is authorised.
    redeploy = deploy(api, ci_token, artifact.digest).json()
    assert redeploy["authorised"] is True, redeploy["reasons"]
    newer, newer_artifact = new_release(product, cast, ci_account, "7.2.5", change_request)
    rollback = deploy(api, ci_token, artifact.digest, kind="rollback").json()
    assert rollback["authorised"] is True
    stored = Deployment.objects.get(pk=int(rollback["id"][4:])).decision
    assert stored.decision == "allowed"

    # The later release, frozen after the import, is the one that must cover REQ-3.
    results(newer_artifact, cast["alice"], [("test_range", "passed", ["REQ-1"]), ("test_audit", "passed", ["REQ-2"])])
    pass_through(newer, actor=cast["rory"])
    services.promotion_request(release=newer, environment_key="production", actor=cast["rory"])
    later = _status(api, ci_token, newer_artifact.digest)
    assert later["decision"] == "blocked"
    assert "REQ-3" in _trace_gate(later)["detail"]


def test_a_new_failing_report_for_its_artifact_still_blocks_it(api, ci_token, cast, artifact, approved):
    assert _status(api, ci_token, artifact.digest)["decision"] == "allowed"
    results(artifact, cast["alice"], [("test_range", "failed", ["REQ-1"])])
    answer = _status(api, ci_token, artifact.digest)
    assert answer["decision"] == "blocked"
    gate = _trace_gate(answer)
    assert gate["status"] == "fail"
    assert "failed: REQ-1" in gate["detail"]


def test_a_requirement_edited_after_the_freeze_is_judged_at_its_frozen_version(
    api, ci_token, product, cast, artifact, approved, requirements
):
    edited, versioned = trace_services.item_edit(
        item=requirements[0], actor=cast["alice"], reason="tighter range", title="Score in range 0-100"
    )
    assert versioned and edited.version == 2
    answer = _status(api, ci_token, artifact.digest)
    assert answer["decision"] == "allowed", answer["reasons"]
    assert "REQ-1 (v2, frozen at v1)" in _trace_gate(answer)["detail"]

    client = api(token=ci_token)
    release_matrix = client.get(f"/api/v1/releases/{product.key}/7.2.4/trace-matrix").json()
    assert release_matrix["basis"]["scope"] == "release"
    row = next(row for row in release_matrix["rows"] if row["id"] == "REQ-1")
    assert (row["version"], row["title"], row["status"]) == (1, "Score in range", "verified")
    assert release_matrix["outside_scope"] == [
        {"id": "REQ-1", "kind": "requirement", "version": 2, "scoped_version": 1}
    ]
    # The product's matrix holds the current text, which no test has verified since it changed.
    product_matrix = client.get(f"/api/v1/products/{product.key}/trace-matrix").json()
    assert product_matrix["basis"] == {
        "scope": "product",
        "description": "the current requirements against the latest results",
    }
    current = next(row for row in product_matrix["rows"] if row["id"] == "REQ-1")
    assert current["version"] == 2 and current["status"] != "verified"


def test_a_policy_can_ask_every_release_to_cover_the_current_requirements(
    api, ci_token, product, cast, release, artifact, requirements
):
    activate_policy(product, POLICY_JUDGING_CURRENT)
    approved_for_production(release, cast)
    assert _status(api, ci_token, artifact.digest)["decision"] == "allowed"
    item(product, cast["alice"], "REQ-3", "Export the score as PDF")
    answer = _status(api, ci_token, artifact.digest)
    assert answer["decision"] == "blocked"
    assert "missing_test: REQ-3" in _trace_gate(answer)["detail"]
    assert "judged against every requirement current now" in _trace_gate(answer)["detail"]
    assert any("traceability.scope: current" in reason for reason in answer["reasons"])


def test_pages_name_what_each_matrix_shows(client, product, cast, release, approved):
    item(product, cast["alice"], "REQ-3", "Export the score as PDF")
    client.force_login(cast["quinn"])
    product_page = client.get(f"/products/{product.key}/trace-matrix").content.decode()
    assert "the current requirements against the latest results" in product_page
    release_page = client.get(f"/products/{product.key}/trace-matrix?release=7.2.4").content.decode()
    assert "the scope of release 7.2.4" in release_page
    assert 'id="outside-scope"' in release_page and "REQ-3" in release_page
    promotion_page = client.get(f"/promotions/{approved.human_id}").content.decode()
    assert f"/products/{product.key}/trace-matrix?release=7.2.4" in promotion_page
    detail = client.get(f"/products/{product.key}/releases/7.2.4").content.decode()
    assert 'id="scope"' in detail and "REQ-1" in detail and "REQ-3" not in detail


def test_the_bundle_and_the_packet_hold_the_scope(product, cast, release, approved):
    bundle = zipfile.ZipFile(io.BytesIO(build_release_bundle(release, pdf_bytes=b"%PDF-1.7")))
    baseline = json.loads(bundle.read("trace-baseline.json"))
    assert [entry["id"] for entry in baseline["content"]["scope"]] == ["REQ-1", "REQ-2"]
    assert canonical_sha256(baseline["content"]) == baseline["sha256"]
    packet = render_packet_html(release)
    assert "The release is judged against these 2 items" in packet
    assert "Score in range" in packet
