"""Builders shared by the traceability tests (no tests here): items, builds, artifacts, test results."""

from __future__ import annotations

import hashlib
import itertools

from django.utils import timezone

from evidence.models import Artifact, Build, BuildCommit, Evidence, TestResult
from traceability import services as items

_counter = itertools.count(1)


def item(product, actor, identifier, title="", kind="", **fields):
    kind = kind or {"REQ": "requirement", "HAZ": "hazard", "RC-": "risk_control"}.get(identifier[:3], "requirement")
    return items.item_create(
        product=product, actor=actor, kind=kind, identifier=identifier, title=title or identifier, **fields
    )


def link(source, target, kind, actor):
    return items.trace_link_create(source=source, target=target, kind=kind, actor=actor)


def build(product, user, *, commits=()):
    n = next(_counter)
    made = Build.objects.create(
        product=product,
        number=n,
        pipeline_url=f"https://ci.example/acme/{product.key}/runs/{n}",
        commit=hashlib.sha1(str(n).encode()).hexdigest(),
        registered_by=user,
    )
    for position, message in enumerate(commits):
        sha = hashlib.sha1(f"{n}-{position}-{message}".encode()).hexdigest()
        BuildCommit.objects.create(
            build=made, sha=sha, message=message, position=position, author_email="alice@example.test"
        )
    return made


def artifact(product, user, *, commits=()):
    made = build(product, user, commits=commits)
    digest = "sha256:" + hashlib.sha256(f"artifact-{made.number}".encode()).hexdigest()
    return Artifact.objects.create(
        product=product, build=made, digest=digest, name=f"{product.key}-api", registered_by=user
    )


def results(artifact, user, cases, *, uploaded_at=None, verdict=Evidence.Verdict.UNSIGNED, state=Evidence.State.PARSED):
    """cases: (name, status, [requirement ids]) or (name, status, ids, executed_at)."""
    n = next(_counter)
    evidence = Evidence.objects.create(
        product=artifact.product,
        artifact=artifact,
        evidence_type=Evidence.Type.JUNIT,
        sha256=hashlib.sha256(str(n).encode()).hexdigest(),
        size=1,
        storage_name=f"x/{n}",
        state=state,
        verdict=verdict,
        uploaded_by=user,
        uploaded_at=uploaded_at or timezone.now(),
    )
    for case in cases:
        name, status, ids = case[:3]
        executed_at = case[3] if len(case) > 3 else None
        TestResult.objects.create(
            evidence=evidence,
            artifact=artifact,
            classname="tests.test_score",
            name=name,
            status=status,
            requirement_ids=list(ids),
            executed_at=executed_at,
        )
    return evidence
