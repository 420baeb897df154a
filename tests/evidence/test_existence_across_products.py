"""What another product owns answers exactly as what does not exist: the same status, body shape and no foreign ids."""

from __future__ import annotations

import pytest

from changecontrol import roles
from changecontrol.models import Role
from evidence.models import Artifact
from tests.conftest import answer_shape
from tests.evidence.conftest import DIGEST

pytestmark = pytest.mark.django_db

UNKNOWN = "sha256:" + "e" * 64


@pytest.fixture
def lab_build(api, other_product_token, other_product):
    body = {"commit": "f" * 40, "pipeline_url": "https://ci.example/acme/lab/runs/1"}
    response = api(token=other_product_token).post("/api/v1/products/lab/builds", body, format="json")
    assert response.status_code == 201
    return response.json()["id"]


def register(api, token, product_key, build_id, digest):
    body = {"name": "gateway", "digest": digest, "build": build_id, "kind": "container-image"}
    return api(token=token).post(f"/api/v1/products/{product_key}/artifacts", body, format="json")


def test_registering_another_products_digest_answers_as_an_unknown_digest(
    api, other_product_token, lab_build, artifact, ci_token
):
    foreign = register(api, other_product_token, "lab", lab_build, DIGEST)  # rsd registered it
    unknown = register(api, other_product_token, "lab", lab_build, UNKNOWN)
    assert foreign.status_code == unknown.status_code == 201
    assert answer_shape(foreign) == answer_shape(unknown)
    assert artifact.build.human_id not in foreign.content.decode()
    # lab holds its own record of those bytes; rsd's is untouched.
    assert sorted(Artifact.objects.filter(digest=DIGEST).values_list("product__key", flat=True)) == ["lab", "rsd"]
    assert Artifact.objects.get(product__key="rsd", digest=DIGEST).build == artifact.build


def test_reading_or_uploading_to_another_products_digest_answers_as_an_unknown_digest(
    api, other_product_token, artifact
):
    client = api(token=other_product_token)
    for method, path in (("get", "/api/v1/artifacts/{}"), ("post", "/api/v1/artifacts/{}/evidence")):
        foreign = getattr(client, method)(path.format(DIGEST))
        unknown = getattr(client, method)(path.format(UNKNOWN))
        assert foreign.status_code == 404
        assert answer_shape(foreign) == answer_shape(unknown)
    status = "/api/v1/status?artifact={}&environment=production"
    assert answer_shape(client.get(status.format(DIGEST))) == answer_shape(client.get(status.format(UNKNOWN)))


def test_someone_who_sees_both_products_names_the_one_they_mean(
    api, other_product_token, lab_build, artifact, admin_user, cast
):
    assert register(api, other_product_token, "lab", lab_build, DIGEST).status_code == 201
    sam = cast["sam"]
    roles.role_grant(
        actor=admin_user, user=sam, product=Artifact.objects.get(product__key="lab").product, role=Role.SRE
    )
    client = api(sam)
    ambiguous = client.get(f"/api/v1/artifacts/{DIGEST}")
    assert ambiguous.status_code == 400 and "lab, rsd" in ambiguous.json()["detail"]
    assert client.get(f"/api/v1/artifacts/{DIGEST}?product=lab").json()["build"] == lab_build
    assert client.get(f"/api/v1/artifacts/{DIGEST}?product=rsd").json()["build"] == artifact.build.human_id
    status = f"/api/v1/status?artifact={DIGEST}&environment=production"
    assert client.get(status).status_code == 400
    assert client.get(status + "&product=rsd").json()["product"] == "rsd"
    page = api(sam).get(f"/artifacts/{DIGEST}?product=lab")
    assert page.status_code == 200 and lab_build in page.content.decode()
