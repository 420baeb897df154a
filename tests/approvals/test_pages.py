"""The reviewer's pages through Django's test client: pending approvals, the promotion page, releases, policy diff."""

from __future__ import annotations

import pytest
from django.test import Client

from approvals import releases
from approvals.models import Release
from changecontrol.models import AuditEvent
from tests.builders import promotion_sha256, sign
from tests.conftest import PASSWORD, dialog_sha256

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pending_approvals_page_lists_the_promotion_for_the_quality_reviewer(cast, production_promotion):
    page = client_for(cast["quinn"]).get("/approvals/").content.decode()
    assert production_promotion.human_id in page
    assert "Nothing is waiting" in client_for(cast["sasha"]).get("/approvals/").content.decode()


def test_promotion_page_shows_blocking_gates_first_approvals_and_the_sign_dialog(cast, production_promotion):
    page = client_for(cast["quinn"]).get(f"/promotions/{production_promotion.human_id}").content.decode()
    assert "Blocking gates" in page and page.index("Blocking gates") < page.index("Informational gates")
    assert "missing: Quality reviewer" in page
    assert "By signing I approve PRM-" in page and "21 CFR Part 11" in page
    assert 'name="password"' in page
    assert "What changes in Production" in page
    assert "promotion.requested" in page  # the audit trail


def test_signing_from_the_page_approves_and_the_manifestation_shows(cast, production_promotion):
    client = client_for(cast["quinn"])
    action = f"/promotions/{production_promotion.human_id}/sign"
    seen = dialog_sha256(client.get(f"/promotions/{production_promotion.human_id}").content.decode(), action)
    response = client.post(
        action,
        {
            "meaning": "approved",
            "username": "quinn",
            "password": PASSWORD,
            "comment": "looked at everything",
            "content_sha256": seen,
        },
        follow=True,
    )
    page = response.content.decode()
    assert "Signed: Quinn Quality — Approved as Quality reviewer" in page
    production_promotion.refresh_from_db()
    assert production_promotion.state == "approved"


def test_the_requesters_attempt_is_refused_on_the_page_with_the_rule_named(cast, production_promotion):
    response = client_for(cast["rory"]).post(
        f"/promotions/{production_promotion.human_id}/sign",
        {
            "meaning": "approved",
            "username": "rory",
            "password": PASSWORD,
            "content_sha256": promotion_sha256(production_promotion),
        },
        follow=True,
    )
    assert "Refused by rule sod.requester_cannot_sign" in response.content.decode()
    assert AuditEvent.objects.filter(action="signature.refused", object_human_id=production_promotion.human_id).exists()


def test_an_expired_approval_shows_as_expired(cast, production_promotion):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    sign(production_promotion, cast["quinn"])
    with time_machine.travel(timezone.now() + timedelta(hours=73), tick=False):
        page = client_for(cast["audrey"]).get(f"/promotions/{production_promotion.human_id}").content.decode()
    assert 'data-signature-status="expired"' in page
    assert "must be signed again" in page


def test_outsider_gets_404_on_every_page(cast, production_promotion):
    client = client_for(cast["olga"])
    for url in (
        f"/promotions/{production_promotion.human_id}",
        "/products/rsd/releases",
        "/products/rsd/releases/7.2.4",
        "/products/rsd/policy",
        "/products/rsd/policy/diff?a=1&b=2",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/promotions/{production_promotion.human_id}/sign", {}).status_code == 404


def test_release_pages_and_creating_a_release_in_the_browser(cast, artifact, change_request):
    client = client_for(cast["rory"])
    response = client.post(
        "/products/rsd/releases/new",
        {"version": "7.3.0", "artifacts": artifact.digest, "change_requests": change_request.human_id},
        follow=True,
    )
    page = response.content.decode()
    assert "Release rsd 7.3.0 created" in page
    assert artifact.digest in page
    assert "Promote to Integration" in page
    assert "7.3.0" in client.get("/products/rsd/releases").content.decode()


def test_the_release_form_states_the_version_rule_and_the_service_refuses_a_slash(cast, artifact):
    client = client_for(cast["rory"])
    form = client.get("/products/rsd/releases/new").content.decode()
    assert f'pattern="{releases.RELEASE_VERSION_PATTERN}"' in form
    response = client.post(
        "/products/rsd/releases/new", {"version": "2025.03/hotfix", "artifacts": artifact.digest}, follow=True
    )
    page = response.content.decode()
    assert "contains &#x27;/&#x27;" in page and not Release.objects.exists()


def test_policy_history_and_diff_of_two_versions(cast, policy):
    client = client_for(cast["audrey"])
    history = client.get("/products/rsd/policy").content.decode()
    assert "v2" in history and "Quentin Quality-Lead" in history
    diff = client.get("/products/rsd/policy/diff?a=1&b=2").content.decode()
    assert (
        "-      - "
        "{id: trace, kind: traceability, require: [requirements_tested, risk_controls_verified], blocking: true,"
        in diff
    )
    assert (
        "+      - "
        "{id: trace, kind: traceability, require: [requirements_tested, risk_controls_verified], blocking: false,"
        in diff
    )
    assert client.get("/products/rsd/policy/diff?a=1&b=99").status_code == 404
