"""Helpers every API view uses: the caller's token, product lookup, human-ID lookup (404 when hidden)."""

from __future__ import annotations

import re

from django.http import Http404

from changecontrol.access import get_visible_or_404, require_scope
from changecontrol.models import ApiToken, ChangeRequest, Product
from common.errors import NotPermitted


def token_of(request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


def product_for(request, key: str, *, scope: str | None = None) -> Product:
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


def require_person(request, *, scope: str) -> None:
    """Actions that need a person's judgement: a session, or a person's own token with the scope."""
    token = token_of(request)
    if request.user.is_service_account:
        raise NotPermitted(
            "this action needs a person: use a session or a personal token, not a service account's token"
        )
    require_scope(token, scope)
