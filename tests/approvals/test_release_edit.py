"""Editing a release before it is frozen: PATCH /api/v1/releases/{product}/{version} and the release page."""

from __future__ import annotations

import pytest

from approvals.models import Release
from changecontrol.api_auth import token_create
from changecontrol.models import AuditEvent
from tests.builders import add_full_evidence, make_artifact, make_build, pass_through
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/releases/rsd/7.2.4"


@pytest.fixture
def second_artifact(product, ci_account, policy):
    artifact = make_artifact(make_build(product, registered_by=ci_account), name="rsd-worker")
    add_full_evidence(artifact)
    return artifact


def test_a_release_manager_edits_a_release_before_it_is_frozen_and_it_is_audited(
    api, cast, release, artifact, second_artifact, change_request
):
    response = api(cast["rory"]).patch(
        URL, {"artifacts": [artifact.digest, second_artifact.digest], "change_requests": []}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body == api(cast["audrey"]).get(URL).json()  # answered as GET shows it
    assert sorted(a["digest"] for a in body["artifacts"]) == sorted([artifact.digest, second_artifact.digest])
    assert body["change_requests"] == [] and body["frozen"] is False
    event = AuditEvent.objects.get(action="release.updated", object_human_id="rsd 7.2.4")
    assert event.actor == cast["rory"]
    assert event.before == {"artifacts": [artifact.digest], "change_requests": [change_request.human_id]}
    assert event.after["artifacts"] == sorted([artifact.digest, second_artifact.digest])
    assert event.after["change_requests"] == []


def test_ci_edits_only_the_fields_it_sends(api, ci_token, release, artifact, second_artifact, change_request):
    response = api(token=ci_token).patch(URL, {"artifacts": [second_artifact.digest]}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [a["digest"] for a in body["artifacts"]] == [second_artifact.digest]
    assert [cr["id"] for cr in body["change_requests"]] == [change_request.human_id]


def test_an_edit_is_validated_as_a_new_release_is(api, ci_token, release, artifact):
    unknown = "sha256:" + "0" * 64
    response = api(token=ci_token).patch(URL, {"artifacts": [unknown]}, format="json")
    assert response.status_code == 400 and unknown in response.json()["detail"]
    response = api(token=ci_token).patch(URL, {"change_requests": ["CR-999999"]}, format="json")
    assert response.status_code == 400 and "CR-999999" in response.json()["detail"]
    assert api(token=ci_token).patch(URL, {"artifacts": []}, format="json").status_code == 400
    assert api(token=ci_token).patch(URL, {}, format="json").status_code == 400
    renamed = api(token=ci_token).patch(URL, {"version": "7.2.5"}, format="json")
    assert renamed.status_code == 400 and "version" in renamed.json()["detail"]
    assert [a.digest for a in Release.objects.get(version="7.2.4").artifacts.all()] == [artifact.digest]
    assert not AuditEvent.objects.filter(action="release.updated").exists()


def test_after_the_first_promotion_request_an_edit_is_409_naming_the_frozen_state(
    api, cast, release, artifact, second_artifact
):
    pass_through(release, actor=cast["rory"], environments=("integration",))
    response = api(cast["rory"]).patch(URL, {"artifacts": [second_artifact.digest]}, format="json")
    assert response.status_code == 409, response.json()
    body = response.json()
    assert body["error"] == "wrong_state"
    assert "frozen" in body["detail"] and "first promotion request" in body["detail"], body
    assert [a.digest for a in release.artifacts.all()] == [artifact.digest]


def test_another_products_token_gets_404(api, other_product_token, release, second_artifact):
    response = api(token=other_product_token).patch(URL, {"artifacts": [second_artifact.digest]}, format="json")
    assert response.status_code == 404


def test_a_token_without_releases_write_gets_403(api, product, admin_user, release, second_artifact):
    account = make_user("ci-reader", "CI reader", is_service_account=True)
    _, secret = token_create(actor=admin_user, name="r", user=account, products=[product], scopes=["status:read"])
    response = api(token=secret).patch(URL, {"artifacts": [second_artifact.digest]}, format="json")
    assert response.status_code == 403
    assert "releases:write" in response.json()["detail"]


@pytest.mark.parametrize("who", ["audrey", "quinn", "alice"])
def test_someone_who_may_not_manage_releases_gets_403_even_when_it_is_frozen(api, cast, release, who):
    pass_through(release, actor=cast["rory"], environments=("integration",))
    response = api(cast[who]).patch(URL, {"change_requests": []}, format="json")
    assert response.status_code == 403, response.json()
    assert "release manager" in response.json()["detail"]


def test_an_outsider_gets_404(api, cast, release):
    assert api(cast["olga"]).patch(URL, {"change_requests": []}, format="json").status_code == 404


# ---------------------------------------------------------------- the release page


def test_the_release_page_edits_an_unfrozen_release(client, cast, release, artifact, second_artifact):
    client.force_login(cast["rory"])
    page = client.get("/products/rsd/releases/7.2.4").content.decode()
    assert 'action="/products/rsd/releases/7.2.4/edit"' in page
    response = client.post(
        "/products/rsd/releases/7.2.4/edit",
        {"artifacts": f"{artifact.digest}\n{second_artifact.digest}\n", "change_requests": ""},
    )
    assert response.status_code == 302
    release.refresh_from_db()
    assert sorted(release.artifacts.values_list("digest", flat=True)) == sorted(
        [artifact.digest, second_artifact.digest]
    )
    assert not release.change_requests.exists()
    assert AuditEvent.objects.filter(action="release.updated", actor=cast["rory"]).exists()


def test_the_release_page_offers_no_edit_once_frozen_or_to_a_reviewer(client, cast, release, second_artifact):
    client.force_login(cast["quinn"])
    assert "7.2.4/edit" not in client.get("/products/rsd/releases/7.2.4").content.decode()
    pass_through(release, actor=cast["rory"], environments=("integration",))
    client.force_login(cast["rory"])
    assert "7.2.4/edit" not in client.get("/products/rsd/releases/7.2.4").content.decode()
    response = client.post("/products/rsd/releases/7.2.4/edit", {"artifacts": second_artifact.digest}, follow=True)
    assert "frozen" in response.content.decode()
    assert [a.digest for a in release.artifacts.all()] != [second_artifact.digest]


def test_a_refused_edit_on_the_page_keeps_what_was_typed(client, cast, release, artifact, second_artifact):
    client.force_login(cast["rory"])
    typed_artifacts = f"{artifact.digest}\n{second_artifact.digest}\nsha256:{'0' * 64}\n"
    typed_crs = "CR-9999 CR-1"
    response = client.post(
        "/products/rsd/releases/7.2.4/edit", {"artifacts": typed_artifacts, "change_requests": typed_crs}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was changed" in page and f"sha256:{'0' * 64}" in page  # the refusal names the unknown digest
    # The edit card holds what was typed, not what the release holds.
    assert f">{typed_artifacts}</textarea>" in page
    assert f'value="{typed_crs}"' in page
    assert [a.digest for a in release.artifacts.all()] == [artifact.digest]
