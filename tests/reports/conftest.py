"""The reports tests render packets and bundles of releases built from the evidence fixtures, and of a release
decided, deployed and then judged again under a stricter policy."""

import pytest

from approvals import releases
from runtime import deployments as runtime
from tests.builders import POLICY_WITHOUT_TRACE_BLOCK, activate_policy, add_full_evidence, make_artifact, make_build
from tests.conftest import LOW_RISK, open_change_request
from tests.evidence.conftest import (  # noqa: F401 - fixtures, found by pytest through this module
    artifact,
    build,
    ed25519_key,
    p256_key,
    private_media,
    registered_key,
    upload,
)
from tests.runtime.helpers import approved_for_production

# A later, stricter policy: production now also blocks on a coverage report, which the release never had.
STRICTER_POLICY = POLICY_WITHOUT_TRACE_BLOCK.replace(
    "      # An example of a condition written in CEL",
    """      - {id: coverage-floor, kind: coverage, min_line_rate: 0.80, blocking: true,
         description: "A coverage report of at least 80% before production"}
      # An example of a condition written in CEL""",
)
assert STRICTER_POLICY != POLICY_WITHOUT_TRACE_BLOCK


def low_risk_release(product, cast, ci_account):
    """rsd 7.2.4: one artifact with every piece of evidence production needs, delivering one low-risk CR."""
    shipped_artifact = make_artifact(make_build(product, registered_by=ci_account))
    add_full_evidence(shipped_artifact)
    change_request = open_change_request(product=product, requester=cast["paula"], answers=LOW_RISK)
    release = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="7.2.4",
        artifact_digests=[shipped_artifact.digest],
        change_request_ids=[change_request.human_id],
    )
    return release, shipped_artifact


@pytest.fixture
def decided_policy(product):
    """The policy the release is decided under (v2: the product fixture activated the default as v1)."""
    return activate_policy(product, POLICY_WITHOUT_TRACE_BLOCK, reason="trace gate informational for this release")


@pytest.fixture
def shipped(product, cast, ci_account, decided_policy):
    """rsd 7.2.4 approved for production by Quinn and deployed there by Sam: (release, promotion, deployment)."""
    release, shipped_artifact = low_risk_release(product, cast, ci_account)
    promotion = approved_for_production(release, cast)
    deployment = runtime.deployment_record(
        artifact=shipped_artifact,
        environment=product.environments.get(key="production"),
        deployer=cast["sam"],
        pipeline_url="https://ci.example/acme/rsd/runs/deploy-1",
    )
    assert deployment.authorised, deployment.reasons
    promotion.refresh_from_db()
    assert promotion.state == "deployed"
    return release, promotion, deployment


@pytest.fixture
def stricter_policy(product, shipped):
    """Activated after the deployment: today production would block on the new coverage-floor gate."""
    return activate_policy(product, STRICTER_POLICY, reason="coverage now required before production")
