"""The one way in: which products a caller may see, and fetching records that 404 when hidden.

A person sees the products where they hold any role. A token sees the products it is scoped to (and, for a
person's own token, only those the person may also see). Missing and hidden look the same: 404.
"""

from __future__ import annotations

from django.db.models import Model, QuerySet
from django.http import Http404

from changecontrol.models import ApiToken, Product, User
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
