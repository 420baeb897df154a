"""Bearer tokens for CI and personal use: `Authorization: Bearer <token>`, looked up by hash."""

from __future__ import annotations

import dataclasses
import secrets

from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from changecontrol import audit, request_context
from changecontrol.errors import ValidationFailed
from changecontrol.models import ApiToken, Product, User

TOKEN_PREFIX = "cst_"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate a request by its bearer token; `request.auth` is then the ApiToken."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0] != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header must be 'Bearer <token>'")
        token = (
            ApiToken.objects.select_related("user")
            .filter(token_sha256=ApiToken.hash_secret(parts[1]), revoked_at__isnull=True)
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("the token is unknown or revoked; ask an administrator for a new one")
        # Writes made with a token name it in the audit trail (DESIGN §6).
        request_context.activate(
            dataclasses.replace(request_context.current(), via_token=f"{token.name} ({token.prefix})")
        )
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)  # throttled: not on every request
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


@transaction.atomic
def token_create(
    *, actor: User | None, name: str, user: User, products: list[Product], scopes: list[str]
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is shown once and stored only as a hash."""
    unknown = sorted(set(scopes) - set(ApiToken.SCOPES))
    if unknown:
        raise ValidationFailed(f"unknown scopes {', '.join(unknown)}; scopes are: {', '.join(ApiToken.SCOPES)}")
    if not products:
        raise ValidationFailed("a token must be scoped to at least one product")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        user=user,
        prefix=secret[:10],
        token_sha256=ApiToken.hash_secret(secret),
        scopes=sorted(set(scopes)),
        created_by=actor,
    )
    token.products.set(products)
    audit.record(
        actor=actor,
        action="token.created",
        obj=token,
        after={"name": name, "user": user.username, "products": [p.key for p in products], "scopes": token.scopes},
        product_key=products[0].key if len(products) == 1 else "",
    )
    return token, secret


@transaction.atomic
def token_revoke(*, actor: User | None, token: ApiToken, reason: str = "") -> None:
    if token.revoked_at is not None:
        return
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    audit.record(actor=actor, action="token.revoked", obj=token, reason=reason)
