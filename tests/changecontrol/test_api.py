"""The change-request API (DESIGN §7): session auth, Part 11 signing, JSON errors, and who may see what."""

import json

import pytest
import yaml

from changecontrol.models import AuditEvent, ChangeRequest, Signature
from common.keys import keyring
from tests.conftest import HIGH_RISK, LOW_RISK, MEDIUM_RISK, PASSWORD, change_request_sha256, open_change_request

pytestmark = pytest.mark.django_db

NEW_CR = {
    "title": "Recalibrate the sepsis amber threshold",
    "why": "Too many amber alerts for patients who never deteriorate.",
    "what_changes": "amber_threshold 0.35 → 0.42",
    "affected_items": "scoring-service, REQ-017",
    "kind": "configuration",
    "type": "normal",
    "verification_plan": "Replay last quarter's anonymised encounters with the clinical panel.",
    "rollback_plan": "Revert the configuration commit.",
    "risk_answers": MEDIUM_RISK,
}


def sign_body(user, change_request, password=PASSWORD, meaning="approved", comment="Evidence reviewed."):
    """A signing request from a reviewer who has just read the change request (its content_sha256 as GET gives it)."""
    return {
        "meaning": meaning,
        "comment": comment,
        "username": user.username,
        "password": password,
        "content_sha256": change_request_sha256(change_request),
    }


@pytest.fixture
def submitted(product, release_manager):
    return open_change_request(product=product, requester=release_manager)


def test_release_manager_opens_a_change_request_and_the_tier_is_computed(api, product, release_manager):
    response = api(release_manager).post("/api/v1/products/rsd/change-requests", NEW_CR, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    change_request = ChangeRequest.objects.get()
    assert body["id"] == f"CR-{change_request.pk}" and body["state"] == "draft"
    assert (body["tier"], body["risk_score"], body["policy_version"]) == ("medium", 2, 1)
    assert body["type"] == "normal" and body["requester"] == "rory"
    assert body["approval"]["roles"] == ["quality"] and body["approval"]["count"] == 1


def test_a_typed_tier_is_ignored(api, product, release_manager):
    response = api(release_manager).post(
        "/api/v1/products/rsd/change-requests", {**NEW_CR, "tier": "low"}, format="json"
    )
    assert response.json()["tier"] == "medium"


def test_bad_input_is_400_naming_the_field(api, product, release_manager):
    response = api(release_manager).post(
        "/api/v1/products/rsd/change-requests", {**NEW_CR, "kind": "vibes"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_input" and "kind" in body["detail"] and "kind" in body["fields"]
    assert not ChangeRequest.objects.exists()


def test_incomplete_risk_answers_are_400(api, product, release_manager):
    response = api(release_manager).post(
        "/api/v1/products/rsd/change-requests",
        {**NEW_CR, "risk_answers": {"patient_safety_impact": "direct"}},
        format="json",
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_input"
    assert "risk answers" in response.json()["detail"]


def test_list_filters_by_state_tier_and_kind(api, product, release_manager):
    low = open_change_request(product=product, requester=release_manager, answers=LOW_RISK, kind="code")
    high = open_change_request(product=product, requester=release_manager, answers=HIGH_RISK)
    draft = open_change_request(product=product, requester=release_manager, submit=False)
    client = api(release_manager)

    def ids(**query):
        response = client.get("/api/v1/products/rsd/change-requests", query)
        assert response.status_code == 200
        return [row["id"] for row in response.json()]

    assert ids() == [draft.human_id, high.human_id, low.human_id]
    assert ids(state="approved") == [low.human_id]
    assert ids(tier="high") == [high.human_id]
    assert ids(kind="code") == [low.human_id]
    assert ids(state="draft", tier="medium") == [draft.human_id]


def test_detail_shows_signatures_with_their_manifestation(api, submitted, quality_reviewer, auditor):
    api(quality_reviewer).post(
        f"/api/v1/change-requests/{submitted.human_id}/signatures",
        sign_body(quality_reviewer, submitted),
        format="json",
    )
    body = api(auditor).get(f"/api/v1/change-requests/{submitted.human_id}").json()
    assert body["state"] == "approved"
    [signature] = body["signatures"]
    assert (
        signature["printed_name"] == "Quinn Quality"
        and signature["meaning"] == "approved"
        and signature["role"] == "quality"
    )
    assert (
        signature["manifestation"].startswith("Quinn Quality — Approved as Quality reviewer — ") and signature["valid"]
    )
    assert len(signature["content_sha256"]) == 64


def test_submit_through_the_api_then_again_is_409_naming_the_state(api, product, release_manager):
    draft = open_change_request(product=product, requester=release_manager, submit=False)
    client = api(release_manager)
    response = client.post(f"/api/v1/change-requests/{draft.human_id}/submit")
    assert response.status_code == 200 and response.json()["state"] == "submitted"
    again = client.post(f"/api/v1/change-requests/{draft.human_id}/submit")
    assert again.status_code == 409
    assert again.json()["error"] == "wrong_state" and "is submitted" in again.json()["detail"]


def test_submitting_without_plans_is_400_listing_what_is_missing(api, product, release_manager):
    draft = open_change_request(
        product=product, requester=release_manager, submit=False, rollback_plan="", verification_plan=""
    )
    response = api(release_manager).post(f"/api/v1/change-requests/{draft.human_id}/submit")
    assert response.status_code == 400
    assert response.json()["errors"] == ["write the verification plan", "write the rollback plan"]


def test_quality_reviewer_signs_and_the_change_is_approved(api, submitted, quality_reviewer):
    response = api(quality_reviewer).post(
        f"/api/v1/change-requests/{submitted.human_id}/signatures",
        sign_body(quality_reviewer, submitted),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["printed_name"] == "Quinn Quality" and body["change_request"]["state"] == "approved"
    assert Signature.objects.get(subject_type="changecontrol.changerequest").signer == quality_reviewer


def test_wrong_password_is_403_and_signs_nothing(api, submitted, quality_reviewer):
    response = api(quality_reviewer).post(
        f"/api/v1/change-requests/{submitted.human_id}/signatures",
        sign_body(quality_reviewer, submitted, password="guess"),
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["error"] == "reauthentication_failed" and "nothing was signed" in response.json()["detail"]
    assert not Signature.objects.filter(subject_type="changecontrol.changerequest").exists()
    assert AuditEvent.objects.filter(action="signature.failed", actor=quality_reviewer).exists()
    submitted.refresh_from_db()
    assert submitted.state == "submitted"


def test_someone_elses_username_is_403(api, submitted, quality_reviewer, security_reviewer):
    body = {**sign_body(quality_reviewer, submitted), "username": security_reviewer.username}
    response = api(quality_reviewer).post(
        f"/api/v1/change-requests/{submitted.human_id}/signatures", body, format="json"
    )
    assert response.status_code == 403
    assert not Signature.objects.filter(subject_type="changecontrol.changerequest").exists()


def test_requesters_own_signature_is_403_naming_the_rule(api, submitted, release_manager):
    response = api(release_manager).post(
        f"/api/v1/change-requests/{submitted.human_id}/signatures", sign_body(release_manager, submitted), format="json"
    )
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "separation_of_duties" and body["rule"] == "sod.requester_cannot_sign"
    assert "requester" in body["detail"]
    assert AuditEvent.objects.filter(
        action="signature.refused", reason__startswith="sod.requester_cannot_sign"
    ).exists()


def test_signing_an_approved_change_is_409(api, product, release_manager, quality_reviewer):
    approved = open_change_request(product=product, requester=release_manager, answers=LOW_RISK)
    response = api(quality_reviewer).post(
        f"/api/v1/change-requests/{approved.human_id}/signatures", sign_body(quality_reviewer, approved), format="json"
    )
    assert response.status_code == 409 and "is approved, not submitted" in response.json()["detail"]


def test_a_bad_meaning_is_400(api, submitted, quality_reviewer):
    response = api(quality_reviewer).post(
        f"/api/v1/change-requests/{submitted.human_id}/signatures",
        sign_body(quality_reviewer, submitted, meaning="released"),
        format="json",
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_input"


def test_a_service_account_token_cannot_open_or_sign_a_change(api, product, ci_token, submitted):
    client = api(token=ci_token)
    response = client.post("/api/v1/products/rsd/change-requests", NEW_CR, format="json")
    assert response.status_code == 403 and "needs a person" in response.json()["detail"]
    assert client.post(f"/api/v1/change-requests/{submitted.human_id}/submit").status_code == 403
    assert ChangeRequest.objects.count() == 1


def test_anonymous_callers_get_401(api, submitted):
    response = api().get(f"/api/v1/change-requests/{submitted.human_id}")
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"


def every_endpoint(change_request):
    cr = change_request.human_id
    return [
        ("get", "/api/v1/products/rsd", None),
        ("get", "/api/v1/products/rsd/change-requests", None),
        ("post", "/api/v1/products/rsd/change-requests", NEW_CR),
        ("post", "/api/v1/products/rsd/risk-preview", {"answers": MEDIUM_RISK}),
        ("get", f"/api/v1/change-requests/{cr}", None),
        ("patch", f"/api/v1/change-requests/{cr}", {"title": "hijacked"}),
        ("post", f"/api/v1/change-requests/{cr}/submit", None),
        ("post", f"/api/v1/change-requests/{cr}/withdraw", {"reason": "because"}),
        ("post", f"/api/v1/change-requests/{cr}/signatures", {"meaning": "approved", "username": "x", "password": "y"}),
    ]


def assert_all_404(client, change_request):
    for method, path, body in every_endpoint(change_request):
        response = getattr(client, method)(path, body, format="json")
        assert response.status_code == 404, f"{method.upper()} {path} → {response.status_code}"
        assert response.json()["error"] == "not_found"
    change_request.refresh_from_db()
    assert change_request.title != "hijacked" and change_request.state == "submitted"


def test_outsider_gets_404_on_every_endpoint(api, submitted, outsider):
    assert_all_404(api(outsider), submitted)
    assert api(outsider).get("/api/v1/products").json() == []


def test_another_products_token_gets_404_on_every_endpoint(api, submitted, other_product_token):
    assert_all_404(api(token=other_product_token), submitted)
    assert [p["key"] for p in api(token=other_product_token).get("/api/v1/products").json()] == ["lab"]


def test_an_unknown_or_malformed_change_request_is_404(api, submitted, auditor):
    for ref in ("CR-999999", "CR-abc", "PRM-1", "CR-1e3"):
        assert api(auditor).get(f"/api/v1/change-requests/{ref}").status_code == 404


def test_openapi_schema_and_docs_render(api, release_manager):
    client = api(release_manager)
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/change-requests/{change_request_id}/signatures" in text
    assert "/api/v1/products/{product}/change-requests" in text
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_public_keys_list_the_active_key_without_signing_in(api, db):
    response = api().get("/api/v1/keys")
    assert response.status_code == 200
    [active] = [key for key in response.json()["keys"] if key["status"] == "active"]
    assert active["key_id"] == keyring().key_id and active["algorithm"] == "ed25519"
    assert active["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_a_path_no_api_route_matches_is_a_json_404_and_a_page_keeps_the_html_404(api, ci_token, auditor):
    for client in (api(token=ci_token), api()):
        response = client.get("/api/v1/no-such-thing")
        assert response.status_code == 404 and response["Content-Type"].startswith("application/json")
        assert response.json()["error"] == "not_found" and "/api/v1/docs/" in response.json()["detail"]
    page = api(auditor).get("/no-such-page")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/", "/api/v2/status", "/api/v1/promotions/PRM-1/nope"])
def test_an_unknown_api_path_is_the_json_404_in_every_mode(api, ci_token, auditor, settings, debug, path):
    settings.DEBUG = debug
    for client in (api(token=ci_token), api(auditor), api()):
        response = client.get(path)
        assert response.status_code == 404, (path, debug)
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"] == "not_found" and "/api/v1/docs/" in response.json()["detail"]
        assert client.post(path, {}, format="json").status_code == 404


def test_a_post_to_an_unknown_api_path_is_404_even_where_csrf_is_enforced(ci_token):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ci_token}")
    response = client.post("/api/v1/no-such-thing", {"a": 1}, format="json")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_an_api_path_missing_only_its_slash_still_redirects_to_it(api, ci_token):
    response = api(token=ci_token).get("/api/v1/schema")
    assert response.status_code == 301 and response["Location"].endswith("/api/v1/schema/")


def test_a_server_error_under_the_api_is_json_and_a_page_keeps_the_html_500(rf):
    from common.api_errors import server_error

    response = server_error(rf.get("/api/v1/status"))
    assert response.status_code == 500 and response["Content-Type"].startswith("application/json")
    assert json.loads(response.content)["error"] == "server_error"
    page = server_error(rf.get("/products"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


def test_the_schema_declares_the_bearer_token_and_documents_each_request_body(api, ci_token):
    schema = yaml.safe_load(api(token=ci_token).get("/api/v1/schema/").content)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    signing = schema["paths"]["/api/v1/change-requests/{change_request_id}/signatures"]["post"]
    assert {"bearerAuth": []} in signing["security"]
    # Each request serializer is its own component: none is another endpoint's body under a shared name.
    bodies = {
        path: operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch")
        and "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    assert "#/components/schemas/Input" not in bodies.values()
    assert bodies["/api/v1/products/{product}/releases"].endswith("/ReleaseInput")


def test_the_schema_is_json_with_format_json_or_accept_json_and_yaml_by_default(api, auditor):
    client = api(auditor)
    assert yaml.safe_load(client.get("/api/v1/schema/").content)["openapi"].startswith("3.")
    for response in (
        client.get("/api/v1/schema/", {"format": "json"}),
        client.get("/api/v1/schema/", HTTP_ACCEPT="application/json"),
    ):
        assert response.status_code == 200 and "json" in response["Content-Type"]
        assert json.loads(response.content)["openapi"].startswith("3.")
    # Any other value leaves the choice to the Accept header (the audit exports own ?format=csv).
    assert client.get("/api/v1/schema/", {"format": "csv"})["Content-Type"].startswith("application/vnd.oai.openapi")
