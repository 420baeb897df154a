"""Helpers shared by the management commands (not a command: the leading underscore hides it from Django)."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import transaction

from changecontrol import audit
from changecontrol.models import Product, User


def products_named(keys: str) -> list[Product]:
    """'rsd,lab' → the products, naming every key that does not exist."""
    wanted = [key.strip() for key in keys.split(",") if key.strip()]
    if not wanted:
        raise CommandError("name at least one product with --product")
    found = {product.key: product for product in Product.objects.filter(key__in=wanted)}
    missing = [key for key in wanted if key not in found]
    if missing:
        known = ", ".join(Product.objects.values_list("key", flat=True)) or "none yet"
        raise CommandError(f"no product with key {', '.join(missing)} (products: {known})")
    return [found[key] for key in wanted]


def user_named(username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"no user named {username!r}")
    return user


@transaction.atomic
def account_ensure(
    *,
    actor: User | None,
    username: str,
    full_name: str,
    email: str = "",
    password: str | None = None,
    is_service_account: bool = False,
    is_superuser: bool = False,
) -> tuple[User, bool]:
    """The account with this username, creating it (audited) when missing. Returns (user, created)."""
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, False
    user = User(
        username=username,
        full_name=full_name,
        email=email,
        is_service_account=is_service_account,
        is_superuser=is_superuser,
        is_staff=is_superuser,
    )
    # Service accounts never sign in with a password: they act only through their tokens.
    if password is None or is_service_account:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save()
    audit.record(
        actor=actor,
        action="account.created",
        obj=user,
        after={
            "username": username,
            "full_name": full_name,
            "service_account": is_service_account,
            "superuser": is_superuser,
        },
    )
    return user, True
