"""Environment snapshots: a new snapshot only when the set changes; drift findings open, alert and resolve."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert
from changecontrol.models import AuditEvent, Environment
from runtime import drift
from runtime.models import DriftFinding, EnvironmentSnapshot
from tests.runtime.helpers import approved_for_production, deploy

pytestmark = pytest.mark.django_db

UNKNOWN = "sha256:" + "e" * 64
PATH = "/api/v1/products/rsd/environments/production/snapshot"


def report(api, token, *items):
    return api(token=token).put(PATH, {"artifacts": [{"name": n, "digest": d} for n, d in items]}, format="json")


def kinds(findings):
    return sorted((f["kind"], f["digest"]) for f in findings)


def test_running_exactly_what_was_approved_is_no_drift(api, ci_token, release, cast):
    approved_for_production(release, cast)
    artifact = release.artifacts.get()
    deploy(api, ci_token, artifact.digest)
    response = report(api, ci_token, ("rsd-api", artifact.digest))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["changed"] is True
    assert body["snapshot"]["id"].startswith("SNAP-")
    assert body["findings"] == {"opened": [], "resolved": [], "open": []}
    assert not Alert.objects.filter(event_kind="drift").exists()


def test_same_set_again_makes_no_new_snapshot(api, ci_token, release, cast):
    approved_for_production(release, cast)
    artifact = release.artifacts.get()
    first = report(api, ci_token, ("rsd-api", artifact.digest)).json()
    again = report(api, ci_token, ("rsd-api", artifact.digest), ("rsd-api", artifact.digest)).json()
    assert again["changed"] is False
    assert again["snapshot"]["id"] == first["snapshot"]["id"]
    assert EnvironmentSnapshot.objects.count() == 1
    assert AuditEvent.objects.filter(action="snapshot.recorded").count() == 1


def test_unapproved_unknown_and_missing_are_found_alerted_and_audited(api, ci_token, release, cast, artifact):
    # 7.2.4's artifact was deployed authorised, then something else replaced it.
    approved_for_production(release, cast)
    deploy(api, ci_token, artifact.digest)
    from tests.builders import make_artifact, make_build

    stray = make_artifact(make_build(release.product, registered_by=cast["rory"]), name="rsd-worker")
    body = report(api, ci_token, ("rsd-worker", stray.digest), ("mystery", UNKNOWN)).json()
    assert kinds(body["findings"]["opened"]) == sorted(
        [("missing", artifact.digest), ("unapproved", stray.digest), ("unknown_provenance", UNKNOWN)]
    )
    assert kinds(body["findings"]["open"]) == kinds(body["findings"]["opened"])
    alert = Alert.objects.get(event_kind="drift")
    assert alert.body["missing"] == 1 and alert.body["unapproved"] == 1 and alert.body["unknown_provenance"] == 1
    assert AuditEvent.objects.filter(action="drift.opened").count() == 3


def test_findings_stay_open_once_and_resolve_when_a_later_snapshot_fixes_them(api, ci_token, release, cast, artifact):
    approved_for_production(release, cast)
    deploy(api, ci_token, artifact.digest)
    report(api, ci_token, ("mystery", UNKNOWN))
    again = report(api, ci_token, ("mystery", UNKNOWN), ("other", "sha256:" + "f" * 64)).json()
    assert [f["kind"] for f in again["findings"]["opened"]] == ["unknown_provenance"]
    assert len(again["findings"]["open"]) == 3
    assert DriftFinding.objects.filter(state="open", digest=UNKNOWN).count() == 1
    fixed = report(api, ci_token, ("rsd-api", artifact.digest)).json()
    assert fixed["findings"]["opened"] == []
    assert kinds(fixed["findings"]["resolved"]) == sorted(
        [("missing", artifact.digest), ("unknown_provenance", UNKNOWN), ("unknown_provenance", "sha256:" + "f" * 64)]
    )
    assert fixed["findings"]["open"] == []
    resolved = DriftFinding.objects.get(kind="missing")
    assert resolved.state == "resolved" and resolved.resolved_by.human_id == fixed["snapshot"]["id"]
    assert AuditEvent.objects.filter(action="drift.resolved").count() == 3
    assert Alert.objects.filter(event_kind="drift").count() == 2  # one per report that opened findings


def test_approval_after_the_snapshot_resolves_unapproved_on_the_next_report(api, ci_token, release, cast, artifact):
    first = report(api, ci_token, ("rsd-api", artifact.digest)).json()
    assert kinds(first["findings"]["opened"]) == [("unapproved", artifact.digest)]
    approved_for_production(release, cast)
    second = report(api, ci_token, ("rsd-api", artifact.digest)).json()
    assert second["changed"] is False
    assert kinds(second["findings"]["resolved"]) == [("unapproved", artifact.digest)]


def test_drift_is_computed_in_one_statement_whatever_the_size(product, release, cast):
    environment = Environment.objects.get(product=product, key="production")
    running = [{"digest": "sha256:" + f"{i:064x}", "name": f"svc-{i}"} for i in range(300)]
    with CaptureQueriesContext(connection) as queries:
        found = drift.drift_compute(environment=environment, running=running)
    assert len(queries) == 1
    assert len(found) == 300 and {k for k, _, _ in found} == {"unknown_provenance"}


def test_bad_snapshot_input_is_400_naming_each_problem(api, ci_token):
    response = report(api, ci_token, ("a", "sha256:short"), ("b", "md5:" + "0" * 32))
    assert response.status_code == 400
    assert "artifacts[0]" in response.json()["detail"] and "artifacts[1]" in response.json()["detail"]
    assert api(token=ci_token).put(PATH, {"artifacts": "nope"}, format="json").status_code == 400
    assert not EnvironmentSnapshot.objects.exists()


def test_unknown_environment_is_404_and_other_products_token_is_404(api, ci_token, other_product_token):
    response = api(token=ci_token).put(
        "/api/v1/products/rsd/environments/moon/snapshot", {"artifacts": []}, format="json"
    )
    assert response.status_code == 404 and "moon" in response.json()["detail"]
    assert report(api, other_product_token, ("x", UNKNOWN)).status_code == 404
    assert not EnvironmentSnapshot.objects.exists()


def test_token_without_snapshot_scope_is_forbidden(api, product, ci_account, admin_user):
    from changecontrol.api_auth import token_create

    _, secret = token_create(actor=admin_user, name="ro", user=ci_account, products=[product], scopes=["status:read"])
    response = report(api, secret, ("x", UNKNOWN))
    assert response.status_code == 403 and "snapshots:write" in response.json()["detail"]
