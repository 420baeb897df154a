"""Releases and promotions through the API: freezing, the `after` rule, approvals, rejection, the status answer."""

from __future__ import annotations

import pytest

from approvals import releases, services
from approvals import status as approval_status
from approvals.models import Decision, Promotion, Release
from changecontrol.models import AuditEvent
from tests.builders import add_tests, make_artifact, make_build, pass_through, promotion_sha256, sign
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def status_of(api, token, digest, environment="production"):
    return api(token=token).get("/api/v1/status", {"artifact": digest, "environment": environment})


def test_ci_creates_a_release_from_digests_and_change_requests(api, ci_token, artifact, change_request):
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/releases",
        {"version": "7.2.4", "artifacts": [artifact.digest], "change_requests": [change_request.human_id]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == "7.2.4"
    assert [a["digest"] for a in body["artifacts"]] == [artifact.digest]
    assert body["change_requests"][0]["id"] == change_request.human_id
    assert body["frozen"] is False
    assert AuditEvent.objects.filter(action="release.created", object_human_id="rsd 7.2.4").exists()


def test_release_with_unknown_digest_is_refused_naming_it(api, ci_token, artifact):
    unknown = "sha256:" + "0" * 64
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/releases", {"version": "7.2.5", "artifacts": [unknown]}, format="json"
    )
    assert response.status_code == 400
    assert unknown in response.json()["detail"]


@pytest.mark.parametrize("version", ["7.2.5", "1.0.0-rc.1", "1.0.0+build.5", "2025.03.1_hotfix", "V8"])
def test_a_release_version_fit_for_a_url_is_created_and_addressable(api, ci_token, artifact, version):
    client = api(token=ci_token)
    created = client.post(
        "/api/v1/products/rsd/releases", {"version": version, "artifacts": [artifact.digest]}, format="json"
    )
    assert created.status_code == 201, created.json()
    found = client.get(f"/api/v1/releases/rsd/{version}")
    assert found.status_code == 200 and found.json()["version"] == version


@pytest.mark.parametrize(
    "version, problem",
    [
        ("2025.03/hotfix", "contains '/'"),
        ("7.2 beta", "contains ' '"),
        ("1.0?draft", "contains '?'"),
        ("1.0#2", "contains '#'"),
        ("50%", "contains '%'"),
        ("..", "starts with '.'"),
        ("-rc.1", "starts with '-'"),
    ],
)
def test_a_release_version_no_url_can_address_is_400_saying_what_is_allowed(api, ci_token, artifact, version, problem):
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/releases", {"version": version, "artifacts": [artifact.digest]}, format="json"
    )
    assert response.status_code == 400, response.json()
    detail = response.json()["detail"]
    assert problem in detail and releases.RELEASE_VERSION_RULE in detail, detail
    assert not Release.objects.exists()


def test_new_is_no_release_version_because_the_page_of_that_name_creates_releases(api, ci_token, artifact):
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/releases", {"version": "new", "artifacts": [artifact.digest]}, format="json"
    )
    assert response.status_code == 400 and "new-release form" in response.json()["detail"]


def test_duplicate_release_version_is_a_conflict(api, ci_token, release, artifact):
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/releases", {"version": "7.2.4", "artifacts": [artifact.digest]}, format="json"
    )
    assert response.status_code == 409


def test_first_promotion_request_freezes_the_release_with_a_signed_manifest(api, ci_token, release):
    response = api(token=ci_token).post(
        "/api/v1/releases/rsd/7.2.4/promotions", {"environment": "integration"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("PRM-")
    assert body["state"] == "approved"
    assert body["status"]["decision"] == "allowed"
    release.refresh_from_db()
    assert release.is_frozen()
    from common.keys import keyring
    from common.signing import SignedBlob

    blob = SignedBlob(key_id=release.manifest_key_id, algorithm="ed25519", signature_b64=release.manifest_signature)
    assert keyring().verify(releases.manifest_bytes(release), blob)
    assert release.manifest["artifacts"][0]["digest"] == release.artifacts.get().digest
    from changecontrol import models as cc_models

    if hasattr(cc_models, "TraceBaseline"):  # the traceability module takes the baseline when it is installed
        assert cc_models.TraceBaseline.objects.filter(product=release.product, release_version="7.2.4").count() == 1


def test_frozen_release_cannot_change(release, cast):
    pass_through(release, actor=cast["rory"], environments=("integration",))
    from common.errors import InvalidState

    with pytest.raises(InvalidState, match="frozen"):
        releases.release_update(release=release, actor=cast["rory"], change_request_ids=[])


def test_production_refuses_digests_not_approved_in_staging(release, cast):
    promotion = services.promotion_request(release=release, environment_key="production", actor=cast["rory"])
    answer = approval_status.promotion_status(promotion)
    gate = next(g for g in answer["gates"] if g["id"] == "after-staging")
    assert gate["status"] == "fail"
    assert "never approved in staging" in gate["detail"]
    assert answer["decision"] == "blocked"


def test_a_rebuilt_artifact_starts_again_at_staging(release, cast, product, ci_account):
    from tests.builders import add_full_evidence

    pass_through(release, actor=cast["rory"])
    rebuilt = make_artifact(make_build(product, registered_by=ci_account))
    add_full_evidence(rebuilt)
    release_2 = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="7.2.4-rebuild",
        artifact_digests=[rebuilt.digest],
        change_request_ids=[cr.human_id for cr in release.change_requests.all()],
    )
    promotion = services.promotion_request(release=release_2, environment_key="production", actor=cast["rory"])
    gate = next(g for g in approval_status.promotion_status(promotion)["gates"] if g["id"] == "after-staging")
    assert gate["status"] == "fail"


def test_production_waits_for_a_quality_signature_then_allows(api, ci_token, production_promotion, artifact, cast):
    from alerts.models import Alert

    assert production_promotion.state == "awaiting_approval"
    alert = Alert.objects.get(event_kind="approval_requested", body__promotion=production_promotion.human_id)
    assert alert.body["environment"] == "production"
    body = status_of(api, ci_token, artifact.digest).json()
    assert body["decision"] == "pending"
    assert body["approvals"]["required"] == ["quality"]
    assert body["approvals"]["missing"] == ["quality"]
    assert body["promotion"] == production_promotion.human_id
    assert body["policy"]["version"] == 2 and body["policy"]["digest"].startswith("sha256:")
    assert any("quality reviewer" in reason for reason in body["reasons"])

    response = api(cast["quinn"]).post(
        f"/api/v1/promotions/{production_promotion.human_id}/signatures",
        {
            "meaning": "approved",
            "comment": "evidence reviewed",
            "username": "quinn",
            "password": PASSWORD,
            "content_sha256": promotion_sha256(production_promotion),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["promotion"]["state"] == "approved"
    assert response.json()["expires_at"] is not None

    body = status_of(api, ci_token, artifact.digest).json()
    assert body["decision"] == "allowed", body["reasons"]
    assert body["approvals"]["signed"] == ["quality"]
    assert body["reasons"] == []


def test_the_schema_documents_exactly_the_status_object_the_gate_answers(api, ci_token, production_promotion, cast):
    """The OpenAPI serializers only describe the status answer (never built through them): they must not drift."""
    from approvals import api as approvals_api

    def fields(serializer_class) -> set[str]:
        return set(serializer_class().fields)

    sign(production_promotion, cast["quinn"])
    digest = production_promotion.release.artifacts.get().digest
    body = status_of(api, ci_token, digest).json()
    assert set(body) == fields(approvals_api.StatusOutput)
    assert set(body["policy"]) == fields(approvals_api.StatusPolicyOutput)
    assert body["gates"] and all(set(gate) == fields(approvals_api.StatusGateOutput) for gate in body["gates"])
    assert set(body["approvals"]) == fields(approvals_api.StatusApprovalsOutput)
    [signer] = body["approvals"]["signers"]
    assert set(signer) == fields(approvals_api.StatusSignerOutput)


def test_new_blocking_evidence_after_approval_turns_the_answer_to_blocked(
    api, ci_token, production_promotion, artifact, cast
):
    sign(production_promotion, cast["quinn"])
    assert status_of(api, ci_token, artifact.digest).json()["decision"] == "allowed"
    add_tests(artifact, passed=5, failed=2)  # a new report with failures: the cached "allowed" must not survive
    body = status_of(api, ci_token, artifact.digest).json()
    assert body["decision"] == "blocked"
    assert any(r.startswith("gate tests fail") and "2 test(s) failed" in r for r in body["reasons"])


def test_rejection_with_a_reason_ends_the_promotion(api, production_promotion, artifact, ci_token, cast):
    client = api(cast["quinn"])
    url = f"/api/v1/promotions/{production_promotion.human_id}/signatures"
    seen = client.get(f"/api/v1/promotions/{production_promotion.human_id}").json()["content_sha256"]
    response = client.post(
        url,
        {"meaning": "rejected", "comment": "", "username": "quinn", "password": PASSWORD, "content_sha256": seen},
        format="json",
    )
    assert response.status_code == 400
    response = client.post(
        url,
        {
            "meaning": "rejected",
            "comment": "coverage dropped in the scoring module",
            "username": "quinn",
            "password": PASSWORD,
            "content_sha256": seen,
        },
        format="json",
    )
    assert response.status_code == 201
    production_promotion.refresh_from_db()
    assert production_promotion.state == "rejected"
    body = status_of(api, ci_token, artifact.digest).json()
    assert body["decision"] == "blocked"
    assert "coverage dropped" in body["reasons"][0]
    again = api(cast["sasha"]).post(
        url, {"meaning": "approved", "username": "sasha", "password": PASSWORD, "content_sha256": seen}, format="json"
    )
    assert again.status_code in (403, 409)


def test_signing_a_rejected_promotion_is_409_naming_the_state(api, production_promotion, cast):
    sign(production_promotion, cast["quinn"], meaning="rejected", comment="not yet")
    production_promotion.refresh_from_db()
    from changecontrol import roles
    from changecontrol.models import Role

    roles.role_grant(actor=None, user=cast["sasha"], product=production_promotion.release.product, role=Role.QUALITY)
    response = api(cast["sasha"]).post(
        f"/api/v1/promotions/{production_promotion.human_id}/signatures",
        {
            "meaning": "approved",
            "username": "sasha",
            "password": PASSWORD,
            "content_sha256": promotion_sha256(production_promotion),
        },
        format="json",
    )
    assert response.status_code == 409
    assert "rejected" in response.json()["detail"]


def test_wrong_password_signs_nothing(api, production_promotion, cast):
    response = api(cast["quinn"]).post(
        f"/api/v1/promotions/{production_promotion.human_id}/signatures",
        {
            "meaning": "approved",
            "username": "quinn",
            "password": "wrong",
            "content_sha256": promotion_sha256(production_promotion),
        },
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["error"] == "reauthentication_failed"
    assert not services.selectors.promotion_signatures(production_promotion).exists()


def test_second_open_promotion_of_the_same_release_is_a_conflict(api, ci_token, production_promotion):
    response = api(token=ci_token).post(
        "/api/v1/releases/rsd/7.2.4/promotions", {"environment": "production"}, format="json"
    )
    assert response.status_code == 409
    assert production_promotion.human_id in response.json()["detail"]


def test_unknown_environment_is_refused(api, ci_token, release):
    response = api(token=ci_token).post("/api/v1/releases/rsd/7.2.4/promotions", {"environment": "moon"}, format="json")
    assert response.status_code == 400
    assert "moon" in response.json()["detail"]


def test_status_for_a_digest_without_promotion_is_blocked_with_a_reason(api, ci_token, artifact):
    body = status_of(api, ci_token, artifact.digest).json()
    assert body["decision"] == "blocked"
    assert body["promotion"] is None
    assert "no promotion" in body["reasons"][0]


def test_status_rejects_a_malformed_digest(api, ci_token, artifact):
    response = status_of(api, ci_token, "sha256:xyz")
    assert response.status_code == 400


def test_status_needs_the_status_read_scope(api, product, admin_user, artifact):
    from changecontrol.api_auth import token_create
    from tests.conftest import make_user

    account = make_user("ci-write-only", "CI write only", is_service_account=True)
    _, secret = token_create(actor=admin_user, name="w", user=account, products=[product], scopes=["evidence:write"])
    response = status_of(api, secret, artifact.digest)
    assert response.status_code == 403
    assert "status:read" in response.json()["detail"]


def test_decisions_are_stored_by_the_input_that_changes_the_answer_never_by_a_read(
    api, ci_token, production_promotion, artifact, cast
):
    production = Decision.objects.filter(artifact=artifact, environment__key="production").order_by("id")
    # Requesting the promotion decided it: pending, stored then.
    assert list(production.values_list("decision", flat=True)) == ["pending"]
    for _ in range(3):
        assert status_of(api, ci_token, artifact.digest).json()["decision"] == "pending"
    assert production.count() == 1  # a status read stores nothing
    sign(production_promotion, cast["quinn"])  # the signature that completes it stores the new answer
    assert list(production.values_list("decision", flat=True)) == ["pending", "allowed"]
    assert status_of(api, ci_token, artifact.digest).json()["decision"] == "allowed"
    assert production.count() == 2
    history = (
        api(token=ci_token)
        .get("/api/v1/status/history", {"artifact": artifact.digest, "environment": "production"})
        .json()
    )
    assert [h["decision"] for h in history] == ["allowed", "pending"]


def test_promotion_detail_shows_gates_blocking_first_and_signatures(api, cast, production_promotion):
    sign(production_promotion, cast["quinn"], comment="ok")
    body = api(cast["audrey"]).get(f"/api/v1/promotions/{production_promotion.human_id}").json()
    assert body["state"] == "approved"
    assert body["signatures"][0]["printed_name"] == "Quinn Quality"
    assert "Quinn Quality — Approved as Quality reviewer" in body["signatures"][0]["manifestation"]
    blocking = [g["blocking"] for g in body["status"]["gates"]]
    assert blocking == sorted(blocking, reverse=True)


def test_pending_approvals_list_what_the_reviewer_can_sign(api, cast, production_promotion):
    mine = api(cast["quinn"]).get("/api/v1/approvals/pending").json()
    assert [p["id"] for p in mine] == [production_promotion.human_id]
    assert api(cast["sasha"]).get("/api/v1/approvals/pending").json() == []
    assert api(cast["rory"]).get("/api/v1/approvals/pending").json() == []


def test_marking_deployed_supersedes_older_open_promotions(
    cast, production_promotion, product, ci_account, change_request
):
    from tests.builders import add_full_evidence

    newer_artifact = make_artifact(make_build(product, registered_by=ci_account))
    add_full_evidence(newer_artifact)
    newer = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="7.2.5",
        artifact_digests=[newer_artifact.digest],
        change_request_ids=[change_request.human_id],
    )
    pass_through(newer, actor=cast["rory"])
    newer_production = services.promotion_request(release=newer, environment_key="production", actor=cast["rory"])
    sign(newer_production, cast["quinn"])
    newer_production.refresh_from_db()
    deployed = services.promotion_mark_deployed(promotion=newer_production, actor=cast["sam"])
    assert deployed.state == Promotion.State.DEPLOYED
    production_promotion.refresh_from_db()
    assert production_promotion.state == Promotion.State.SUPERSEDED
    from common.errors import InvalidState

    with pytest.raises(InvalidState, match="not approved"):
        services.promotion_mark_deployed(promotion=production_promotion, actor=cast["sam"])
