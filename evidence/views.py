"""Pages of the evidence app: a build, an artifact with all its facts, one evidence."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from evidence import selectors
from evidence.api import raw_response
from evidence.models import Evidence

PAGE_ROWS = 200


@login_required
def build_detail(request, build_id):
    build = selectors.build_get(human_id=build_id, user=request.user)
    context = {
        "build": build,
        "commits": build.commits.all(),
        "artifacts": build.artifacts.all(),
    }
    return render(request, "evidence/build.html", context)


@login_required
def artifact_detail(request, digest):
    # Several of the person's products may have registered the same bytes: ?product= chooses, else the first by key.
    found = selectors.artifacts_of_digest(digest=digest, user=request.user, product_key=request.GET.get("product", ""))
    if not found:
        raise Http404
    artifact = found[0]
    severity = request.GET.get("severity", "")
    if severity not in selectors.SEVERITY_ORDER:
        severity = ""
    tests = Paginator(selectors.tests_failures_first(artifact), PAGE_ROWS).get_page(request.GET.get("tests_page"))
    context = {
        "artifact": artifact,
        "evidence": artifact.evidence.select_related("signer_key").order_by("-uploaded_at", "-id"),
        "provenance": artifact.provenance.counting().select_related("evidence"),
        "tests": tests,
        "test_counts": selectors.test_counts(artifact),
        "coverage": selectors.coverage(artifact),
        "coverage_files": artifact.coverage_files.counting().order_by("path")[:PAGE_ROWS],
        "findings": artifact.static_findings.counting().order_by("suppressed", "-severity", "path")[:PAGE_ROWS],
        "components": artifact.components.counting().order_by("name", "version")[:PAGE_ROWS],
        "component_count": artifact.components.counting().count(),
        "vulnerabilities": selectors.vulnerabilities(artifact, severity=severity)[:PAGE_ROWS],
        "vulnerability_counts": selectors.vulnerability_counts(artifact),
        "severity": severity,
        "severities": selectors.SEVERITY_ORDER,
        "licences": selectors.licences(artifact),
    }
    return render(request, "evidence/artifact.html", context)


@login_required
def evidence_detail(request, evidence_id):
    evidence = selectors.evidence_get(evidence_id=evidence_id, user=request.user)
    return render(
        request,
        "evidence/evidence.html",
        {"evidence": evidence, "counts": evidence.counts_as_evidence(), "State": Evidence.State},
    )


@login_required
def evidence_raw(request, evidence_id):
    evidence = selectors.evidence_get(evidence_id=evidence_id, user=request.user)
    return raw_response(evidence)
