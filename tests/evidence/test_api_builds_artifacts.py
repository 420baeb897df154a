"""Registering builds and artifacts through the API (DESIGN §7): idempotent, scoped, audited."""

from __future__ import annotations

import pytest

from changecontrol.models import AuditEvent
from evidence.models import Artifact, Build
from tests.evidence.conftest import COMMITS, DIGEST, OTHER_DIGEST

pytestmark = pytest.mark.django_db

BUILD = {
    "commit": "c" * 40,
    "branch": "main",
    "pipeline_url": "https://github.com/acme/rsd/actions/runs/77",
    "ci_system": "github-actions",
    "build_number": "77",
    "builder_identity": "https://github.com/acme/rsd/.github/workflows/release.yml@refs/heads/main",
    "started_at": "2025-01-02T10:00:00Z",
    "finished_at": "2025-01-02T10:07:00Z",
    "commits": COMMITS,
}


def test_ci_registers_a_build_with_its_commits(api, ci_token, product):
    response = api(token=ci_token).post("/api/v1/products/rsd/builds", BUILD, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"] == "rsd-b1"
    assert body["commit"] == "c" * 40
    assert body["build_number"] == "77"
    assert [c["message"] for c in body["commits"]] == ["CR-1: raise amber threshold (REQ-017)", "REQ-018 add audit log"]
    build = Build.objects.get()
    assert build.commits.first().author_email == "alice@example.test"
    assert build.started_at.isoformat() == "2025-01-02T10:00:00+00:00"
    event = AuditEvent.objects.get(action="build.registered")
    assert event.object_human_id == "rsd-b1" and event.via_token.startswith("ci (")


def test_a_commit_author_as_git_recorded_it_is_kept_even_when_it_is_no_internet_address(api, ci_token, product):
    commits = [{"sha": "d" * 40, "author_email": "root@buildbox", "author_name": "root", "message": "hotfix"}]
    response = api(token=ci_token).post("/api/v1/products/rsd/builds", {**BUILD, "commits": commits}, format="json")
    assert response.status_code == 201, response.json()
    assert Build.objects.get().commits.get().author_email == "root@buildbox"


def test_registering_the_same_pipeline_url_again_returns_the_same_build(api, ci_token, product):
    first = api(token=ci_token).post("/api/v1/products/rsd/builds", BUILD, format="json")
    second = api(token=ci_token).post("/api/v1/products/rsd/builds", BUILD, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert Build.objects.count() == 1
    other = api(token=ci_token).post(
        "/api/v1/products/rsd/builds", {**BUILD, "pipeline_url": BUILD["pipeline_url"] + "1"}, format="json"
    )
    assert other.json()["id"] == "rsd-b2"


def test_the_same_pipeline_url_with_another_commit_is_409_naming_the_build(api, ci_token, product):
    client = api(token=ci_token)
    assert client.post("/api/v1/products/rsd/builds", BUILD, format="json").status_code == 201
    short = client.post("/api/v1/products/rsd/builds", {**BUILD, "commit": "c" * 7}, format="json")
    assert short.status_code == 200 and short.json()["id"] == "rsd-b1"  # the same commit, abbreviated
    other = client.post("/api/v1/products/rsd/builds", {**BUILD, "commit": "e" * 40}, format="json")
    assert other.status_code == 409
    body = other.json()
    assert body["error"] == "conflict" and body["build"] == "rsd-b1"
    assert "already build rsd-b1 of commit " + "c" * 40 in body["detail"]
    assert Build.objects.count() == 1


def test_a_build_with_a_bad_commit_is_400_naming_the_field(api, ci_token, product):
    response = api(token=ci_token).post("/api/v1/products/rsd/builds", {**BUILD, "commit": "not a sha"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_input" and "commit" in response.json()["fields"]


def test_another_products_token_gets_404_for_builds_and_artifacts(api, other_product_token, product, build):
    client = api(token=other_product_token)
    assert client.post("/api/v1/products/rsd/builds", BUILD, format="json").status_code == 404
    response = client.post(
        "/api/v1/products/rsd/artifacts", {"name": "x", "digest": DIGEST, "build": "rsd-b1"}, format="json"
    )
    assert response.status_code == 404
    assert client.get("/api/v1/builds/rsd-b1").status_code == 404
    assert Artifact.objects.count() == 0


def test_outsider_and_anonymous_cannot_register(api, outsider, product):
    assert api(outsider).post("/api/v1/products/rsd/builds", BUILD, format="json").status_code == 404
    assert api().post("/api/v1/products/rsd/builds", BUILD, format="json").status_code == 401


def test_auditor_sees_builds_but_cannot_register_one(api, auditor, build):
    assert api(auditor).get("/api/v1/builds/rsd-b1").status_code == 200
    response = api(auditor).post("/api/v1/products/rsd/builds", BUILD, format="json")
    assert response.status_code == 403
    assert "roles" in response.json()["detail"]


def test_a_token_without_the_evidence_scope_is_403(api, product, ci_account, admin_user):
    from changecontrol.api_auth import token_create

    _, secret = token_create(
        actor=admin_user, name="status-only", user=ci_account, products=[product], scopes=["status:read"]
    )
    response = api(token=secret).post("/api/v1/products/rsd/builds", BUILD, format="json")
    assert response.status_code == 403
    assert "evidence:write" in response.json()["detail"]


def test_ci_registers_an_artifact_idempotently_on_its_digest(api, ci_token, build):
    payload = {
        "name": "scoring-service",
        "digest": DIGEST,
        "build": "rsd-b1",
        "kind": "container-image",
        "uri": "ghcr.io/acme/rsd",
    }
    first = api(token=ci_token).post("/api/v1/products/rsd/artifacts", payload, format="json")
    second = api(token=ci_token).post("/api/v1/products/rsd/artifacts", payload, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["digest"] == DIGEST and first.json()["build"] == "rsd-b1"
    assert Artifact.objects.count() == 1
    assert AuditEvent.objects.filter(action="artifact.registered").count() == 1


def test_the_same_digest_under_another_build_is_409(api, ci_token, artifact):
    api(token=ci_token).post(
        "/api/v1/products/rsd/builds", {**BUILD, "pipeline_url": "https://ci.example/2"}, format="json"
    )
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/artifacts",
        {"name": "scoring-service", "digest": DIGEST, "build": "rsd-b2"},
        format="json",
    )
    assert response.status_code == 409
    assert "rsd-b1" in response.json()["detail"]


def test_a_malformed_digest_is_400(api, ci_token, build):
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/artifacts", {"name": "x", "digest": "sha256:XYZ", "build": "rsd-b1"}, format="json"
    )
    assert response.status_code == 400
    assert "sha256:<64 lowercase hex>" in response.json()["detail"]


def test_an_artifact_of_an_unknown_build_is_404(api, ci_token, product):
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/artifacts", {"name": "x", "digest": OTHER_DIGEST, "build": "rsd-b99"}, format="json"
    )
    assert response.status_code == 404
