"""Deployments are facts: always recorded, judged by the status decision at that moment, alerted when unauthorised."""

from __future__ import annotations

import csv
import io

import pytest

from alerts.models import Alert
from approvals.models import Decision, Deployment, Promotion
from changecontrol.api_auth import token_create
from changecontrol.models import AuditEvent
from tests.approvals.runtime_helpers import approved_for_production, deploy, new_release

pytestmark = pytest.mark.django_db


def test_approved_artifact_deploys_authorised_with_the_decision_it_had(api, ci_token, release, cast):
    promotion = approved_for_production(release, cast)
    digest = release.artifacts.get().digest
    response = deploy(api, ci_token, digest)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("DEP-")
    assert body["authorised"] is True
    assert body["reasons"] == []
    assert body["decision"]["decision"] == "allowed"
    assert body["decision"]["promotion"] == promotion.human_id
    deployment = Deployment.objects.get(pk=int(body["id"][4:]))
    assert deployment.deployer.username == "ci-rsd"
    assert deployment.release == release
    assert deployment.decision == Decision.objects.filter(artifact=deployment.artifact).order_by("-id").first()
    assert deployment.decision.decision == "allowed"
    promotion.refresh_from_db()
    assert promotion.state == Promotion.State.DEPLOYED
    assert AuditEvent.objects.filter(action="deployment.recorded", object_human_id=body["id"]).exists()
    assert not Alert.objects.filter(event_kind="unauthorised_deployment").exists()


def test_unapproved_deployment_is_recorded_flagged_and_alerted(api, ci_token, artifact):
    response = deploy(api, ci_token, artifact.digest)
    assert response.status_code == 201
    body = response.json()
    assert body["authorised"] is False
    assert body["decision"]["decision"] == "blocked"
    assert "not allowed" in body["reasons"][0]
    alert = Alert.objects.get(event_kind="unauthorised_deployment")
    assert alert.product.key == "rsd"
    assert body["id"] in alert.subject
    assert alert.body["deployment"] == body["id"]


def test_pending_production_deployment_is_unauthorised(api, ci_token, production_promotion):
    digest = production_promotion.release.artifacts.get().digest
    body = deploy(api, ci_token, digest).json()
    assert body["authorised"] is False
    assert body["decision"]["decision"] == "pending"


def test_rollback_to_a_release_approved_before_is_authorised(
    api, ci_token, product, release, cast, ci_account, change_request
):
    approved_for_production(release, cast)
    old_digest = release.artifacts.get().digest
    assert deploy(api, ci_token, old_digest).json()["authorised"] is True
    newer, newer_artifact = new_release(product, cast, ci_account, "7.2.5", change_request)
    approved_for_production(newer, cast)
    assert deploy(api, ci_token, newer_artifact.digest).json()["authorised"] is True
    body = deploy(api, ci_token, old_digest, kind="rollback").json()
    assert body["kind"] == "rollback"
    assert body["authorised"] is True
    assert body["release"] == "7.2.4"
    assert "approved before" in body["reasons"][0]
    assert not Alert.objects.filter(event_kind="unauthorised_deployment").exists()


def test_rollback_to_an_unapproved_release_is_flagged_and_alerted(
    api, ci_token, product, release, cast, ci_account, change_request
):
    approved_for_production(release, cast)
    never, never_artifact = new_release(product, cast, ci_account, "7.2.6", change_request)
    body = deploy(api, ci_token, never_artifact.digest, kind="rollback").json()
    assert body["authorised"] is False
    assert "no release approved for production before" in body["reasons"][0]
    assert Alert.objects.filter(event_kind="unauthorised_deployment", subject__contains=body["id"]).exists()


def test_another_products_token_gets_404(api, other_product_token, artifact):
    response = deploy(api, other_product_token, artifact.digest)
    assert response.status_code == 404
    assert not Deployment.objects.exists()


def test_outsider_gets_404_on_every_deployment_endpoint(api, ci_token, artifact, outsider):
    dep = deploy(api, ci_token, artifact.digest).json()["id"]
    client = api(outsider)
    assert (
        client.post(
            "/api/v1/deployments", {"artifact": artifact.digest, "environment": "production"}, format="json"
        ).status_code
        == 404
    )
    assert client.get(f"/api/v1/deployments/{dep}").status_code == 404
    assert (
        client.post(
            f"/api/v1/deployments/{dep}/review", {"username": "olga", "password": "x", "findings": "x"}, format="json"
        ).status_code
        == 404
    )
    assert client.get("/api/v1/deployments").json() == []
    assert client.get("/api/v1/deployments.csv").content.decode().strip().count("\n") == 0
    assert (
        client.put(
            "/api/v1/products/rsd/environments/production/snapshot", {"artifacts": []}, format="json"
        ).status_code
        == 404
    )


def test_bad_input_is_refused_naming_the_problem(api, ci_token, artifact):
    assert deploy(api, ci_token, "sha256:nothex").status_code == 400
    response = deploy(api, ci_token, artifact.digest, environment="moon")
    assert response.status_code == 404
    assert "moon" in response.json()["detail"] and "production" in response.json()["detail"]
    assert deploy(api, ci_token, artifact.digest, kind="sideways").status_code == 400
    assert api(token=ci_token).get("/api/v1/deployments", {"kind": "sideways"}).status_code == 400
    assert api(token=ci_token).get("/api/v1/deployments", {"since": "yesterday"}).status_code == 400
    assert not Deployment.objects.exists()


def test_token_without_deployments_scope_is_forbidden(api, product, artifact, ci_account, admin_user):
    _, secret = token_create(
        actor=admin_user, name="status-only", user=ci_account, products=[product], scopes=["status:read"]
    )
    response = deploy(api, secret, artifact.digest)
    assert response.status_code == 403
    assert "deployments:write" in response.json()["detail"]


def test_deployment_log_filters_and_csv(api, ci_token, release, cast, artifact):
    approved_for_production(release, cast)
    good = deploy(api, ci_token, artifact.digest).json()["id"]
    bad = deploy(api, ci_token, artifact.digest, environment="integration", kind="rollback").json()
    client = api(cast["audrey"])
    everything = client.get("/api/v1/deployments", {"product": "rsd"}).json()
    assert [d["id"] for d in everything] == [bad["id"], good]
    only_production = client.get("/api/v1/deployments", {"environment": "production", "authorised": "true"}).json()
    assert [d["id"] for d in only_production] == [good]
    assert [d["id"] for d in client.get("/api/v1/deployments", {"kind": "rollback"}).json()] == [bad["id"]]
    assert client.get("/api/v1/deployments", {"until": "2000-01-01"}).json() == []
    for path, params in (("/api/v1/deployments.csv", {}), ("/api/v1/deployments", {"format": "csv"})):
        response = client.get(path, {"environment": "production", **params})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert [r["id"] for r in rows] == [good]
        assert rows[0]["digest"] == artifact.digest
        assert rows[0]["release"] == "7.2.4"
        assert rows[0]["authorised"] == "true"


def test_deployment_detail_walks_back_to_commits_changes_approvals_and_gates(
    api, ci_token, release, cast, change_request
):
    approved_for_production(release, cast)
    digest = release.artifacts.get().digest
    dep = deploy(api, ci_token, digest).json()["id"]
    body = api(cast["audrey"]).get(f"/api/v1/deployments/{dep}").json()
    walk = body["walk_back"]
    assert walk["artifact"]["digest"] == digest
    assert walk["build"]["id"] == release.artifacts.get().build.human_id
    assert walk["commits"][0]["author_email"] == "alice@example.test"
    assert "CR-1" in walk["commits"][0]["references"]
    assert change_request.human_id in [cr["id"] for cr in walk["change_requests"]]
    assert "REQ-017" in walk["requirements"]  # named in the change request's affected items
    assert [p["environment"] for p in walk["promotions"]] == ["integration", "staging", "production"]
    assert [(a["signer"], a["meaning"]) for a in walk["approvals"]] == [("quinn", "approved")]
    assert {g["id"] for g in walk["gates"]} >= {"signed", "tests"}
    assert walk["decision"]["decision"] == "allowed"
