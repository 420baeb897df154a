"""Reads of the evidence app: one way in to builds, artifacts and evidence (hidden = 404), and page queries."""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, QuerySet, Value, When
from django.http import Http404
from django.urls import reverse

from changecontrol.access import get_visible_or_404, visible_product_ids
from changecontrol.models import ApiToken, Product, User
from common.errors import ValidationFailed
from evidence.models import Artifact, Build, Evidence, SignerKey, TestResult, Vulnerability

SEVERITY_ORDER = ("critical", "high", "medium", "low", "unknown")
MAX_PRODUCTS_NAMED = 20


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


def artifacts_of_digest(
    *, digest: str, user: User, token: ApiToken | None = None, product_key: str = ""
) -> list[Artifact]:
    """The artifacts of this digest in the products the caller may see (in `product_key` only, when given), by
    product key. A digest is unique within a product: several products may each have registered the same bytes."""
    ids = visible_product_ids(user, token)
    found = Artifact.objects.select_related("product", "build").filter(
        digest=digest.strip().lower(), product_id__in=ids
    )
    if product_key:
        found = found.filter(product__key=product_key.strip())
    return list(found.order_by("product__key")[:MAX_PRODUCTS_NAMED])


def artifact_page_url(digest: str, product_key: str) -> str:
    """The artifact's page, naming its product: the same digest may be another product's artifact too."""
    return f"{reverse('evidence-artifact', args=[digest])}?product={product_key}"


def artifact_get(*, digest: str, user: User, token: ApiToken | None = None, product_key: str = "") -> Artifact:
    """The artifact of this digest the caller may see, or 404 (another product's reads as none). When several of
    the caller's products registered it, `product_key` (`?product=`) chooses; without it that is 400 naming them."""
    found = artifacts_of_digest(digest=digest, user=user, token=token, product_key=product_key)
    if not found:
        raise Http404
    if len(found) > 1:
        keys = ", ".join(artifact.product.key for artifact in found)
        raise ValidationFailed(
            f"{digest.strip().lower()} is registered in several products you may see ({keys}): "
            "name one with product=<key>",
            errors={"product": ["This field is required when several of your products registered the digest."]},
        )
    return found[0]


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
