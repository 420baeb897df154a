"""Bearer tokens for CI and personal use: `Authorization: Bearer <token>`, looked up by hash."""

from __future__ import annotations

import dataclasses
import functools
import secrets

from django.db import connection, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from changecontrol import audit
from changecontrol.auth import account_refusal
from changecontrol.models import ApiToken, Product, User
from common import prepared_sql, request_context
from common.errors import ValidationFailed

TOKEN_PREFIX = "cst_"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate a request by its bearer token; `request.auth` is then the ApiToken."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        # RFC 9110 §11.1: the scheme name is case-insensitive (`bearer` is what some HTTP clients send).
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header must be 'Bearer <token>'")
        token = active_token(ApiToken.hash_secret(parts[1]))
        if token is None:
            raise exceptions.AuthenticationFailed("the token is unknown or revoked; ask an administrator for a new one")
        refusal = account_refusal(token.user)
        if refusal:
            # A personal token acts as its person: it stops the moment the account is locked or deactivated.
            raise exceptions.AuthenticationFailed(f"the token {token.prefix}… is refused: {refusal}")
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


class _RowReader:
    """Make model instances from raw column values, converted as the ORM's compiler converts them: the backend's
    converters (SQLite's text datetimes → aware datetimes), then the field's own (JSON text → list). The
    converters are looked up once, not on every request."""

    def __init__(self, model):
        self.model, self.fields = model, list(model._meta.concrete_fields)
        self.names = [f.attname for f in self.fields]
        self.converters = []
        for field in self.fields:
            column = field.get_col(model._meta.db_table)
            found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            self.converters.append([(converter, column) for converter in found])

    def __call__(self, values):
        converted = []
        for converters, value in zip(self.converters, values, strict=True):
            for converter, column in converters:
                value = converter(value, column, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.names, converted)


@functools.cache
def _token_query() -> tuple[str, _RowReader, _RowReader]:
    """The token lookup's SQL and readers of its columns, built once from the models (a new field is read too)."""
    token, user = _RowReader(ApiToken), _RowReader(User)
    columns = [f't."{f.column}"' for f in token.fields] + [f'u."{f.column}"' for f in user.fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {ApiToken._meta.db_table} t"  # noqa: S608 - names from the models
        f" JOIN {User._meta.db_table} u ON u.id = t.user_id"
        " WHERE t.token_sha256 = %s AND t.revoked_at IS NULL"
    )
    return sql, token, user


def active_token(token_sha256: str) -> ApiToken | None:
    """The unrevoked token with this hash, its user loaded, in one prepared statement.

    Every API call starts here, the CI gate's status call most of all. The equivalent
    `ApiToken.objects.select_related("user").filter(...).first()` spends about three times as long building its
    SQL as the database spends answering it."""
    sql, read_token, read_user = _token_query()
    row = prepared_sql.fetchone(sql, [token_sha256])
    if row is None:
        return None
    width = len(read_token.fields)
    token = read_token(row[:width])
    token.user = read_user(row[width:])
    return token


@transaction.atomic
def token_request_check(*, scopes: list[str], products: list[Product]) -> None:
    """Refuse a token request that cannot be granted, before anything is written for it (its account included)."""
    unknown = sorted(set(scopes) - set(ApiToken.SCOPES))
    if unknown:
        raise ValidationFailed(f"unknown scopes {', '.join(unknown)}; scopes are: {', '.join(ApiToken.SCOPES)}")
    if not scopes:
        raise ValidationFailed(f"a token needs at least one scope; scopes are: {', '.join(ApiToken.SCOPES)}")
    if not products:
        raise ValidationFailed("a token must be scoped to at least one product")


@transaction.atomic
def token_create(
    *, actor: User | None, name: str, user: User, products: list[Product], scopes: list[str]
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is shown once and stored only as a hash."""
    token_request_check(scopes=scopes, products=products)
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
