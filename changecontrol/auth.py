"""Sign-in with lockout (Part 11 §11.300(d)): failures are audited and lock the account at a threshold."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from changecontrol import audit
from changecontrol.models import Product, User


class LockoutModelBackend(ModelBackend):
    """Django's password check, refusing locked accounts and counting failures toward lockout."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            with transaction.atomic():
                audit.record(actor=None, action="login.failed", reason=f"unknown username {username[:150]!r}")
            return None
        if user.is_locked():
            with transaction.atomic():
                audit.record(actor=user, action="login.refused_locked", obj=user)
            return None
        authenticated = super().authenticate(request, username=username, password=password, **kwargs)
        if authenticated is None:
            account_register_failure(user=user, context="login")
            return None
        account_register_success(user=authenticated)
        return authenticated


def account_register_failure(
    *, user: User, context: str, product: Product | None = None, subject_human_id: str = ""
) -> bool:
    """Count one failed password (sign-in or signature); lock at the threshold. Returns whether now locked.

    A failed signature names the record being signed and its product, so the product's auditor finds it in that
    record's trail (DESIGN §6); a failed sign-in belongs to the account. Runs in its own transaction so the record
    survives the refusal that follows it.
    """
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(failed_login_count=F("failed_login_count") + 1)
        user.refresh_from_db(fields=["failed_login_count", "locked_at"])
        if subject_human_id:
            audit.record(
                actor=user,
                action=f"{context}.failed",
                product_key=product.key if product is not None else None,
                object_human_id=subject_human_id,
                after={"user": user.username, "failed_attempts": user.failed_login_count},
            )
        else:
            audit.record(
                actor=user,
                action=f"{context}.failed",
                obj=user,
                after={"failed_attempts": user.failed_login_count},
            )
        newly_locked = user.locked_at is None and user.failed_login_count >= settings.CUSTODY_LOCKOUT_THRESHOLD
        if newly_locked:
            user.locked_at = timezone.now()
            User.objects.filter(pk=user.pk).update(locked_at=user.locked_at)
            audit.record(
                actor=None,
                action="account.locked",
                obj=user,
                after={"failed_attempts": user.failed_login_count},
                reason=f"{user.failed_login_count} failed password attempts",
            )
            transaction.on_commit(lambda: _alert_lockout(user))
        return user.is_locked()


def account_register_success(*, user: User) -> None:
    if user.failed_login_count or user.locked_at:
        User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_at=None)
        user.failed_login_count, user.locked_at = 0, None


@transaction.atomic
def account_unlock(*, actor: User, user: User, reason: str) -> None:
    User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_at=None)
    audit.record(actor=actor, action="account.unlocked", obj=user, reason=reason)


def _alert_lockout(user: User) -> None:
    subject = f"Custody account locked: {user.username}"
    body = (
        f"The account {user.username} ({user.printed_name}) was locked after "
        f"{user.failed_login_count} failed password attempts at {timezone.now():%Y-%m-%d %H:%M:%S} UTC.\n"
        "Check the audit trail for the attempts, then unlock the account in the administration pages if appropriate."
    )
    mail_admins(subject, body, fail_silently=True)
    admin_addresses = list(
        User.objects.filter(is_superuser=True, is_active=True).exclude(email="").values_list("email", flat=True)
    )
    if admin_addresses:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, admin_addresses, fail_silently=True)
