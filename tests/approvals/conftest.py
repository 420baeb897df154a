"""Builds, artifacts and parsed evidence for the approvals tests, and a release ready for production."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from django.core.cache import cache

from approvals import services
from changecontrol import services as cc_services
from changecontrol.models import User
from changecontrol.policy import DEFAULT_POLICY_YAML
from evidence.models import Artifact, Build, BuildCommit, Evidence, Provenance, SbomComponent, TestResult, Vulnerability
from tests.conftest import LOW_RISK, PASSWORD, open_change_request

BUILDER_ID = "https://ci.example/acme/rsd/release.yml@refs/heads/main"
_counter = itertools.count(1)

# The default policy with the traceability gate informational: the trace matrix module may not be installed.
POLICY_WITHOUT_TRACE_BLOCK = DEFAULT_POLICY_YAML.replace(
    "- {id: trace, kind: traceability, require: [requirements_tested, risk_controls_verified], blocking: true,",
    "- {id: trace, kind: traceability, require: [requirements_tested, risk_controls_verified], blocking: false,",
)
assert POLICY_WITHOUT_TRACE_BLOCK != DEFAULT_POLICY_YAML


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    services._local_answers.clear()
    yield


def activate_policy(product, source: str, reason: str = "test policy"):
    author = User.objects.get(username="polly")
    approver = User.objects.get(username="quentin")
    version = cc_services.policy_version_propose(product=product, author=author, source=source, reason=reason)
    cc_services.policy_version_sign(policy_version=version, signer=approver, username="quentin", password=PASSWORD)
    return version


@pytest.fixture
def policy(product):
    return activate_policy(product, POLICY_WITHOUT_TRACE_BLOCK)


def make_build(product, *, registered_by, commit_authors=("alice@example.test",), builder_identity=BUILDER_ID) -> Build:
    n = next(_counter)
    build = Build.objects.create(
        product=product,
        number=n + 1000 * (product.pk or 0),
        pipeline_url=f"https://ci.example/acme/{product.key}/runs/{n}",
        commit=hashlib.sha1(str(n).encode()).hexdigest(),
        branch="main",
        builder_identity=builder_identity,
        registered_by=registered_by,
    )
    for position, email in enumerate(commit_authors):
        BuildCommit.objects.create(
            build=build,
            sha=hashlib.sha1(f"{n}-{position}".encode()).hexdigest(),
            author_email=email,
            position=position,
            message="CR-1 recalibrate thresholds",
        )
    return build


def make_artifact(build, name="rsd-api") -> Artifact:
    n = next(_counter)
    return Artifact.objects.create(
        product=build.product,
        build=build,
        name=name,
        kind="container-image",
        digest="sha256:" + hashlib.sha256(f"artifact-{n}".encode()).hexdigest(),
        registered_by=build.registered_by,
    )


def add_evidence(artifact, evidence_type, *, verdict="unsigned", name="", state="parsed") -> Evidence:
    n = next(_counter)
    return Evidence.objects.create(
        product=artifact.product,
        artifact=artifact,
        evidence_type=evidence_type,
        name=name,
        sha256=hashlib.sha256(f"evidence-{n}".encode()).hexdigest(),
        size=10,
        storage_name=f"ev/{n}",
        state=state,
        verdict=verdict,
        uploaded_by=artifact.registered_by,
    )


def add_tests(artifact, *, passed=10, failed=0, skipped=0) -> Evidence:
    evidence = add_evidence(artifact, "junit", name="unit-tests")
    for status, count in (("passed", passed), ("failed", failed), ("skipped", skipped)):
        for i in range(count):
            TestResult.objects.create(evidence=evidence, artifact=artifact, name=f"test_{status}_{i}", status=status)
    return evidence


def add_sbom(artifact, licences=("MIT", "Apache-2.0")) -> Evidence:
    evidence = add_evidence(artifact, "cyclonedx", name="sbom")
    for i, expression in enumerate(licences):
        SbomComponent.objects.create(
            evidence=evidence, artifact=artifact, name=f"component-{i}", version="1.0", license_expression=expression
        )
    return evidence


def add_scan(artifact, severities=("low",)) -> Evidence:
    evidence = add_evidence(artifact, "grype", name="grype")
    for i, severity in enumerate(severities):
        Vulnerability.objects.create(
            evidence=evidence, artifact=artifact, vuln_id=f"CVE-2025-{1000 + i}", severity=severity, fix_state="fixed"
        )
    return evidence


def add_provenance(artifact, *, builder_id=BUILDER_ID, repository="https://github.com/acme/rsd") -> Evidence:
    evidence = add_evidence(artifact, "dsse", verdict="signed", name="provenance")
    Provenance.objects.create(evidence=evidence, artifact=artifact, builder_id=builder_id, source_repository=repository)
    return evidence


def add_full_evidence(artifact) -> None:
    """Everything the production gates of the default policy look at, all passing."""
    add_evidence(artifact, "cosign", verdict="signed", name="signature")
    add_provenance(artifact)
    add_tests(artifact)
    add_sbom(artifact)
    add_scan(artifact)


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
    return services.release_create(
        product=product,
        actor=cast["rory"],
        version="7.2.4",
        artifact_digests=[artifact.digest],
        change_request_ids=[change_request.human_id],
    )


def pass_through(release, *, actor, environments=("integration", "staging")):
    """Promote through the environments that need no signature (their gates pass on the full evidence)."""
    promotions = []
    for key in environments:
        promotion = services.promotion_request(release=release, environment_key=key, actor=actor)
        promotion.refresh_from_db()
        assert promotion.state == "approved", services.promotion_status(promotion)["reasons"]
        promotions.append(promotion)
    return promotions


@pytest.fixture
def production_promotion(release, cast):
    pass_through(release, actor=cast["rory"])
    promotion = services.promotion_request(release=release, environment_key="production", actor=cast["rory"])
    promotion.refresh_from_db()
    return promotion


def sign(promotion, user, meaning="approved", comment="", role=""):
    return services.promotion_sign(
        promotion=promotion,
        signer=user,
        username=user.username,
        password=PASSWORD,
        meaning=meaning,
        comment=comment,
        role=role,
    )
