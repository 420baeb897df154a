"""What you see is what you sign (21 CFR Part 11 §11.70; DESIGN §6): every signing path — change requests,
promotions, policy versions, break-glass reviews — through the API (a session or a personal token) and the page.

A signing request carries the `content_sha256` of the record as shown to the signer: the right one signs, a stale
one is 409 `content_changed` naming both hashes with nothing signed (and the refusal audited), a missing one is 400
naming the field and where to read it. Change requests and promotions change under a reader (an edit, a report
that arrives); policy versions and break-glass deployments never change, so for them the stale hash is the one of
another record of the same kind — the signer was shown something else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from approvals import services as approval_services
from changecontrol import services as cc_services
from changecontrol.api_auth import token_create
from changecontrol.models import AuditEvent, Signature, User
from common.errors import ContentChanged
from runtime import deployments
from tests.builders import POLICY_WITHOUT_TRACE_BLOCK, add_scan, promotion_sha256
from tests.conftest import (
    MEDIUM_RISK,
    PASSWORD,
    change_request_sha256,
    dialog_sha256,
    open_change_request,
    policy_version_sha256,
)
from tests.runtime.helpers import review_sha256

pytestmark = pytest.mark.django_db

JUSTIFICATION = "Scores stopped rendering on every ward; the certificate fix could not wait for staging."


@dataclass(frozen=True)
class SigningPath:
    """One kind of signed record: where it is read and signed, by API and by page, and how it goes stale."""

    name: str
    make: Callable[[dict], Any]  # the record a quality reviewer can sign now
    sha256: Callable[[Any], str]  # what the page and the API show for it now
    api_read: Callable[[Any], str]
    api_hash: Callable[[dict], str]  # the content_sha256 in the GET answer
    api_sign: Callable[[Any], str]
    api_body: dict
    page: Callable[[Any], str]
    page_sign: Callable[[Any], str]
    page_body: dict
    make_stale: Callable[[Any, dict], None]  # after this, what the reviewer was shown is no longer the record
    signatures: Callable[[Any], Any]


def _proposed_policy(world):
    return cc_services.policy_version_propose(
        product=world["product"],
        author=User.objects.get(username="polly"),
        source=POLICY_WITHOUT_TRACE_BLOCK.replace("valid_for_hours: 72 ", "valid_for_hours: 48 "),
        reason="Shorter approval window after the Q3 audit",
    )


def _break_glass_review(world, justification=JUSTIFICATION):
    deployment = deployments.deployment_record(
        artifact=world["release"].artifacts.get(),
        environment=world["product"].environments.get(key="production"),
        deployer=world["cast"]["sam"],
        kind="break_glass",
        justification=justification,
    )
    return deployment.review


def _edit_change_request(change_request, world):
    cc_services.change_request_update(
        change_request=change_request,
        actor=world["cast"]["rory"],
        what_changes="Amber threshold 0.35 → 0.45 (the panel asked for more margin).",
        reason="Clinical panel feedback",
    )


def _report_arrives(promotion, world):
    # A vulnerability scan no gate blocks on: the evidence a reviewer saw is no longer the evidence that counts.
    add_scan(promotion.release.artifacts.get(), severities=("medium",))


def _another_version_is_proposed(policy_version, world):
    # Policy versions never change; the reviewer was shown another version than the one signed.
    world["shown_instead"] = policy_version_sha256(
        cc_services.policy_version_propose(
            product=world["product"],
            author=User.objects.get(username="polly"),
            source=POLICY_WITHOUT_TRACE_BLOCK.replace("valid_for_hours: 72 ", "valid_for_hours: 24 "),
            reason="An even shorter window",
        )
    )


def _another_break_glass(review, world):
    # Deployments are facts that never change; the reviewer was shown another break-glass deployment.
    world["shown_instead"] = review_sha256(_break_glass_review(world, justification="A different emergency."))


PATHS = [
    SigningPath(
        name="change request",
        make=lambda world: open_change_request(
            product=world["product"], requester=world["cast"]["rory"], answers=MEDIUM_RISK
        ),
        sha256=change_request_sha256,
        api_read=lambda cr: f"/api/v1/change-requests/{cr.human_id}",
        api_hash=lambda body: body["content_sha256"],
        api_sign=lambda cr: f"/api/v1/change-requests/{cr.human_id}/signatures",
        api_body={"meaning": "approved", "comment": "Replay results reviewed."},
        page=lambda cr: f"/change-requests/{cr.human_id}",
        page_sign=lambda cr: f"/change-requests/{cr.human_id}/sign",
        page_body={"meaning": "approved", "comment": "Replay results reviewed."},
        make_stale=_edit_change_request,
        signatures=lambda cr: Signature.objects.filter(subject_type="changecontrol.changerequest", subject_id=cr.pk),
    ),
    SigningPath(
        name="promotion",
        make=lambda world: world["production_promotion"],
        sha256=promotion_sha256,
        api_read=lambda p: f"/api/v1/promotions/{p.human_id}",
        api_hash=lambda body: body["content_sha256"],
        api_sign=lambda p: f"/api/v1/promotions/{p.human_id}/signatures",
        api_body={"meaning": "approved", "comment": "Gates pass; evidence reviewed."},
        page=lambda p: f"/promotions/{p.human_id}",
        page_sign=lambda p: f"/promotions/{p.human_id}/sign",
        page_body={"meaning": "approved", "comment": "Gates pass; evidence reviewed."},
        make_stale=_report_arrives,
        signatures=lambda p: Signature.objects.filter(subject_type="approvals.promotion", subject_id=p.pk),
    ),
    SigningPath(
        name="policy version",
        make=_proposed_policy,
        sha256=policy_version_sha256,
        api_read=lambda v: f"/api/v1/products/rsd/policy-versions/{v.version}",
        api_hash=lambda body: body["content_sha256"],
        api_sign=lambda v: f"/api/v1/products/rsd/policy-versions/{v.version}/signatures",
        api_body={"comment": "Reviewed against SOP-QA-012."},
        page=lambda v: "/products/rsd/policy",
        page_sign=lambda v: f"/products/rsd/policy/{v.version}/sign",
        page_body={"comment": "Reviewed against SOP-QA-012."},
        make_stale=_another_version_is_proposed,
        signatures=lambda v: Signature.objects.filter(subject_type="changecontrol.policyversion", subject_id=v.pk),
    ),
    SigningPath(
        name="break-glass review",
        make=_break_glass_review,
        sha256=review_sha256,
        api_read=lambda r: f"/api/v1/deployments/{r.deployment.human_id}",
        api_hash=lambda body: body["review"]["content_sha256"],
        api_sign=lambda r: f"/api/v1/deployments/{r.deployment.human_id}/review",
        api_body={"findings": "Justified: the certificate was the only change; a regression test now covers it."},
        page=lambda r: f"/deployments/{r.deployment.human_id}",
        page_sign=lambda r: f"/deployments/{r.deployment.human_id}/review",
        page_body={"comment": "Justified: the certificate was the only change; a regression test now covers it."},
        make_stale=_another_break_glass,
        signatures=lambda r: Signature.objects.filter(subject_type="approvals.breakglassreview", subject_id=r.pk),
    ),
]
ids = [path.name for path in PATHS]


@pytest.fixture
def world(product, cast, admin_user, production_promotion, release) -> dict:
    return {
        "product": product,
        "cast": cast,
        "admin": admin_user,
        "production_promotion": production_promotion,
        "release": release,
    }


def _api_client(api, world, how: str):
    quinn = world["cast"]["quinn"]
    if how == "session":
        return api(quinn)
    _, secret = token_create(
        actor=world["admin"], name="quinn's laptop", user=quinn, products=[world["product"]], scopes=["changes:write"]
    )
    return api(token=secret)


def _page_client(world) -> Client:
    client = Client()
    client.force_login(world["cast"]["quinn"])
    return client


def _seen_then_stale(path: SigningPath, record, world) -> tuple[str, str]:
    """What the reviewer was shown, and what the record is by the time they sign."""
    seen = path.sha256(record)
    path.make_stale(record, world)
    seen = world.pop("shown_instead", seen)
    return seen, path.sha256(record)


def _assert_refusal_is_audited(record_human_id: str, seen: str, current: str) -> None:
    refusal = AuditEvent.objects.filter(action="signature.refused", object_human_id=record_human_id).get()
    assert refusal.reason.startswith("content_changed: you reviewed content sha256")
    assert refusal.after == {"seen_content_sha256": seen, "content_sha256": current}


# ---------------------------------------------------------------- the API


@pytest.mark.parametrize("how", ["session", "personal token"])
@pytest.mark.parametrize("path", PATHS, ids=ids)
def test_the_api_signs_the_content_sha256_its_get_answered(api, world, path, how):
    record = path.make(world)
    client = _api_client(api, world, how)
    read = client.get(path.api_read(record))
    assert read.status_code == 200, read.content[:300]
    seen = path.api_hash(read.json())
    assert seen == path.sha256(record)  # the API shows what the service will sign

    response = client.post(
        path.api_sign(record),
        {**path.api_body, "username": "quinn", "password": PASSWORD, "content_sha256": seen},
        format="json",
    )
    assert response.status_code == 201, response.json()
    [signature] = path.signatures(record)
    assert signature.content_sha256 == seen
    assert signature.signer.username == "quinn"


@pytest.mark.parametrize("path", PATHS, ids=ids)
def test_the_api_refuses_a_stale_content_sha256_with_409_naming_both_hashes(api, world, path):
    record = path.make(world)
    seen, current = _seen_then_stale(path, record, world)
    assert seen != current

    response = api(world["cast"]["quinn"]).post(
        path.api_sign(record),
        {**path.api_body, "username": "quinn", "password": PASSWORD, "content_sha256": seen},
        format="json",
    )
    assert response.status_code == 409, response.json()
    body = response.json()
    assert body["error"] == "content_changed"
    assert body["detail"] == (
        f"you reviewed content sha256 {seen}; the record is now {current}: reload it and review again "
        "(nothing was signed)"
    )
    assert (body["seen_content_sha256"], body["content_sha256"]) == (seen, current)
    assert not path.signatures(record).exists()
    _assert_refusal_is_audited(record.human_id, seen, current)


@pytest.mark.parametrize("how", ["session", "personal token"])
@pytest.mark.parametrize("path", PATHS, ids=ids)
def test_the_api_refuses_a_missing_content_sha256_with_400_saying_where_to_read_it(api, world, path, how):
    record = path.make(world)
    response = _api_client(api, world, how).post(
        path.api_sign(record), {**path.api_body, "username": "quinn", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["error"] == "invalid_input" and list(body["fields"]) == ["content_sha256"]
    assert "content_sha256" in body["detail"] and f"GET {path.api_read(record)}" in body["detail"]
    assert not path.signatures(record).exists()
    # Nothing was looked at: no re-authentication was attempted, so nothing counts toward lockout.
    assert not AuditEvent.objects.filter(action__in=("signature.failed", "signature.refused")).exists()


@pytest.mark.parametrize("path", PATHS, ids=ids)
def test_a_malformed_content_sha256_is_400_naming_the_field(api, world, path):
    record = path.make(world)
    response = api(world["cast"]["quinn"]).post(
        path.api_sign(record),
        {**path.api_body, "username": "quinn", "password": PASSWORD, "content_sha256": "sha256:1a2b3c"},
        format="json",
    )
    assert response.status_code == 400
    assert "64 hexadecimal characters" in response.json()["fields"]["content_sha256"][0]
    assert not path.signatures(record).exists()


# ---------------------------------------------------------------- the page


@pytest.mark.parametrize("path", PATHS, ids=ids)
def test_the_page_embeds_the_hash_shows_its_short_form_and_signs_it(world, path):
    record = path.make(world)
    client = _page_client(world)
    html = client.get(path.page(record)).content.decode()
    seen = dialog_sha256(html, path.page_sign(record))
    assert seen == path.sha256(record)  # the page shows what the service will sign
    assert f'You are signing content sha256 <code title="sha256 {seen}">{seen[:12]}…</code>' in html

    response = client.post(
        path.page_sign(record),
        {**path.page_body, "username": "quinn", "password": PASSWORD, "content_sha256": seen},
        follow=True,
    )
    [signature] = path.signatures(record)
    assert f"Signed: {signature.manifestation}." in response.content.decode()
    assert signature.content_sha256 == seen
    assert f'href="/signatures/{signature.pk}"' in client.get(path.page(record)).content.decode()


@pytest.mark.parametrize("path", PATHS, ids=ids)
def test_the_page_refuses_a_stale_hash_with_the_same_sentence_and_shows_the_record_again(world, path):
    record = path.make(world)
    client = _page_client(world)
    html = client.get(path.page(record)).content.decode()
    assert dialog_sha256(html, path.page_sign(record)) == path.sha256(record)
    seen, current = _seen_then_stale(path, record, world)

    response = client.post(
        path.page_sign(record),
        {**path.page_body, "username": "quinn", "password": PASSWORD, "content_sha256": seen},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == path.page(record)  # the record, shown again as it is now
    messages = [str(message) for message in response.context["messages"]]
    assert messages == [
        f"You reviewed content sha256 {seen}; the record is now {current}: reload it and review again "
        "(nothing was signed)."
    ]
    assert dialog_sha256(response.content.decode(), path.page_sign(record)) == current
    assert not path.signatures(record).exists()


@pytest.mark.parametrize("path", PATHS, ids=ids)
def test_the_page_refuses_a_post_without_the_hash(world, path):
    record = path.make(world)
    response = _page_client(world).post(
        path.page_sign(record), {**path.page_body, "username": "quinn", "password": PASSWORD}, follow=True
    )
    [message] = [str(message) for message in response.context["messages"]]
    assert message.startswith("A signature must carry the content_sha256 of the record as you reviewed it")
    assert message.endswith("nothing was signed.")
    assert not path.signatures(record).exists()


# ---------------------------------------------------------------- the change request a reviewer read


def test_a_reviewer_who_read_version_1_is_not_bound_to_version_2(api, world):
    """The reviewer opens CR version 1 and takes its hash; the author edits it (version 2) while the reviewer
    reads; the reviewer's signature with the version-1 hash is refused and nothing binds them to version 2."""
    rory, quinn = world["cast"]["rory"], world["cast"]["quinn"]
    change_request = open_change_request(product=world["product"], requester=rory, answers=MEDIUM_RISK)
    reviewer = api(quinn)
    version_1 = reviewer.get(f"/api/v1/change-requests/{change_request.human_id}").json()
    assert version_1["content_version"] == 1

    author = api(rory).patch(
        f"/api/v1/change-requests/{change_request.human_id}",
        {"rollback_plan": "Feature flag off, then revert.", "reason": "Faster rollback"},
        format="json",
    )
    assert author.status_code == 200 and author.json()["content_version"] == 2
    version_2_sha256 = author.json()["content_sha256"]
    assert version_2_sha256 != version_1["content_sha256"]

    refused = reviewer.post(
        f"/api/v1/change-requests/{change_request.human_id}/signatures",
        {
            "meaning": "approved",
            "username": "quinn",
            "password": PASSWORD,
            "content_sha256": version_1["content_sha256"],
        },
        format="json",
    )
    assert refused.status_code == 409
    assert version_1["content_sha256"] in refused.json()["detail"] and version_2_sha256 in refused.json()["detail"]
    assert not Signature.objects.exists() or not Signature.objects.filter(signer=quinn).exists()
    change_request.refresh_from_db()
    assert change_request.state == "submitted"

    # Having read version 2, the reviewer signs it, and the signature says so.
    version_2 = reviewer.get(f"/api/v1/change-requests/{change_request.human_id}").json()
    signed = reviewer.post(
        f"/api/v1/change-requests/{change_request.human_id}/signatures",
        {
            "meaning": "approved",
            "username": "quinn",
            "password": PASSWORD,
            "content_sha256": version_2["content_sha256"],
        },
        format="json",
    )
    assert signed.status_code == 201
    signature = Signature.objects.get(signer=quinn)
    assert signature.content["content_version"] == 2 and signature.content_sha256 == version_2_sha256


def test_a_promotion_is_signed_over_the_evidence_the_reviewer_saw_or_not_at_all(api, world):
    promotion, quinn = world["production_promotion"], world["cast"]["quinn"]
    reviewer = api(quinn)
    before = reviewer.get(f"/api/v1/promotions/{promotion.human_id}").json()["content_sha256"]
    _report_arrives(promotion, world)
    after = reviewer.get(f"/api/v1/promotions/{promotion.human_id}").json()["content_sha256"]
    assert before != after
    with pytest.raises(ContentChanged) as raised:
        approval_services.promotion_sign(
            promotion=promotion,
            signer=quinn,
            username="quinn",
            password=PASSWORD,
            meaning="approved",
            seen_sha256=before,
        )
    assert raised.value.extra == {"seen_content_sha256": before, "content_sha256": after}
    assert not Signature.objects.filter(subject_type="approvals.promotion", subject_id=promotion.pk).exists()
