"""Reads of the core domain (filters shared by pages and the API)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.urls import reverse

from changecontrol.access import visible_product_ids, visible_products
from changecontrol.esign import signatures_for
from changecontrol.models import (
    ApiToken,
    AuditEvent,
    ChangeRequest,
    PolicyVersion,
    Product,
    Signature,
    User,
    record_type,
)

OPEN_CHANGE_STATES = (ChangeRequest.State.DRAFT, ChangeRequest.State.SUBMITTED, ChangeRequest.State.APPROVED)


def products_overview(user: User) -> QuerySet[Product]:
    """The products a person may see with their environments, active policy (`active_policies`, at most one) and
    count of open changes (`open_count`): three queries however many products."""
    return (
        visible_products(user)
        .annotate(open_count=Count("change_requests", filter=Q(change_requests__state__in=OPEN_CHANGE_STATES)))
        .prefetch_related(
            "environments",
            Prefetch(
                "policy_versions",
                queryset=PolicyVersion.objects.filter(state=PolicyVersion.State.ACTIVE),
                to_attr="active_policies",
            ),
        )
    )


def change_requests(*, product: Product | None = None, products=None, filters=None) -> QuerySet[ChangeRequest]:
    queryset = ChangeRequest.objects.select_related("product", "requester", "policy_version")
    if product is not None:
        queryset = queryset.filter(product=product)
    if products is not None:
        queryset = queryset.filter(product__in=products)
    filters = filters or {}
    if filters.get("state"):
        queryset = queryset.filter(state=filters["state"])
    if filters.get("tier"):
        queryset = queryset.filter(tier=filters["tier"])
    if filters.get("kind"):
        queryset = queryset.filter(kind=filters["kind"])
    if filters.get("type"):
        queryset = queryset.filter(change_type=filters["type"])
    if filters.get("q"):
        queryset = queryset.filter(title__icontains=filters["q"])
    return queryset.order_by("-id")


# ---------------------------------------------------------------- what a signer is shown and signs (Part 11 §11.70)
#
# One function per signed record type of this app. The signing service signs exactly what it returns (under the
# record's lock), and the page's signing dialog and the API's `content_sha256` show its hash: page, API and service
# can never disagree about what a signature covers.


def change_request_signing_content(change_request: ChangeRequest) -> dict[str, Any]:
    """A change request's content as written (`ChangeRequest.canonical_content`): any edit changes the hash."""
    return change_request.canonical_content()


def policy_version_signing_content(policy_version: PolicyVersion) -> dict[str, Any]:
    """A policy version: its product, number and the sha256 of its YAML document exactly as proposed."""
    return {
        "policy": policy_version.product.key,
        "version": policy_version.version,
        "sha256": policy_version.sha256,
    }


# The page that shows each kind of signed record, by URL name: the apps above register these pages, and naming them
# is data, not an import (a renamed page fails loudly in reverse()).
_SIGNED_RECORD_PAGES = {
    record_type(ChangeRequest): lambda signature: reverse("change-request", args=[signature.subject_human_id]),
    record_type(PolicyVersion): lambda signature: reverse("policy-history", args=[signature.product.key]),
    "approvals.promotion": lambda signature: reverse("promotion", args=[signature.subject_human_id]),
    "approvals.breakglassreview": lambda signature: reverse(
        "deployment", args=[(signature.content or {}).get("deployment", "")]
    ),
    "approvals.acceptedfailure": lambda signature: (
        reverse("release", args=[signature.product.key, (signature.content or {}).get("version", "")])
        + "#accepted-failures"
    ),
}


def signed_record_path(signature: Signature) -> str | None:
    """The page of the record a signature signs (None for a kind of record no page shows)."""
    page = _SIGNED_RECORD_PAGES.get(signature.subject_type)
    return page(signature) if page is not None else None


def signatures_of(subject) -> QuerySet[Signature]:
    return signatures_for(subject).order_by("signed_at", "id")


def signatures_by_subject(subjects) -> dict[int, list[Signature]]:
    """The signatures of many records of one model in one query: subject pk → its signatures in signing order.

    Lists use this so that showing each row's signatures costs one query for the page, not one per row."""
    subjects = list(subjects)
    by_subject: dict[int, list[Signature]] = {subject.pk: [] for subject in subjects}
    if not subjects:
        return by_subject
    for signature in (
        Signature.objects.filter(subject_type=record_type(subjects[0]), subject_id__in=list(by_subject))
        .select_related("signer")
        .order_by("signed_at", "id")
    ):
        by_subject[signature.subject_id].append(signature)
    return by_subject


def audit_events(
    *,
    user: User,
    token: ApiToken | None = None,
    product: str = "",
    object_human_id: str = "",
    actor: str = "",
    action: str = "",
    since=None,
    until=None,
) -> QuerySet[AuditEvent]:
    """Audit events of the products the caller may see; administrators also see events of no product."""
    keys = list(Product.objects.filter(id__in=visible_product_ids(user, token)).values_list("key", flat=True))
    queryset = AuditEvent.objects.all()
    if user.is_superuser and token is None:
        pass
    else:
        queryset = queryset.filter(product_key__in=keys)
    if product:
        queryset = queryset.filter(product_key=product)
    if object_human_id:
        queryset = queryset.filter(object_human_id__iexact=object_human_id)
    if actor:
        queryset = queryset.filter(Q(actor_name__icontains=actor) | Q(actor__username=actor))
    if action:
        queryset = queryset.filter(action__startswith=action)
    if since is not None:
        queryset = queryset.filter(at__gte=since)
    if until is not None:
        queryset = queryset.filter(at__lte=until)
    return queryset.order_by("-id")


def policy_versions(product) -> QuerySet[PolicyVersion]:
    return product.policy_versions.select_related("author").order_by("-version")


def policy_versions_with_signatures(product) -> list[tuple[PolicyVersion, Signature | None]]:
    """Every version of a product's policy, newest first, each with the standing signature that activated it.

    Two queries whatever the number of versions (the history page and the API list both read this).
    """
    versions = list(policy_versions(product).select_related("product"))
    signatures = {
        signature.subject_id: signature
        for signature in Signature.objects.filter(
            subject_type=record_type(PolicyVersion),
            subject_id__in=[version.pk for version in versions],
            invalidated_at__isnull=True,
        ).select_related("signer")
    }
    return [(version, signatures.get(version.pk)) for version in versions]
