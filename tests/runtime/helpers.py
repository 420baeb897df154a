"""Helpers shared by the runtime tests: a release approved for production, deployments through the API, reviews."""

from __future__ import annotations

from approvals import releases, services
from approvals import status as approval_status
from changecontrol import esign
from runtime import deployments, selectors
from runtime.models import BreakGlassReview
from tests.builders import add_full_evidence, make_artifact, make_build, pass_through, sign
from tests.conftest import PASSWORD


def review_sha256(review) -> str:
    """The content_sha256 a quality reviewer is shown for a break-glass review now (the deployment as recorded)."""
    fresh = BreakGlassReview.objects.select_related(
        "deployment__product", "deployment__environment", "deployment__release__product", "deployment__deployer"
    ).get(pk=review.pk)
    return esign.content_sha256(selectors.break_glass_review_signing_content(fresh))


def sign_review(review, user, findings="Justified; a regression test now covers it.", *, password=PASSWORD, **extra):
    """Sign a retrospective review as a reviewer who has just read the deployment."""
    return deployments.break_glass_review_sign(
        review=review,
        signer=user,
        username=extra.pop("username", user.username),
        password=password,
        seen_sha256=extra.pop("seen_sha256", None) or review_sha256(review),
        findings=findings,
    )


def approved_for_production(release, cast):
    """Promote through integration and staging, then have Quinn approve production."""
    pass_through(release, actor=cast["rory"])
    promotion = services.promotion_request(release=release, environment_key="production", actor=cast["rory"])
    promotion.refresh_from_db()
    sign(promotion, cast["quinn"])
    promotion.refresh_from_db()
    assert promotion.state == "approved", approval_status.promotion_status(promotion)["reasons"]
    return promotion


def new_release(
    product, cast, ci_account, version, change_request, *, name="rsd-api", commit_authors=("alice@example.test",)
):
    build = make_build(product, registered_by=ci_account, commit_authors=commit_authors)
    artifact = make_artifact(build, name=name)
    add_full_evidence(artifact)
    return releases.release_create(
        product=product,
        actor=cast["rory"],
        version=version,
        artifact_digests=[artifact.digest],
        change_request_ids=[change_request.human_id],
    ), artifact


def deploy(api, token, digest, environment="production", **extra):
    return api(token=token).post(
        "/api/v1/deployments",
        {
            "artifact": digest,
            "environment": environment,
            "pipeline_url": "https://ci.example/acme/rsd/runs/99",
            **extra,
        },
        format="json",
    )
