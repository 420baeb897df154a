"""The one way in: which products a caller may see, and fetching records that 404 when hidden.

A person sees the products where they hold any role. A token sees the products it is scoped to (and, for a
person's own token, only those the person may also see). Missing and hidden look the same: 404. Pages and API views
both come in here: a page's request simply carries no token.
"""

from __future__ import annotations

import re

from django.db.models import Model, QuerySet
from django.http import Http404

from changecontrol.models import ApiToken, ChangeRequest, Product, Signature, User
from changecontrol.roles import role_map
from common.errors import NotPermitted


def visible_product_ids(user: User, token: ApiToken | None = None) -> set[int]:
    if not user or not user.is_authenticated:
        return set()
    if token is not None:
        token_products = set(token.products.values_list("id", flat=True))
        if user.is_service_account:
            return token_products
        return token_products & set(role_map(user))
    return set(role_map(user))


def visible_products(user: User, token: ApiToken | None = None) -> QuerySet[Product]:
    return Product.objects.filter(id__in=visible_product_ids(user, token))


def get_visible_or_404(
    queryset: QuerySet, *, user: User, token: ApiToken | None = None, product_field: str = "product", **lookup
) -> Model:
    """Fetch one record of a product the caller may see; anything else is 404."""
    ids = visible_product_ids(user, token)
    filter_key = "id__in" if product_field == "" else f"{product_field}__in"
    try:
        return queryset.filter(**{filter_key: ids}).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError):
        raise Http404("not found or not visible to you") from None


def require_scope(token: ApiToken | None, scope: str) -> None:
    """A token acts only within its scopes; a person's session is not scope-limited (roles still apply)."""
    if token is not None and not token.has_scope(scope):
        raise NotPermitted(
            f"this token lacks the {scope!r} scope; create a token with --scopes including {scope}",
            required_scope=scope,
        )


def token_of(request) -> ApiToken | None:
    """The API token the request came with; None for a session (and for every page)."""
    auth = getattr(request, "auth", None)  # set by DRF's authentication; a page's HttpRequest has none
    return auth if isinstance(auth, ApiToken) else None


def product_for(request, key: str, *, scope: str | None = None) -> Product:
    """A product the caller may see, by key (404 otherwise); with `scope`, a token must also hold it."""
    product = get_visible_or_404(
        Product.objects.all(), user=request.user, token=token_of(request), product_field="", key=key
    )
    if scope:
        require_scope(token_of(request), scope)
    return product


def parse_human_id(value: str, prefix: str) -> int:
    """'CR-42' or '42' → 42; anything else is 404 (a malformed id names nothing)."""
    match = re.fullmatch(rf"(?:{re.escape(prefix)})?(\d{{1,18}})", value.strip(), flags=re.IGNORECASE)
    if not match:
        raise Http404
    return int(match.group(1))


def change_request_for(request, human_id: str) -> ChangeRequest:
    return get_visible_or_404(
        ChangeRequest.objects.select_related("product", "requester", "policy_version"),
        user=request.user,
        token=token_of(request),
        pk=parse_human_id(human_id, "CR-"),
    )


def signature_for(request, signature_id: str) -> Signature:
    """A signature is seen by whoever may see the signed record's product (hidden and missing are both 404)."""
    return get_visible_or_404(
        Signature.objects.select_related("signer", "product", "policy_version"),
        user=request.user,
        token=token_of(request),
        pk=parse_human_id(str(signature_id), ""),
    )


def require_person(request, *, scope: str) -> None:
    """Actions that need a person's judgement: a session, or a person's own token with the scope."""
    if request.user.is_service_account:
        raise NotPermitted(
            "this action needs a person: use a session or a personal token, not a service account's token"
        )
    require_scope(token_of(request), scope)
