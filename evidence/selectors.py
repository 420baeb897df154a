"""Reads of the evidence app: one way in to builds, artifacts and evidence (hidden = 404), and page queries."""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, QuerySet, Value, When
from django.http import Http404

from changecontrol.access import get_visible_or_404
from changecontrol.models import ApiToken, Product, User
from evidence.models import Artifact, Build, Evidence, SignerKey, TestResult, Vulnerability

SEVERITY_ORDER = ("critical", "high", "medium", "low", "unknown")


def build_get(*, human_id: str, user: User, token: ApiToken | None = None) -> Build:
    """'rsd-b3' → the build, or 404 when missing or not visible."""
    key, separator, number = human_id.rpartition("-b")
    if not separator or not number.isdigit() or not key:
        raise Http404
    return get_visible_or_404(
        Build.objects.select_related("product", "registered_by"),
        user=user,
        token=token,
        product__key=key,
        number=int(number),
    )


def artifact_get(*, digest: str, user: User, token: ApiToken | None = None) -> Artifact:
    return get_visible_or_404(
        Artifact.objects.select_related("product", "build"), user=user, token=token, digest=digest.strip().lower()
    )


def evidence_get(*, evidence_id: str, user: User, token: ApiToken | None = None) -> Evidence:
    """'EV-12' or '12' → the evidence, or 404."""
    from changecontrol.access import parse_human_id

    return get_visible_or_404(
        Evidence.objects.select_related("product", "artifact", "signer_key", "uploaded_by"),
        user=user,
        token=token,
        pk=parse_human_id(evidence_id, "EV-"),
    )


def signer_keys(product: Product) -> QuerySet[SignerKey]:
    return SignerKey.objects.filter(product=product).order_by("name", "id")


def counting_evidence(artifact: Artifact) -> QuerySet[Evidence]:
    return artifact.evidence.counting()


def tests_failures_first(artifact: Artifact) -> QuerySet[TestResult]:
    rank = Case(
        When(status="failed", then=Value(0)),
        When(status="error", then=Value(1)),
        When(status="skipped", then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    return TestResult.objects.counting().filter(artifact=artifact).annotate(rank=rank).order_by("rank", "suite", "name")


def test_counts(artifact: Artifact) -> dict[str, int]:
    rows = TestResult.objects.counting().filter(artifact=artifact).values("status").annotate(n=Count("id"))
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    counts.update({row["status"]: row["n"] for row in rows})
    counts["total"] = sum(counts.values())
    return counts


def vulnerabilities(artifact: Artifact, *, severity: str = "") -> QuerySet[Vulnerability]:
    queryset = Vulnerability.objects.counting().filter(artifact=artifact).select_related("suppressed_by__evidence")
    if severity:
        queryset = queryset.filter(severity=severity)
    rank = Case(*[When(severity=s, then=Value(i)) for i, s in enumerate(SEVERITY_ORDER)], output_field=IntegerField())
    return queryset.annotate(rank=rank).order_by("rank", "vuln_id", "package_name")


def vulnerability_counts(artifact: Artifact) -> dict[str, int]:
    """Open (unsuppressed) vulnerabilities by severity."""
    rows = (
        Vulnerability.objects.counting()
        .filter(artifact=artifact, suppressed_by__isnull=True)
        .values("severity")
        .annotate(n=Count("id"))
    )
    counts = dict.fromkeys(SEVERITY_ORDER, 0)
    counts.update({row["severity"]: row["n"] for row in rows})
    return counts


def licences(artifact: Artifact) -> list[dict]:
    rows = (
        artifact.components.counting()
        .values("license_expression")
        .annotate(n=Count("id"))
        .order_by("-n", "license_expression")
    )
    return [{"expression": row["license_expression"] or "(none declared)", "components": row["n"]} for row in rows]


def coverage(artifact: Artifact) -> dict | None:
    """The newest counting coverage report's totals, or None."""
    evidence = (
        counting_evidence(artifact)
        .filter(evidence_type__in=[Evidence.Type.COBERTURA, Evidence.Type.LCOV])
        .order_by("-processed_at", "-id")
        .first()
    )
    if evidence is None:
        return None
    return {"evidence": evidence, **evidence.summary}
