"""Deployments are facts: always recorded, judged by the status decision at that moment, alerted when unauthorised."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import IntegrityError, transaction

from alerts.models import Alert
from approvals.models import Decision, Promotion
from changecontrol import roles
from changecontrol.api_auth import token_create
from changecontrol.models import AuditEvent, Role
from runtime.models import Deployment, DriftFinding, EnvironmentSnapshot
from tests.conftest import answer_shape
from tests.runtime.helpers import approved_for_production, deploy, new_release

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


def test_another_products_digest_answers_as_a_digest_nobody_registered(api, other_product_token, artifact):
    foreign = deploy(api, other_product_token, artifact.digest)
    unknown = deploy(api, other_product_token, "sha256:" + "e" * 64)
    assert answer_shape(foreign) == answer_shape(unknown)
    assert '"product":"rsd"' not in foreign.content.decode() and artifact.build.human_id not in foreign.content.decode()
    # Recorded in lab as what it is there: a digest no build of lab registered.
    assert all(d.artifact_id is None for d in Deployment.objects.all())


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


# ---------------------------------------------------------------- who may record deployments and snapshots


@pytest.mark.parametrize("who", ["sam", "rory"])
def test_people_who_deploy_record_deployments(api, cast, artifact, who):
    response = api(cast[who]).post(
        "/api/v1/deployments", {"artifact": artifact.digest, "environment": "staging"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert Deployment.objects.get().deployer == cast[who]


@pytest.mark.parametrize("who", ["audrey", "alice", "quinn", "sasha", "paula"])
def test_everyone_else_who_sees_the_product_is_refused_naming_what_is_needed(api, cast, artifact, who):
    response = api(cast[who]).post(
        "/api/v1/deployments", {"artifact": artifact.digest, "environment": "staging"}, format="json"
    )
    assert response.status_code == 403, response.json()
    body = response.json()
    assert body["error"] == "forbidden"
    assert "sre or release_manager" in body["detail"] and "deployments:write" in body["detail"], body
    assert body["required_roles"] == ["sre", "release_manager"]
    assert not Deployment.objects.exists()
    assert not Alert.objects.exists()


def test_an_auditors_personal_token_changes_nothing_either(api, cast, product, artifact, admin_user):
    _, secret = token_create(
        actor=admin_user,
        name="audrey's",
        user=cast["audrey"],
        products=[product],
        scopes=["deployments:write", "snapshots:write"],
    )
    assert deploy(api, secret, artifact.digest).status_code == 403
    snapshot = api(token=secret).put(
        "/api/v1/products/rsd/environments/production/snapshot",
        {"artifacts": [{"name": "rsd-api", "digest": artifact.digest}]},
        format="json",
    )
    assert snapshot.status_code == 403 and "snapshots:write" in snapshot.json()["detail"]
    assert not Deployment.objects.exists() and not EnvironmentSnapshot.objects.exists()


def test_snapshots_are_reported_by_ci_and_people_who_deploy_only(api, cast, ci_token, artifact):
    running = {"artifacts": [{"name": "rsd-api", "digest": artifact.digest}]}
    path = "/api/v1/products/rsd/environments/production/snapshot"
    for who in ("audrey", "alice", "quinn"):
        refused = api(cast[who]).put(path, running, format="json")
        assert refused.status_code == 403, refused.json()
        assert "sre or release_manager" in refused.json()["detail"]
    assert not EnvironmentSnapshot.objects.exists() and not DriftFinding.objects.exists()
    assert api(cast["sam"]).put(path, running, format="json").status_code == 200
    assert api(token=ci_token).put(path, {"artifacts": []}, format="json").status_code == 200
    assert EnvironmentSnapshot.objects.count() == 2


def test_the_manual_deployment_page_shares_the_rule(cast, artifact):
    from django.test import Client

    def page(user):
        client = Client()
        client.force_login(user)
        return client

    form = {"artifact": artifact.digest, "environment": "staging", "kind": "normal"}
    # An auditor is not offered the page's products and cannot record through it.
    refused = page(cast["audrey"]).post("/deployments/new", form, follow=True).content.decode()
    assert "choose the product it was deployed in" in refused  # none of the auditor's products records it
    assert "Record a manual deployment" not in page(cast["audrey"]).get("/deployments/").content.decode()
    # An engineer may claim break-glass (and be refused by its rules), but not record a normal deployment.
    engineer = page(cast["alice"]).post("/deployments/new", form, follow=True).content.decode()
    assert "needs the role sre or release_manager" in engineer
    assert not Deployment.objects.exists()
    assert page(cast["sam"]).post("/deployments/new", form).status_code == 302
    assert Deployment.objects.get().deployer == cast["sam"]


# ---------------------------------------------------------------- a digest no build registered


UNREGISTERED = "sha256:" + "d" * 64


def test_a_digest_no_build_registered_is_recorded_unauthorised_as_unknown_provenance(api, ci_token, product):
    response = deploy(api, ci_token, UNREGISTERED.upper().replace("SHA256", "sha256"))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["authorised"] is False
    assert body["artifact"] == UNREGISTERED and body["artifact_name"] is None and body["release"] is None
    assert body["reasons"][0].startswith(f"{UNREGISTERED} was never registered by a build of rsd: unknown provenance")
    assert "register its build and artifact" in body["reasons"][0]
    assert body["decision"]["decision"] == "blocked" and body["decision"]["id"] is None
    deployment = Deployment.objects.get()
    assert (deployment.artifact, deployment.digest, deployment.product) == (None, UNREGISTERED, product)
    alert = Alert.objects.get(event_kind="unauthorised_deployment")
    assert body["id"] in alert.subject and "never registered" in alert.body["artifact"]
    event = AuditEvent.objects.get(action="deployment.recorded", object_human_id=body["id"])
    assert event.after["artifact"] == UNREGISTERED and event.after["registered"] is False
    # The detail walks back to nothing past the digest, and says so.
    walk = api(token=ci_token).get(f"/api/v1/deployments/{body['id']}").json()["walk_back"]
    assert walk["artifact"] == {"digest": UNREGISTERED, "name": None, "kind": None, "uri": None, "registered": False}
    assert walk["build"] is None and walk["release"] is None and walk["commits"] == []


@pytest.mark.parametrize("kind", ["rollback", "break_glass"])
def test_a_rollback_or_break_glass_of_an_unregistered_digest_is_never_authorised(api, cast, product, policy, kind):
    response = api(cast["sam"]).post(
        "/api/v1/deployments",
        {"artifact": UNREGISTERED, "environment": "production", "kind": kind, "justification": "Outage on ward 3."},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["authorised"] is False
    assert any("unknown provenance" in reason for reason in body["reasons"]), body["reasons"]
    if kind == "break_glass":
        assert body["review"]["state"] == "due"
        assert Alert.objects.filter(event_kind="break_glass").exists()
    else:
        assert Alert.objects.filter(event_kind="unauthorised_deployment").exists()


def test_a_person_with_several_products_names_the_product_of_an_unregistered_digest(
    api, cast, product, other_product, admin_user
):
    roles.role_grant(actor=admin_user, user=cast["sam"], product=other_product, role=Role.SRE)
    client = api(cast["sam"])
    body = {"artifact": UNREGISTERED, "environment": "production"}
    unnamed = client.post("/api/v1/deployments", body, format="json")
    assert unnamed.status_code == 400
    assert "`product`" in unnamed.json()["detail"] and "lab, rsd" in unnamed.json()["detail"]
    assert not Deployment.objects.exists()
    assert client.post("/api/v1/deployments", {**body, "product": "nope"}, format="json").status_code == 404
    named = client.post("/api/v1/deployments", {**body, "product": "lab"}, format="json")
    assert named.status_code == 201 and named.json()["product"] == "lab"


def test_a_digest_registered_elsewhere_stays_hidden_and_a_hidden_product_is_404(
    api, cast, artifact, other_product_token
):
    # Registered in rsd, which the lab token cannot see: in lab it is a digest no build of lab registered.
    recorded = deploy(api, other_product_token, artifact.digest).json()
    assert Deployment.objects.get(pk=int(recorded["id"].removeprefix("DEP-"))).artifact_id is None
    hidden = api(cast["sam"]).post(
        "/api/v1/deployments",
        {"artifact": artifact.digest, "environment": "production", "product": "lab"},
        format="json",
    )
    assert hidden.status_code == 404  # sam works on rsd only: lab is hidden, whatever the digest


def test_unregistered_deployments_show_in_the_log_csv_pages_and_the_dashboard(api, ci_token, cast, release):
    from django.test import Client

    approved_for_production(release, cast)
    registered = deploy(api, ci_token, release.artifacts.get().digest).json()["id"]
    stray = deploy(api, ci_token, UNREGISTERED).json()["id"]
    rows = list(csv.DictReader(io.StringIO(api(cast["audrey"]).get("/api/v1/deployments.csv").content.decode())))
    assert [(r["id"], r["artifact"], r["digest"], r["build"]) for r in rows][0] == (stray, "", UNREGISTERED, "")
    assert rows[1]["id"] == registered
    client = Client()
    client.force_login(cast["audrey"])
    log = client.get("/deployments/").content.decode()
    assert stray in log and registered in log and "never registered" in log
    detail = client.get(f"/deployments/{stray}").content.decode()
    assert "never registered by a build: unknown provenance" in detail
    assert stray in client.get("/").content.decode()  # the unauthorised deployments panel
    assert stray in client.get("/auditor/", {"q": UNREGISTERED[:20]}).content.decode()


def test_drift_and_the_population_report_count_an_unregistered_deployment(api, ci_token, cast, product):
    from django.utils import timezone

    from reports.population import population_report

    deploy(api, ci_token, UNREGISTERED)
    snapshot = api(token=ci_token).put(
        "/api/v1/products/rsd/environments/production/snapshot",
        {"artifacts": [{"name": "sidecar", "digest": UNREGISTERED}]},
        format="json",
    )
    assert [f["kind"] for f in snapshot.json()["findings"]["opened"]] == ["unknown_provenance"]
    today = timezone.now().date()
    report = population_report(user=cast["audrey"], start=today, end=today, product="rsd")
    assert report["completeness"]["complete"] is True, report["completeness"]
    (row,) = report["rows"]
    assert (row["artifact"], row["digest"]) == ("", UNREGISTERED)
    assert "unknown provenance" in row["exceptions"] and "unauthorised" in row["exceptions"]


def test_the_database_holds_the_digest_to_its_artifact(ci_account, product, artifact):
    production = product.environments.get(key="production")
    fields = {"product": product, "environment": production, "deployer": ci_account, "authorised": False}
    for wrong in (
        {"artifact": artifact, "digest": UNREGISTERED},  # not the artifact's digest
        {"artifact": None, "digest": "sha256:short"},  # not a sha256
        {"artifact": None, "digest": UNREGISTERED, "authorised": True},  # nothing vouches for it
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Deployment.objects.create(**{**fields, **wrong})
    Deployment.objects.create(**fields, artifact=artifact, digest=artifact.digest)
    Deployment.objects.create(**fields, artifact=None, digest=UNREGISTERED)
    assert Deployment.objects.count() == 2
