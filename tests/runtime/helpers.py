"""Helpers shared by the runtime tests: a release approved for production, and deployments through the API."""

from __future__ import annotations

from approvals import releases, services
from approvals import status as approval_status
from tests.builders import add_full_evidence, make_artifact, make_build, pass_through, sign


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
