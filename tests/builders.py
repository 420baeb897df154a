"""Builders of approvals records, shared by the tests of every app above evidence: builds, artifacts with their
evidence, a policy made active, promotions passed through the environments that need no signature, signatures."""

from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager

from django.db import connection

from approvals import selectors, services
from approvals import status as approval_status
from approvals.models import Promotion
from changecontrol import esign
from changecontrol import services as cc_services
from changecontrol.models import User
from changecontrol.policy import DEFAULT_POLICY_YAML
from evidence.models import Artifact, Build, BuildCommit, Evidence, Provenance, SbomComponent, TestResult, Vulnerability
from tests.conftest import PASSWORD, policy_version_sha256

BUILDER_ID = "https://ci.example/acme/rsd/release.yml@refs/heads/main"


_counter = itertools.count(1)


@contextmanager
def triggers_off(*tables: str):
    """What a database owner can do and the application cannot: switch a table's triggers off, rewrite rows, switch
    them on again (test data in the past; tampering in the sealed-records tests)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # this test's deferred checks, before the ALTER
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        yield cursor
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def rewrite_sealed(queryset, **changes) -> int:
    """Test data only: put a sealed record where the service cannot (in the past), as its database owner could."""
    with triggers_off(queryset.model._meta.db_table):
        return queryset.update(**changes)


# The default policy with the traceability gate informational: these builders make artifacts with no requirements,
# and the tests that care about traceability activate the default policy themselves.
POLICY_WITHOUT_TRACE_BLOCK = DEFAULT_POLICY_YAML.replace(
    "- {id: trace, kind: traceability, require: [requirements_tested, risk_controls_verified], blocking: true,",
    "- {id: trace, kind: traceability, require: [requirements_tested, risk_controls_verified], blocking: false,",
)


assert POLICY_WITHOUT_TRACE_BLOCK != DEFAULT_POLICY_YAML


def activate_policy(product, source: str, reason: str = "test policy"):
    author = User.objects.get(username="polly")
    approver = User.objects.get(username="quentin")
    version = cc_services.policy_version_propose(product=product, author=author, source=source, reason=reason)
    cc_services.policy_version_sign(
        policy_version=version,
        signer=approver,
        username="quentin",
        password=PASSWORD,
        seen_sha256=policy_version_sha256(version),
    )
    return version


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


def pass_through(release, *, actor, environments=("integration", "staging")):
    """Promote through the environments that need no signature (their gates pass on the full evidence)."""
    promotions = []
    for key in environments:
        promotion = services.promotion_request(release=release, environment_key=key, actor=actor)
        promotion.refresh_from_db()
        assert promotion.state == "approved", approval_status.promotion_status(promotion)["reasons"]
        promotions.append(promotion)
    return promotions


def promotion_sha256(promotion) -> str:
    """The content_sha256 a reviewer is shown for a promotion now (its evidence and policy as they stand)."""
    fresh = Promotion.objects.select_related("release__product", "environment").get(pk=promotion.pk)
    return esign.content_sha256(selectors.promotion_signing_content(fresh))


def sign(promotion, user, meaning="approved", comment="", role="", seen_sha256=None):
    """Sign as a reviewer who has just read the promotion (unless `seen_sha256` says what they read instead)."""
    return services.promotion_sign(
        promotion=promotion,
        signer=user,
        username=user.username,
        password=PASSWORD,
        meaning=meaning,
        seen_sha256=seen_sha256 or promotion_sha256(promotion),
        comment=comment,
        role=role,
    )
