"""Fixtures of the approvals tests (the runtime, reports and home tests import them too): a policy in force, an
artifact with every piece of evidence the production gates read, a change request, a release, its promotion."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from approvals import releases, services
from approvals import status as approval_status
from tests.builders import (
    POLICY_WITHOUT_TRACE_BLOCK,
    activate_policy,
    add_full_evidence,
    make_artifact,
    make_build,
    pass_through,
)
from tests.conftest import LOW_RISK, open_change_request


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    approval_status._local_answers.clear()
    yield


@pytest.fixture
def policy(product):
    return activate_policy(product, POLICY_WITHOUT_TRACE_BLOCK)


@pytest.fixture
def ci_user(ci_account):
    return ci_account


@pytest.fixture
def artifact(product, cast, ci_account, policy):
    build = make_build(product, registered_by=ci_account)
    artifact = make_artifact(build)
    add_full_evidence(artifact)
    return artifact


@pytest.fixture
def change_request(product, cast, policy):
    # Requested by Paula (product owner), low tier: approved automatically, production needs a quality signature.
    return open_change_request(product=product, requester=cast["paula"], answers=LOW_RISK)


@pytest.fixture
def release(product, cast, artifact, change_request):
    return releases.release_create(
        product=product,
        actor=cast["rory"],
        version="7.2.4",
        artifact_digests=[artifact.digest],
        change_request_ids=[change_request.human_id],
    )


@pytest.fixture
def production_promotion(release, cast):
    pass_through(release, actor=cast["rory"])
    promotion = services.promotion_request(release=release, environment_key="production", actor=cast["rory"])
    promotion.refresh_from_db()
    return promotion
