"""Demo data for `manage.py seed_demo`: a realistic build of the risk score dashboard with real evidence.

The evidence files are generated here (JUnit, Cobertura, CycloneDX, a signed SLSA provenance) so the demo
needs nothing outside the repository. Processing runs as in production: upload → task → rows.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.db import transaction
from django.utils import timezone

from changecontrol.models import Product, User
from evidence import services
from evidence.models import Build
from evidence.processing import evidence_process
from evidence.verification import pae

IMAGE = b"rsd scoring-service 7.2.4 image manifest"
DIGEST = "sha256:" + hashlib.sha256(IMAGE).hexdigest()
PIPELINE = "https://github.com/acme/rsd/actions/runs/7240001"
BUILDER = "https://github.com/acme/rsd/.github/workflows/release.yml@refs/heads/main"
COMMIT = "4f1c2b9e8d7a6c5b4a39281706f5e4d3c2b1a098"

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="14" failures="0" errors="0" skipped="1" timestamp="{timestamp}">
<testcase classname="tests.test_scoring" name="test_score_is_between_0_and_1" time="0.004">
  <properties><property name="requirement" value="REQ-001"/></properties></testcase>
<testcase classname="tests.test_scoring" name="test_score_recomputed_within_60s_of_a_new_observation" time="0.004">
  <properties><property name="requirement" value="REQ-002"/></properties></testcase>
<testcase classname="tests.test_ward_view" name="test_ward_view_shows_band_and_computed_time" time="0.004">
  <properties><property name="requirement" value="REQ-003"/></properties></testcase>
<testcase classname="tests.test_scoring" name="test_amber_threshold_is_0_42" time="0.004">
  <properties><property name="requirement" value="REQ-004"/></properties></testcase>
<testcase classname="tests.test_scoring" name="test_red_threshold_unchanged" time="0.004">
  <properties><property name="requirement" value="REQ-004"/></properties></testcase>
<testcase classname="tests.test_ward_view" name="test_top_three_contributing_factors_listed" time="0.004">
  <properties><property name="requirement" value="REQ-005"/></properties></testcase>
<testcase classname="tests.test_ward_view" name="test_score_older_than_4_hours_is_shown_stale" time="0.004">
  <properties><property name="requirement" value="REQ-006"/></properties></testcase>
<testcase classname="tests.test_scoring" name="test_no_score_when_lactate_is_missing" time="0.004">
  <properties><property name="requirement" value="REQ-007"/></properties></testcase>
<testcase classname="tests.test_ingest" name="test_observation_needs_mrn_and_encounter_number" time="0.004">
  <properties><property name="requirement" value="REQ-008"/></properties></testcase>
<testcase classname="tests.test_alerts" name="test_acknowledgement_records_clinician_time_and_note" time="0.004">
  <properties><property name="requirement" value="REQ-009"/></properties></testcase>
<testcase classname="tests.test_audit" name="test_score_kept_with_inputs_and_model_version" time="0.004">
  <properties><property name="requirement" value="REQ-010"/></properties></testcase>
<testcase classname="tests.test_api" name="test_clinician_of_another_ward_gets_403" time="0.004">
  <properties><property name="requirement" value="REQ-011"/></properties></testcase>
<testcase classname="tests.test_ward_view" name="test_footer_shows_model_version_and_validation_date" time="0.004">
  <properties><property name="requirement" value="REQ-012"/></properties></testcase>
<testcase classname="tests.test_api" name="test_bulk_export" time="0.000">
  <skipped message="export disabled in 7.2"/></testcase>
</testsuite></testsuites>
"""

COBERTURA = (
    """<?xml version="1.0" ?>
<coverage version="7.6" timestamp="1741000000000" lines-valid="40" lines-covered="35" line-rate="0.875"
  branches-covered="6" branches-valid="8" branch-rate="0.75" complexity="0">
<packages><package name="scoring" line-rate="0.875" branch-rate="0.75" complexity="0"><classes>
<class name="thresholds.py" filename="scoring/thresholds.py" complexity="0" line-rate="0.95" branch-rate="1"><lines>
"""
    + "".join(f'<line number="{n}" hits="{1 if n != 20 else 0}"/>' for n in range(1, 21))
    + """</lines></class>
<class name="api.py" filename="scoring/api.py" complexity="0" line-rate="0.8" branch-rate="0.5"><lines>
"""
    + "".join(f'<line number="{n}" hits="{0 if n in (5, 9, 14, 17) else 3}"/>' for n in range(1, 21))
    + """</lines></class>
</classes></package></packages></coverage>
"""
)

SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
    "version": 1,
    "metadata": {"component": {"type": "application", "name": "rsd-scoring-service", "version": "7.2.4"}},
    "components": [
        {
            "type": "library",
            "name": "django",
            "version": "5.2.1",
            "purl": "pkg:pypi/django@5.2.1",
            "licenses": [{"license": {"id": "BSD-3-Clause"}}],
        },
        {
            "type": "library",
            "name": "numpy",
            "version": "2.1.3",
            "purl": "pkg:pypi/numpy@2.1.3",
            "licenses": [{"expression": "BSD-3-Clause AND 0BSD AND MIT"}],
        },
        {
            "type": "library",
            "name": "requests",
            "version": "2.32.3",
            "purl": "pkg:pypi/requests@2.32.3",
            "licenses": [{"license": {"id": "Apache-2.0"}}],
        },
        {
            "type": "library",
            "name": "cryptography",
            "version": "44.0.0",
            "purl": "pkg:pypi/cryptography@44.0.0",
            "licenses": [{"expression": "Apache-2.0 OR BSD-3-Clause"}],
        },
    ],
}


def _provenance_statement() -> dict:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "ghcr.io/acme/rsd-scoring-service", "digest": {"sha256": DIGEST.split(":", 1)[1]}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {
                    "workflow": {
                        "ref": "refs/heads/main",
                        "repository": "https://github.com/acme/rsd",
                        "path": ".github/workflows/release.yml",
                    }
                },
                "resolvedDependencies": [
                    {"uri": "git+https://github.com/acme/rsd@refs/heads/main", "digest": {"gitCommit": COMMIT}}
                ],
            },
            "runDetails": {"builder": {"id": BUILDER}, "metadata": {"invocationId": PIPELINE + "/attempts/1"}},
        },
    }


def _pick(collection, key):
    if isinstance(collection, dict):
        return collection.get(key)
    return next((item for item in collection if getattr(item, "key", getattr(item, "username", None)) == key), None)


def seed(context) -> None:
    """Register build rsd-b<n> with commits naming CRs and REQs, its image, and five pieces of evidence."""
    product: Product | None = _pick(context.products, "rsd")
    if product is None:
        context.stdout.write("evidence demo: no product 'rsd'; skipped\n")
        return
    if Build.objects.filter(product=product, pipeline_url=PIPELINE).exists():
        context.stdout.write("evidence demo: already seeded\n")
        return
    people = context.people
    engineer: User = _pick(people, "alice") or User.objects.filter(is_superuser=True).first()
    ci = User.objects.filter(username="ci-rsd").first()
    if ci is None:
        ci = User.objects.create_user(username="ci-rsd", full_name="CI (rsd)", is_service_account=True)
        ci.set_unusable_password()
        ci.save()
    admin = User.objects.filter(is_superuser=True).first() or engineer
    with transaction.atomic():
        build, _ = services.build_register(
            product=product,
            actor=ci,
            commit=COMMIT,
            branch="main",
            pipeline_url=PIPELINE,
            ci_system="github-actions",
            build_number="7240001",
            builder_identity=BUILDER,
            commits=[
                {
                    "sha": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
                    "author_email": engineer.email,
                    "author_name": engineer.printed_name,
                    "message": "CR-1: raise the amber threshold to 0.42 (REQ-004)",
                },
                {
                    "sha": COMMIT,
                    "author_email": engineer.email,
                    "author_name": engineer.printed_name,
                    "message": "CR-1: keep every score with its inputs and model version (REQ-010)",
                },
            ],
        )
        artifact, _ = services.artifact_register(
            product=product,
            actor=ci,
            build=build,
            name="ghcr.io/acme/rsd-scoring-service",
            digest=DIGEST,
            kind="container-image",
            uri="ghcr.io/acme/rsd-scoring-service:7.2.4",
        )
        # A demo signing key: its private half exists only for this seeding run.
        private = ed25519.Ed25519PrivateKey.generate()
        public_pem = (
            private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        services.signer_key_register(
            product=product, name="release pipeline (demo)", public_key_pem=public_pem, actor=admin
        )
    payload = json.dumps(_provenance_statement()).encode()
    envelope = json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(payload).decode(),
            "signatures": [
                {
                    "keyid": "",
                    "sig": base64.b64encode(private.sign(pae("application/vnd.in-toto+json", payload))).decode(),
                }
            ],
        }
    ).encode()
    sbom = json.dumps(SBOM, indent=2).encode()
    files = [
        # The run is "now": a result older than a requirement's current version would not count as its test.
        (
            "junit",
            "pytest-junit.xml",
            JUNIT.replace("{timestamp}", timezone.now().isoformat()).encode(),
            None,
        ),
        ("cobertura", "coverage.xml", COBERTURA.encode(), None),
        ("cyclonedx", "sbom.cdx.json", sbom, base64.b64encode(private.sign(sbom))),
        ("dsse", "provenance.intoto.jsonl", envelope, None),
    ]
    for evidence_type, name, data, signature in files:
        evidence, _ = services.evidence_receive_bytes(
            artifact=artifact, actor=ci, evidence_type=evidence_type, data=data, name=name, signature=signature
        )
        # Process now even when Celery is not eager, so the demo pages are complete at once.
        evidence_process(evidence_id=evidence.pk)
    context.stdout.write(
        f"evidence demo: build {build.human_id}, artifact {DIGEST[:19]}…, {len(files)} evidence files\n"
    )
