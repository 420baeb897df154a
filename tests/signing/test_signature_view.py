"""One signature, viewable (21 CFR Part 11 §11.50, §11.70): its manifestation and the exact content it is bound to,
as a page and as JSON, for whoever may see the signed record's product; hidden and missing are both 404."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from changecontrol import esign
from changecontrol.api_auth import token_create
from changecontrol.models import Signature
from tests.builders import sign
from tests.conftest import MEDIUM_RISK, open_change_request, sign_change_request

pytestmark = pytest.mark.django_db


def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def cr_signature(product, cast) -> Signature:
    change_request = open_change_request(product=product, requester=cast["rory"], answers=MEDIUM_RISK)
    return sign_change_request(change_request, cast["quinn"], comment="Replay results match the panel's labels.")


def test_the_signature_page_shows_the_manifestation_the_hash_and_the_content_signed(cr_signature, cast):
    response = page_for(cast["audrey"]).get(f"/signatures/{cr_signature.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    assert cr_signature.manifestation in html
    assert "Quinn Quality" in html and "Quality reviewer" in html and "Approved" in html
    assert f"{cr_signature.signed_at:%Y-%m-%d %H:%M:%S} UTC" in html
    assert f'data-testid="content-sha256">{cr_signature.content_sha256}<' in html
    assert "it matches" in html
    assert "Replay results match the panel&#x27;s labels." in html
    # The content as signed, indented for reading, with every field the signature is bound to.
    assert response.context["content_text"] == json.dumps(
        cr_signature.content, indent=2, sort_keys=True, ensure_ascii=False
    )
    assert "&quot;content_version&quot;: 1" in html and "&quot;title&quot;" in html
    assert f'href="/change-requests/{cr_signature.subject_human_id}"' in html
    assert f'href="/api/v1/signatures/{cr_signature.pk}"' in html


def test_the_api_answers_the_same_signature_as_json(api, cr_signature, cast):
    response = api(cast["audrey"]).get(f"/api/v1/signatures/{cr_signature.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["manifestation"] == cr_signature.manifestation
    assert (body["printed_name"], body["meaning"], body["role"]) == ("Quinn Quality", "approved", "quality")
    assert body["subject"] == cr_signature.subject_human_id and body["subject_type"] == "changecontrol.changerequest"
    assert body["subject_url"] == f"/change-requests/{cr_signature.subject_human_id}"
    assert body["content"] == cr_signature.content
    assert body["content_sha256"] == esign.content_sha256(body["content"]) and body["content_hash_matches"] is True
    assert body["url"] == f"/signatures/{cr_signature.pk}" and body["product"] == "rsd"
    assert body["policy_version"] == cr_signature.policy_version.version


def test_signatures_in_record_answers_link_to_their_own_page(api, cr_signature, cast):
    body = api(cast["audrey"]).get(f"/api/v1/change-requests/{cr_signature.subject_human_id}").json()
    assert [s["url"] for s in body["signatures"]] == [f"/signatures/{cr_signature.pk}"]


def test_a_promotion_signature_shows_the_evidence_snapshot_it_covers(api, cast, production_promotion):
    signature = sign(production_promotion, cast["quinn"], comment="Gates pass.")
    page = page_for(cast["audrey"]).get(f"/promotions/{production_promotion.human_id}").content.decode()
    assert f'href="/signatures/{signature.pk}"' in page
    html = page_for(cast["audrey"]).get(f"/signatures/{signature.pk}").content.decode()
    assert signature.content["evidence_sha256"] in html and signature.content["manifest_sha256"] in html
    assert f'href="/promotions/{production_promotion.human_id}"' in html


def test_outsiders_other_products_and_missing_signatures_are_all_404(
    api, cr_signature, cast, other_product, admin_user, other_product_token
):
    outsider = cast["olga"]
    assert page_for(outsider).get(f"/signatures/{cr_signature.pk}").status_code == 404
    assert api(outsider).get(f"/api/v1/signatures/{cr_signature.pk}").status_code == 404
    assert api(token=other_product_token).get(f"/api/v1/signatures/{cr_signature.pk}").status_code == 404
    # Quinn's own token scoped to another product sees nothing of rsd either.
    _, secret = token_create(
        actor=admin_user, name="lab only", user=cast["quinn"], products=[other_product], scopes=["changes:write"]
    )
    assert api(token=secret).get(f"/api/v1/signatures/{cr_signature.pk}").status_code == 404
    for missing in ("999999", "abc", "1e3", "9" * 30):
        assert page_for(cast["audrey"]).get(f"/signatures/{missing}").status_code == 404
        response = api(cast["audrey"]).get(f"/api/v1/signatures/{missing}")
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert page_for(cast["audrey"]).get(f"/signatures/{cr_signature.pk}").status_code == 200


def test_anonymous_callers_are_sent_to_sign_in_or_get_401(api, cr_signature):
    assert Client().get(f"/signatures/{cr_signature.pk}").status_code == 302
    assert api().get(f"/api/v1/signatures/{cr_signature.pk}").status_code == 401
