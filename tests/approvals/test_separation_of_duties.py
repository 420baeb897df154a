"""Who may sign a production promotion: the separation-of-duties matrix, one person counting once, refusals audited."""

from __future__ import annotations

import pytest

from approvals import releases, services, sod
from approvals import status as approval_status
from changecontrol import roles
from changecontrol.models import AuditEvent, Role
from runtime import deployments
from tests.builders import add_full_evidence, make_artifact, make_build, pass_through, promotion_sha256
from tests.conftest import HIGH_RISK, PASSWORD, open_change_request, sign_change_request

pytestmark = pytest.mark.django_db


def _sign_api(api, user, promotion, meaning="approved"):
    return api(user).post(
        f"/api/v1/promotions/{promotion.human_id}/signatures",
        {
            "meaning": meaning,
            "comment": "reviewed",
            "username": user.username,
            "password": PASSWORD,
            "content_sha256": promotion_sha256(promotion),
        },
        format="json",
    )


def _release_with(
    product,
    cast,
    ci_account,
    *,
    builder=None,
    commit_authors=("alice@example.test",),
    cr_requester=None,
    tier_answers=None,
    requester=None,
):
    from tests.conftest import LOW_RISK

    build = make_build(product, registered_by=builder or ci_account, commit_authors=commit_authors)
    artifact = make_artifact(build)
    add_full_evidence(artifact)
    change_request = open_change_request(
        product=product, requester=cr_requester or cast["paula"], answers=tier_answers or LOW_RISK
    )
    if change_request.state != "approved":
        for reviewer in ("quinn", "sasha"):
            sign_change_request(change_request, cast[reviewer], comment="")
    release = releases.release_create(
        product=product,
        actor=cast["rory"],
        version=f"7.3.{artifact.pk}",
        artifact_digests=[artifact.digest],
        change_request_ids=[change_request.human_id],
    )
    requester = requester or cast["rory"]
    pass_through(release, actor=requester)
    promotion = services.promotion_request(release=release, environment_key="production", actor=requester)
    promotion.refresh_from_db()
    return promotion


@pytest.mark.parametrize(
    ("who", "setup", "rule"),
    [
        ("requester", "requester", "sod.requester_cannot_sign"),
        ("commit author", "commit_author", "sod.commit_author_cannot_sign"),
        ("builder", "builder", "sod.builder_cannot_sign"),
        ("change request author", "cr_author", "sod.change_author_cannot_sign"),
        ("deployer", "deployer", "sod.deployer_cannot_sign"),
    ],
)
def test_separation_of_duties_refuses_with_the_rule_named_and_audits_it(
    api, product, cast, ci_account, policy, who, setup, rule
):
    signer = cast["quinn"]
    kwargs = {}
    if setup == "requester":
        roles.role_grant(actor=None, user=signer, product=product, role=Role.RELEASE_MANAGER)
        kwargs["requester"] = signer
    elif setup == "commit_author":
        kwargs["commit_authors"] = ("QUINN@example.test",)  # e-mail matched case-insensitively
    elif setup == "builder":
        kwargs["builder"] = signer
    elif setup == "cr_author":
        kwargs["cr_requester"] = signer
    promotion = _release_with(product, cast, ci_account, **kwargs)
    if setup == "deployer":
        # The reviewer also holds the SRE role and shipped the release's digest to staging in person.
        roles.role_grant(actor=None, user=signer, product=product, role=Role.SRE)
        deployments.deployment_record(
            artifact=promotion.release.artifacts.get(),
            environment=product.environments.get(key="staging"),
            deployer=signer,
        )
    response = _sign_api(api, signer, promotion)
    assert response.status_code == 403, response.json()
    assert response.json()["error"] == "separation_of_duties"
    assert response.json()["rule"] == rule
    refused = AuditEvent.objects.filter(action="signature.refused", object_human_id=promotion.human_id).get()
    assert refused.reason.startswith(rule)
    assert refused.actor == signer
    assert not services.selectors.promotion_signatures(promotion).exists()


def test_builder_identity_naming_the_reviewer_is_refused(api, product, cast, ci_account, policy):
    build = make_build(product, registered_by=ci_account, builder_identity="quinn@example.test")
    artifact = make_artifact(build)
    add_full_evidence(artifact)
    from tests.conftest import LOW_RISK

    change_request = open_change_request(product=product, requester=cast["paula"], answers=LOW_RISK)
    release = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="9.0.0",
        artifact_digests=[artifact.digest],
        change_request_ids=[change_request.human_id],
    )
    # A builder identity outside the allow-list also fails provenance, which does not matter for who may sign.
    promotion = services.promotion_request(release=release, environment_key="integration", actor=cast["rory"])
    refusal = sod.refusal(promotion=promotion, signer=cast["quinn"])
    assert refusal is not None and refusal.rule == "sod.builder_cannot_sign"


def test_an_uninvolved_quality_reviewer_may_sign(api, product, cast, ci_account, policy):
    promotion = _release_with(product, cast, ci_account)
    assert _sign_api(api, cast["quinn"], promotion).status_code == 201


def test_a_reviewer_without_a_required_role_is_refused(api, product, cast, ci_account, policy):
    promotion = _release_with(product, cast, ci_account)
    response = _sign_api(api, cast["audrey"], promotion)
    assert response.status_code == 403
    assert "needs: quality reviewer" in response.json()["detail"]


def test_an_outsider_gets_404_when_signing(api, product, cast, ci_account, policy):
    promotion = _release_with(product, cast, ci_account)
    assert _sign_api(api, cast["olga"], promotion).status_code == 404


def test_one_person_counts_once_even_with_two_roles(api, product, cast, ci_account, policy):
    promotion = _release_with(product, cast, ci_account, tier_answers=HIGH_RISK)
    assert promotion.tier == "high"
    roles.role_grant(actor=None, user=cast["quinn"], product=product, role=Role.SECURITY)
    assert _sign_api(api, cast["quinn"], promotion).status_code == 201
    second = _sign_api(api, cast["quinn"], promotion)
    assert second.status_code == 409
    assert "one person counts once" in second.json()["detail"]
    status = approval_status.promotion_status(promotion)
    assert status["decision"] == "pending"
    assert status["approvals"]["signed"] == ["quality"]
    assert status["approvals"]["missing"] == ["security"]
    assert _sign_api(api, cast["sasha"], promotion).status_code == 201
    promotion.refresh_from_db()
    assert promotion.state == "approved"


def test_service_accounts_cannot_sign(api, ci_token, product, cast, ci_account, policy):
    promotion = _release_with(product, cast, ci_account)
    response = api(token=ci_token).post(
        f"/api/v1/promotions/{promotion.human_id}/signatures",
        {
            "meaning": "approved",
            "username": "ci-rsd",
            "password": PASSWORD,
            "content_sha256": promotion_sha256(promotion),
        },
        format="json",
    )
    assert response.status_code == 403


def test_a_wrong_password_is_audited_under_the_product_and_the_promotion(api, product, cast, ci_account, policy):
    promotion = _release_with(product, cast, ci_account)
    quinn = cast["quinn"]
    wrong = api(quinn).post(
        f"/api/v1/promotions/{promotion.human_id}/signatures",
        {
            "meaning": "approved",
            "username": "quinn",
            "password": "guess",
            "content_sha256": promotion_sha256(promotion),
        },
        format="json",
    )
    assert wrong.status_code == 403 and wrong.json()["error"] == "reauthentication_failed"
    someone_else = api(quinn).post(
        f"/api/v1/promotions/{promotion.human_id}/signatures",
        {
            "meaning": "approved",
            "username": "sasha",
            "password": PASSWORD,
            "content_sha256": promotion_sha256(promotion),
        },
        format="json",
    )
    assert someone_else.status_code == 403
    failed = AuditEvent.objects.filter(action="signature.failed").order_by("id")
    assert [(e.product_key, e.object_human_id, e.actor) for e in failed] == [("rsd", promotion.human_id, quinn)] * 2
    quinn.refresh_from_db()
    assert quinn.failed_login_count == 1  # the wrong password counts toward lockout; the wrong username does not
    assert not services.selectors.promotion_signatures(promotion).exists()
