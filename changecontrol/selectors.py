"""Reads of the core domain (filters shared by pages and the API)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from changecontrol.access import visible_product_ids
from changecontrol.esign import signatures_for
from changecontrol.models import ApiToken, AuditEvent, ChangeRequest, Product, Signature, User


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


def signatures_of(subject) -> QuerySet[Signature]:
    return signatures_for(subject).order_by("signed_at", "id")


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
