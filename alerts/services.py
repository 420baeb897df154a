"""Writes of the alert outbox: subscriptions, raising an alert, and recording each delivery attempt.

An alert is written INSIDE the caller's transaction, so it exists if and only if the fact it reports was
committed; its deliveries are queued to Celery with `transaction.on_commit` (never before the commit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.models import Alert, AlertSubscription, Delivery, DeliveryAttempt, EventKind
from changecontrol import audit
from changecontrol.models import Product, User
from common.canonical import canonical_json, jsonable
from common.env import env_list
from common.errors import ValidationFailed
from common.links import check_url

DEFAULT_BACKOFF_SECONDS = [30, 120, 600, 3600, 21600]  # 30 s, 2 min, 10 min, 1 h, 6 h
DEFAULT_MAX_ATTEMPTS = 6
WEBHOOK_TIMEOUT_SECONDS = 10
# A queued retry arrives a moment after next_attempt_at; a duplicate message arriving well before it is early.
EARLY_TOLERANCE = timedelta(seconds=2)


# ---------------------------------------------------------------- settings read where they are used


def backoff_schedule() -> list[int]:
    """Seconds to wait after the 1st, 2nd, … failure (the last value repeats); settings, then environment."""
    configured = getattr(settings, "CUSTODY_ALERT_BACKOFF_SECONDS", None)
    if configured is None:
        configured = env_list("CUSTODY_ALERT_BACKOFF_SECONDS", [str(s) for s in DEFAULT_BACKOFF_SECONDS])
    try:
        schedule = [int(value) for value in configured]
    except (TypeError, ValueError):
        raise ValidationFailed(f"CUSTODY_ALERT_BACKOFF_SECONDS must be whole seconds, not {configured!r}") from None
    if not schedule or min(schedule) < 0:
        raise ValidationFailed("CUSTODY_ALERT_BACKOFF_SECONDS must list at least one non-negative number of seconds")
    return schedule


def max_attempts() -> int:
    configured = getattr(settings, "CUSTODY_ALERT_MAX_ATTEMPTS", None)
    if configured is None:
        configured = (env_list("CUSTODY_ALERT_MAX_ATTEMPTS", [str(DEFAULT_MAX_ATTEMPTS)]) or [DEFAULT_MAX_ATTEMPTS])[0]
    return max(1, int(configured))


def backoff_after(failures: int) -> int:
    """The wait before the next try after `failures` failed attempts (1 → 30 s, 2 → 2 min, …)."""
    schedule = backoff_schedule()
    return schedule[min(failures, len(schedule)) - 1]


# ---------------------------------------------------------------- secrets and targets


def _fernet() -> Fernet:
    configured = getattr(settings, "CUSTODY_CREDENTIALS_KEY", "")
    if configured:
        return Fernet(configured.encode())
    # Derived from SECRET_KEY so a fresh install works; rotate by setting CUSTODY_CREDENTIALS_KEY.
    derived = hashlib.sha256(b"custody-alert-webhook-secrets:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def subscription_secret(subscription: AlertSubscription) -> str:
    try:
        return _fernet().decrypt(subscription.secret_encrypted.encode()).decode()
    except InvalidToken:
        raise ValidationFailed(
            f"the webhook secret of subscription {subscription.pk} cannot be decrypted (was the credentials key "
            "rotated?); create the subscription again"
        ) from None


def check_target(*, channel: str, target: str) -> str:
    """An e-mail address, or an http/https URL with a host and without credentials in it."""
    target = (target or "").strip()
    if channel == AlertSubscription.Channel.EMAIL:
        try:
            validate_email(target)
        except ValidationError:
            raise ValidationFailed(f"{target!r} is not an e-mail address") from None
        return target
    if channel != AlertSubscription.Channel.WEBHOOK:
        raise ValidationFailed(f"unknown channel {channel!r}; use one of {', '.join(AlertSubscription.Channel.values)}")
    return check_url(target, field="target")


def sign_body(body: bytes, secret: str) -> str:
    """The X-Custody-Signature value: `sha256=` + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- subscriptions


@transaction.atomic
def alert_subscription_create(
    *, actor: User, product: Product, event_kind: str, channel: str, target: str, body_format: str = "custody"
) -> tuple[AlertSubscription, str]:
    """Subscribe an address or URL to one kind of a product's alerts; returns the webhook secret (shown once)."""
    if event_kind not in EventKind.values:
        raise ValidationFailed(f"unknown event kind {event_kind!r}; use one of {', '.join(EventKind.values)}")
    if body_format not in AlertSubscription.BodyFormat.values:
        raise ValidationFailed(f"unknown body format {body_format!r}; use custody or slack")
    target = check_target(channel=channel, target=target)
    secret = secrets.token_urlsafe(32) if channel == AlertSubscription.Channel.WEBHOOK else ""
    if AlertSubscription.objects.filter(
        product=product, event_kind=event_kind, channel=channel, target=target
    ).exists():
        raise ValidationFailed(f"{target} is already subscribed to {event_kind} alerts of {product.key}")
    subscription = AlertSubscription.objects.create(
        product=product,
        event_kind=event_kind,
        channel=channel,
        target=target,
        secret_encrypted=_fernet().encrypt(secret.encode()).decode() if secret else "",
        body_format=body_format,
        created_by=actor,
    )
    # The secret itself is never audited: the trail is read by many, the secret by the receiver only.
    audit.record(
        actor=actor,
        action="alert_subscription.created",
        obj=subscription,
        after={"event_kind": event_kind, "channel": channel, "target": target, "body_format": body_format},
        object_human_id=f"{product.key}:{event_kind}:{subscription.pk}",
    )
    return subscription, secret


@transaction.atomic
def alert_subscription_set_active(*, actor: User, subscription: AlertSubscription, active: bool) -> AlertSubscription:
    """Pause or resume a subscription (deliveries already queued still go out)."""
    subscription = AlertSubscription.objects.select_for_update().select_related("product").get(pk=subscription.pk)
    if subscription.active == active:
        return subscription
    before = subscription.active
    subscription.active = active
    subscription.save(update_fields=["active"])
    audit.record(
        actor=actor,
        action="alert_subscription.activated" if active else "alert_subscription.deactivated",
        obj=subscription,
        before={"active": before},
        after={"active": active},
        object_human_id=f"{subscription.product.key}:{subscription.event_kind}:{subscription.pk}",
    )
    return subscription


# ---------------------------------------------------------------- raising an alert


def alert_raise(*, product: Product | None, event_kind: str, subject: str, body: dict, dedupe_key: str = "") -> Alert:
    """Write an alert and one delivery per matching active subscription, in the CALLER's transaction.

    Deliveries are queued only on commit: a rolled-back fact leaves neither an alert nor a message. Raising the
    same non-empty dedupe_key again for the same product and kind returns the first alert and sends nothing.
    """
    if event_kind not in EventKind.values:
        raise ValidationFailed(f"unknown event kind {event_kind!r}; use one of {', '.join(EventKind.values)}")
    with transaction.atomic():
        if dedupe_key:
            existing = Alert.objects.filter(product=product, event_kind=event_kind, dedupe_key=dedupe_key).first()
            if existing is not None:
                return existing
        now = timezone.now()
        try:
            # A savepoint, so losing a race on the dedupe key does not poison the caller's transaction.
            with transaction.atomic():
                alert = Alert.objects.create(
                    product=product,
                    event_kind=event_kind,
                    subject=subject[:300],
                    body=jsonable(body) or {},
                    dedupe_key=dedupe_key,
                    created_at=now,
                )
        except IntegrityError:
            return Alert.objects.get(product=product, event_kind=event_kind, dedupe_key=dedupe_key)
        subscriptions = (
            AlertSubscription.objects.filter(product=product, event_kind=event_kind, active=True)
            if product is not None
            else AlertSubscription.objects.none()
        )
        # next_attempt_at = now: if the queued message is lost, the sweep finds the delivery due.
        deliveries = Delivery.objects.bulk_create(
            [Delivery(alert=alert, subscription=s, next_attempt_at=now, created_at=now) for s in subscriptions]
        )
        audit.record(
            actor=None,
            action="alert.raised",
            obj=alert,
            after={
                "event_kind": event_kind,
                "subject": alert.subject,
                "dedupe_key": dedupe_key,
                "deliveries": [
                    {"id": d.pk, "channel": d.subscription.channel, "target": d.subscription.target} for d in deliveries
                ],
            },
            product_key=product.key if product is not None else "",
        )
        for delivery in deliveries:
            _queue_delivery(delivery.pk)
    return alert


def _queue_delivery(delivery_id: int, countdown: int | None = None) -> None:
    from alerts.tasks import deliver

    transaction.on_commit(lambda: deliver.apply_async(args=[delivery_id], countdown=countdown))


# ---------------------------------------------------------------- bodies


def payload_custody(delivery: Delivery) -> dict:
    alert = delivery.alert
    return {
        "alert": alert.human_id,
        "delivery": delivery.pk,
        "event": alert.event_kind,
        "product": alert.product.key if alert.product else None,
        "subject": alert.subject,
        "body": alert.body,
        "created_at": alert.created_at.isoformat(),
    }


def payload_slack(delivery: Delivery) -> dict:
    """Slack's incoming-webhook shape: `text` for notifications and fallbacks, `blocks` for the message."""
    alert = delivery.alert
    product = alert.product.key if alert.product else "custody"
    label = EventKind(alert.event_kind).label
    fields = [
        {"type": "mrkdwn", "text": f"*{key}*\n{value if isinstance(value, str) else json.dumps(value)}"[:2000]}
        for key, value in list((alert.body or {}).items())[:10]  # Slack allows at most 10 fields per section
    ]
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{label}: {alert.subject}"[:150]}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Custody · {product} · {alert.human_id} · {alert.created_at:%Y-%m-%d %H:%M:%S} UTC",
                }
            ],
        }
    )
    return {"text": f"[Custody {product}] {label}: {alert.subject}", "blocks": blocks}


def webhook_request(delivery: Delivery) -> tuple[bytes, dict[str, str]]:
    """The exact body bytes and headers of a webhook delivery (the signature covers these bytes)."""
    subscription = delivery.subscription
    payload = (
        payload_slack(delivery)
        if subscription.body_format == AlertSubscription.BodyFormat.SLACK
        else payload_custody(delivery)
    )
    body = canonical_json(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Custody/{getattr(settings, 'CUSTODY_VERSION', '0')}",
        "X-Custody-Event": delivery.alert.event_kind,
        "X-Custody-Delivery": str(delivery.pk),
        "X-Custody-Signature": sign_body(body, subscription_secret(subscription)),
    }
    return body, headers


def email_text(delivery: Delivery) -> tuple[str, str]:
    alert = delivery.alert
    product = alert.product.key if alert.product else "Custody"
    lines = [alert.subject, ""]
    lines += [f"{key}: {value}" for key, value in (alert.body or {}).items()]
    lines += ["", f"{alert.human_id}, raised {alert.created_at:%Y-%m-%d %H:%M:%S} UTC by Custody."]
    return f"[Custody {product}] {EventKind(alert.event_kind).label}: {alert.subject}"[:250], "\n".join(lines)


# ---------------------------------------------------------------- delivering


@dataclass(frozen=True)
class Outcome:
    """What one call to `delivery_attempt` did: its state afterwards and, when failed, the retry countdown."""

    state: str
    retry_in: int | None = None
    skipped: str = ""


def _send(delivery: Delivery) -> tuple[int | None, str]:
    """(status code, error) of one send; error is empty on success."""
    subscription = delivery.subscription
    if subscription.channel == AlertSubscription.Channel.EMAIL:
        subject, text = email_text(delivery)
        try:
            send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, [subscription.target], fail_silently=False)
        except Exception as exc:  # noqa: BLE001 — any mail failure is a failed attempt, logged verbatim
            return None, f"{type(exc).__name__}: {exc}"[:2000]
        return None, ""
    try:
        body, headers = webhook_request(delivery)
    except ValidationFailed as exc:
        return None, exc.detail
    try:
        # No redirects: a signed body must reach the URL an administrator configured, nowhere else.
        response = requests.post(
            subscription.target, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS, allow_redirects=False
        )
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:2000]
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}: {response.text[:500]}"


def delivery_attempt(*, delivery_id: int) -> Outcome:
    """Try one delivery once, log the attempt, and decide: delivered, retry later (failed), or dead.

    Idempotent for redelivered messages: a finished delivery, one another worker holds, or one not yet due
    is skipped without sending.
    """
    with transaction.atomic():
        # 1. Lock the row; a second worker holding the same message skips instead of sending twice.
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("alert__product", "subscription")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            exists = Delivery.objects.filter(pk=delivery_id).exists()
            return Outcome(state="", skipped="locked by another worker" if exists else "no such delivery")
        # 2. Check the state.
        if delivery.is_finished():
            return Outcome(state=delivery.state, skipped=f"already {delivery.state}")
        now = timezone.now()
        if delivery.next_attempt_at and delivery.next_attempt_at - EARLY_TOLERANCE > now:
            return Outcome(state=delivery.state, skipped="not due yet")
        # 3. Send and log the attempt.
        started = time.monotonic()
        status_code, error = _send(delivery)
        duration_ms = int((time.monotonic() - started) * 1000)
        now = timezone.now()
        DeliveryAttempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            succeeded=not error,
        )
        delivery.attempts += 1
        delivery.last_status_code = status_code
        delivery.last_error = error
        fields = ["attempts", "last_status_code", "last_error", "state", "next_attempt_at"]
        if not error:
            delivery.state = Delivery.State.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            delivery.save(update_fields=[*fields, "delivered_at"])
            return Outcome(state=delivery.state)
        if delivery.attempts >= max_attempts():
            delivery.state = Delivery.State.DEAD
            delivery.next_attempt_at = None
            delivery.save(update_fields=fields)
            # A dead alert means someone was not told: that is worth a line in the audit trail.
            audit.record(
                actor=None,
                action="alert.delivery_dead",
                obj=delivery.alert,
                after={
                    "delivery": delivery.pk,
                    "target": delivery.subscription.target,
                    "attempts": delivery.attempts,
                    "last_error": error,
                },
                product_key=delivery.alert.product.key if delivery.alert.product else "",
            )
            return Outcome(state=delivery.state)
        retry_in = backoff_after(delivery.attempts)
        delivery.state = Delivery.State.FAILED
        delivery.next_attempt_at = now + timedelta(seconds=retry_in)
        delivery.save(update_fields=fields)
        return Outcome(state=delivery.state, retry_in=retry_in)


def deliveries_due(*, grace_seconds: int = 60) -> list[int]:
    """Unfinished deliveries whose next attempt is overdue by more than the grace (their message was lost)."""
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    return list(
        Delivery.objects.filter(state__in=[Delivery.State.PENDING, Delivery.State.FAILED], next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
