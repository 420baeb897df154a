"""Sign-in with lockout (Part 11 §11.300(d)): failures are audited and lock the account at a threshold."""

from __future__ import annotations

import hashlib
import ipaddress

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from changecontrol import audit
from changecontrol.models import Product, User
from common.middleware import client_address


def account_refusal(user: User) -> str:
    """Why this account may not act now (locked, deactivated), as a sentence; empty when it may.

    Every way in asks this on every request: a password, a session and a personal token alike, so a lock or a
    deactivation takes effect at once, not when a session or a token happens to expire."""
    if not user.is_active:
        return "this account is deactivated; ask an administrator if it should act again"
    if user.is_locked():
        return (
            "this account is locked after repeated failed password attempts; an administrator can unlock it "
            "(or wait until the lock expires)"
        )
    return ""


class SignInThrottle:
    """Failed sign-ins counted in the cache (shared by every web process) per (username as typed, client) and per
    client across usernames; docs/security.md "Sign-in, lockout and throttling".

    Keyed on the name as typed, known or not, so the refusal reads and takes the same for every username: a throttle
    that only known accounts reach would list them."""

    def __init__(self, username: str, client: str):
        self.cache = caches[settings.CUSTODY_SIGNIN_CACHE]
        self.window = settings.CUSTODY_SIGNIN_WINDOW_MINUTES * 60
        self.client = client_key(client)
        pair = hashlib.sha256(f"{username.strip().lower()}\n{self.client}".encode()).hexdigest()
        self.pair_key = f"custody:signin:pair:{pair}"
        self.client_key = f"custody:signin:client:{hashlib.sha256(self.client.encode()).hexdigest()}"

    def refused(self) -> bool:
        counts = self.cache.get_many([self.pair_key, self.client_key])
        return (
            counts.get(self.pair_key, 0) >= settings.CUSTODY_LOCKOUT_THRESHOLD
            or counts.get(self.client_key, 0) >= settings.CUSTODY_SIGNIN_CLIENT_LIMIT
        )

    def failed(self) -> None:
        for key in (self.pair_key, self.client_key):
            self.cache.add(key, 0, self.window)
            try:
                self.cache.incr(key)
            except ValueError:  # expired between add and incr
                self.cache.set(key, 1, self.window)

    def succeeded(self) -> None:
        self.cache.delete(self.pair_key)

    def clients_failing(self, user: User) -> int:
        """Record this client among those that failed on the account in the window; how many distinct ones did."""
        key = f"custody:signin:account-clients:{user.pk}"
        clients = set(self.cache.get(key) or ()) | {self.client}
        self.cache.set(key, sorted(clients), self.window)
        return len(clients)


def client_key(address: str) -> str:
    """The client a sign-in counts against: its IPv4 address, or its IPv6 /64 (one host holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _hash_a_password(password: str) -> None:
    # The cost of checking a password, spent where no stored hash is checked, so that an unknown, locked or
    # deactivated account answers in the time a wrong password takes (no listing of usernames by timing).
    User().set_password(password)


class LockoutModelBackend(ModelBackend):
    """Django's password check, refusing locked accounts and counting failures toward throttling and lockout."""

    def user_can_authenticate(self, user) -> bool:
        # Also asked for the user of every session (get_user): a locked account's open session ends.
        return super().user_can_authenticate(user) and not account_refusal(user)

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        throttle = SignInThrottle(username, client_address(request) if request is not None else "")
        if throttle.refused():
            return None  # the attempt is not even checked: the same for known and unknown usernames
        user = User.objects.filter(username=username).first()
        if user is None:
            _hash_a_password(password)
            throttle.failed()
            with transaction.atomic():
                audit.record(actor=None, action="login.failed", reason=f"unknown username {username[:150]!r}")
            return None
        if user.is_locked():
            _hash_a_password(password)
            throttle.failed()
            with transaction.atomic():
                audit.record(actor=user, action="login.refused_locked", obj=user)
            return None
        authenticated = super().authenticate(request, username=username, password=password, **kwargs)
        if authenticated is None:
            throttle.failed()
            account_register_failure(user=user, context="login", clients=throttle.clients_failing(user))
            return None
        throttle.succeeded()
        account_register_success(user=authenticated)
        return authenticated


def account_register_failure(
    *, user: User, context: str, product: Product | None = None, subject_human_id: str = "", clients: int = 0
) -> bool:
    """Count one failed password (sign-in or signature); lock at the threshold. Returns whether now locked.

    A failed signature is typed by the signed-in person, so it counts toward the lock alone. A failed sign-in can
    be typed by anyone: it locks the account only once failures came from `CUSTODY_LOCKOUT_CLIENTS` distinct
    clients (`clients` of them so far), so that an outsider at one address can throttle only their own attempts.

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
        enough_clients = context != "login" or clients >= settings.CUSTODY_LOCKOUT_CLIENTS
        newly_locked = (
            user.locked_at is None and user.failed_login_count >= settings.CUSTODY_LOCKOUT_THRESHOLD and enough_clients
        )
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
            if context == "login":
                # A failed signature comes from the person's own session, which must live to say "now locked": it
                # and their other sessions end at their next request (SessionRefusalMiddleware).
                account_sessions_end(user=user)
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


def account_sessions_end(*, user: User) -> int:
    """Delete the account's stored sessions (on a lock or a deactivation); returns how many ended.

    Sessions kept in the database are found by decoding each unexpired one (locks and deactivations are rare).
    Whatever the session engine, `SessionRefusalMiddleware` also refuses the account on its next request."""
    if settings.SESSION_ENGINE not in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        return 0
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get(SESSION_KEY)) == str(user.pk):
            store(session_key=session.session_key).delete()
            ended += 1
    return ended


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
