"""Roles per product (django-guardian object permissions) and global roles (groups named after a role)."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, remove_perm

from changecontrol import audit
from changecontrol.models import Product, Role, User
from common.errors import ValidationFailed

ROLE_PERMISSION_PREFIX = "role_"


def _codename(role: str) -> str:
    return f"{ROLE_PERMISSION_PREFIX}{role}"


def role_map(user: User) -> dict[int, frozenset[str]]:
    """product id → the roles the person holds there (per-product grants plus global group roles)."""
    if not user or not user.is_authenticated:
        return {}
    cached = getattr(user, "_custody_role_map", None)
    if cached is not None:
        return cached
    content_type = ContentType.objects.get_for_model(Product)
    per_product: dict[int, set[str]] = {}
    rows = UserObjectPermission.objects.filter(
        user=user, content_type=content_type, permission__codename__startswith=ROLE_PERMISSION_PREFIX
    ).values_list("object_pk", "permission__codename")
    for object_pk, codename in rows:
        per_product.setdefault(int(object_pk), set()).add(codename.removeprefix(ROLE_PERMISSION_PREFIX))
    global_roles = {name for name in user.groups.values_list("name", flat=True) if name in Role.values}
    if user.is_superuser:
        global_roles.add(Role.ADMIN)
    if global_roles:
        for product_id in Product.objects.values_list("id", flat=True):
            per_product.setdefault(product_id, set()).update(global_roles)
    result = {product_id: frozenset(roles) for product_id, roles in per_product.items()}
    user._custody_role_map = result
    return result


def roles_of(user: User, product: Product) -> frozenset[str]:
    return role_map(user).get(product.pk, frozenset())


def has_role(user: User, product: Product, *roles: str) -> bool:
    return bool(roles_of(user, product) & set(roles))


def forget_cached_roles(user: User) -> None:
    if hasattr(user, "_custody_role_map"):
        del user._custody_role_map


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationFailed(f"unknown role {role!r}; roles are: {', '.join(Role.values)}")


@transaction.atomic
def role_grant(*, actor: User | None, user: User, product: Product, role: str) -> None:
    """Give a person a role on one product (audited: role grants are controlled records)."""
    _check_role(role)
    if role in roles_of(user, product):
        return
    assign_perm(f"changecontrol.{_codename(role)}", user, product)
    forget_cached_roles(user)
    audit.record(
        actor=actor,
        action="role.granted",
        obj=product,
        after={"user": user.username, "role": role},
        object_human_id=f"{product.key}:{user.username}",
    )


@transaction.atomic
def role_revoke(*, actor: User | None, user: User, product: Product, role: str, reason: str = "") -> None:
    _check_role(role)
    remove_perm(f"changecontrol.{_codename(role)}", user, product)
    forget_cached_roles(user)
    audit.record(
        actor=actor,
        action="role.revoked",
        obj=product,
        before={"user": user.username, "role": role},
        reason=reason,
        object_human_id=f"{product.key}:{user.username}",
    )


@transaction.atomic
def global_role_grant(*, actor: User | None, user: User, role: str) -> None:
    """A role on every product (e.g. a company-wide auditor), held through a group named after the role."""
    _check_role(role)
    group, _ = Group.objects.get_or_create(name=role)
    group.user_set.add(user)
    forget_cached_roles(user)
    audit.record(actor=actor, action="role.granted_globally", obj=user, after={"user": user.username, "role": role})


def role_permissions() -> list[Permission]:
    return list(Permission.objects.filter(codename__startswith=ROLE_PERMISSION_PREFIX))
