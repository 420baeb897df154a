"""Another product's token and people without a role see nothing of rsd's releases: 404 everywhere."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_outsider_token_gets_404_on_every_endpoint(api, other_product_token, production_promotion, artifact):
    client = api(token=other_product_token)
    prm = production_promotion.human_id
    assert client.get("/api/v1/status", {"artifact": artifact.digest, "environment": "production"}).status_code == 404
    assert (
        client.get("/api/v1/status/history", {"artifact": artifact.digest, "environment": "production"}).status_code
        == 404
    )
    assert client.get("/api/v1/releases/rsd/7.2.4").status_code == 404
    assert client.get("/api/v1/products/rsd/releases").status_code == 404
    assert (
        client.post(
            "/api/v1/products/rsd/releases", {"version": "1", "artifacts": [artifact.digest]}, format="json"
        ).status_code
        == 404
    )
    assert (
        client.post("/api/v1/releases/rsd/7.2.4/promotions", {"environment": "production"}, format="json").status_code
        == 404
    )
    assert client.get(f"/api/v1/promotions/{prm}").status_code == 404
    assert client.get("/api/v1/releases/rsd/7.2.4/test-failures").status_code == 404
    assert (
        client.post(
            "/api/v1/releases/rsd/7.2.4/accepted-failures",
            {"name": "t", "justification": "j", "username": "x", "password": "y", "content_sha256": "0" * 64},
            format="json",
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/api/v1/promotions/{prm}/signatures",
            {"meaning": "approved", "username": "x", "password": "y"},
            format="json",
        ).status_code
        == 404
    )


def test_other_product_cannot_put_rsd_digests_in_its_release(api, other_product_token, artifact):
    response = api(token=other_product_token).post(
        "/api/v1/products/lab/releases", {"version": "1.0", "artifacts": [artifact.digest]}, format="json"
    )
    assert response.status_code == 400
    assert artifact.digest in response.json()["detail"]


def test_outsider_person_gets_404(api, cast, production_promotion, artifact):
    client = api(cast["olga"])
    assert client.get(f"/api/v1/promotions/{production_promotion.human_id}").status_code == 404
    assert client.get("/api/v1/releases/rsd/7.2.4").status_code == 404
    assert client.get("/api/v1/status", {"artifact": artifact.digest, "environment": "production"}).status_code == 404
    assert client.get("/api/v1/approvals/pending").json() == []


def test_unknown_promotion_ids_are_404(api, cast, production_promotion):
    client = api(cast["quinn"])
    assert client.get("/api/v1/promotions/PRM-999999").status_code == 404
    assert client.get("/api/v1/promotions/not-an-id").status_code == 404
    assert (
        client.post(
            "/api/v1/promotions/PRM-999999/signatures",
            {"meaning": "approved", "username": "quinn", "password": PASSWORD},
            format="json",
        ).status_code
        == 404
    )


def test_anonymous_callers_are_refused(api, artifact):
    response = api().get("/api/v1/status", {"artifact": artifact.digest, "environment": "production"})
    assert response.status_code in (401, 403)
