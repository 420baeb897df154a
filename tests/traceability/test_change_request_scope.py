"""What a change request covers is part of what its reviewers sign: no silent change of scope after a decision."""

from __future__ import annotations

import pytest

from changecontrol import services
from changecontrol.models import AuditEvent, ChangeRequest, Signature
from tests.conftest import change_request_sha256, open_change_request, sign_change_request
from tests.traceability.factories import item

pytestmark = pytest.mark.django_db


def link(client, change_request, *identifiers):
    return client.post(
        f"/api/v1/change-requests/{change_request.human_id}/items", {"items": list(identifiers)}, format="json"
    )


@pytest.fixture
def approved(product, author, release_manager, quality_reviewer):
    item(product, author, "REQ-017")
    item(product, author, "REQ-018")
    change = open_change_request(product=product, requester=release_manager)
    sign_change_request(change, quality_reviewer)
    change.refresh_from_db()
    assert change.state == ChangeRequest.State.APPROVED
    return change


def test_a_ci_token_widening_an_approved_change_request_resets_its_approval(api, ci_token, approved):
    seen = change_request_sha256(approved)
    response = link(api(token=ci_token), approved, "REQ-017")
    assert response.status_code == 200, response.json()
    approved.refresh_from_db()
    assert approved.state == ChangeRequest.State.SUBMITTED
    assert approved.content_version == 2
    assert change_request_sha256(approved) != seen  # what reviewers sign now names the new scope
    signature = Signature.objects.get(subject_type="changecontrol.changerequest", subject_id=approved.pk)
    assert signature.invalidated_at is not None
    assert "items" in signature.invalidated_reason
    reset = AuditEvent.objects.filter(action="change_request.approval_reset", object_id=str(approved.pk)).get()
    assert "items changed after approval" in reset.reason
    linked = AuditEvent.objects.filter(action="change_request.items_linked").last()
    assert linked.after["items"] == ["REQ-017"] and linked.via_token.startswith("ci (")


def test_linking_what_is_already_linked_changes_nothing(api, ci_token, product, author, release_manager):
    item(product, author, "REQ-017")
    change = open_change_request(product=product, requester=release_manager)
    assert link(api(token=ci_token), change, "REQ-017").json()["linked"] == ["REQ-017"]
    change.refresh_from_db()
    version = change.content_version
    assert link(api(token=ci_token), change, "REQ-017").json() == {"linked": [], "unknown": []}
    change.refresh_from_db()
    assert change.content_version == version


def test_a_rejected_change_request_refuses_new_items_with_409(api, ci_token, product, author, release_manager, cast):
    item(product, author, "REQ-017")
    change = open_change_request(product=product, requester=release_manager)
    sign_change_request(change, cast["quinn"], meaning="rejected", comment="Thresholds not justified.")
    change.refresh_from_db()
    assert change.state == ChangeRequest.State.REJECTED
    response = link(api(token=ci_token), change, "REQ-017")
    assert response.status_code == 409
    assert response.json()["error"] == "wrong_state"
    assert "rejected" in response.json()["detail"]
    assert not change.item_links.exists()
    assert not AuditEvent.objects.filter(action="change_request.items_linked").exists()


@pytest.mark.parametrize("final", ["implemented", "withdrawn"])
def test_past_editing_the_items_a_change_request_covers_are_fixed(api, ci_token, approved, release_manager, final):
    if final == "implemented":
        services.change_request_mark_implemented(change_request=approved, actor=release_manager)
    else:
        services.change_request_withdraw(change_request=approved, actor=release_manager, reason="superseded")
    response = link(api(release_manager), approved, "REQ-017")
    assert response.status_code == 409, response.json()
    assert "can no longer be edited" in response.json()["detail"]
    assert link(api(token=ci_token), approved, "REQ-018").status_code == 409
