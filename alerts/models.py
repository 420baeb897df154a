"""The alert outbox: subscriptions, alerts written in the caller's transaction, deliveries and their attempts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from changecontrol.models import Product


class EventKind(models.TextChoices):
    UNAUTHORISED_DEPLOYMENT = "unauthorised_deployment", "Unauthorised deployment"
    DRIFT = "drift", "Drift"
    BREAK_GLASS = "break_glass", "Break-glass deployment"
    REVIEW_OVERDUE = "review_overdue", "Retrospective review overdue"
    APPROVAL_REQUESTED = "approval_requested", "Approval requested"
    LOCKOUT = "lockout", "Account locked out"
    AUDIT_INTEGRITY = "audit_integrity", "Audit trail or witness check failed"
    VULNERABILITY = "vulnerability", "Released version affected by an advisory"


class AlertSubscription(models.Model):
    """Where one product's alerts of one kind go: an e-mail address or a webhook URL signed with a secret."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class BodyFormat(models.TextChoices):
        CUSTODY = "custody", "Custody JSON"
        SLACK = "slack", "Slack-compatible"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="alert_subscriptions")
    event_kind = models.CharField(max_length=40, choices=EventKind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=500, help_text="An e-mail address, or an http(s) URL without credentials.")
    # The HMAC key must be usable to sign, so it is kept encrypted (Fernet), never hashed; shown once at creation.
    secret_encrypted = models.TextField(blank=True)
    body_format = models.CharField(max_length=10, choices=BodyFormat.choices, default=BodyFormat.CUSTODY)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["event_kind", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(event_kind__in=EventKind.values), name="%(app_label)s_%(class)s_event_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=["email", "webhook"]), name="%(app_label)s_%(class)s_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(body_format__in=["custody", "slack"]), name="%(app_label)s_%(class)s_body_format_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel="email") | ~Q(secret_encrypted=""),
                name="%(app_label)s_%(class)s_webhook_has_secret",
            ),
            models.UniqueConstraint(
                fields=["product", "event_kind", "channel", "target"], name="%(app_label)s_%(class)s_unique_target"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.key} {self.event_kind} → {self.get_channel_display()} {self.target}"


class Alert(models.Model):
    """One thing worth telling people about, written in the same transaction as the fact it reports."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts")
    event_kind = models.CharField(max_length=40, choices=EventKind.choices)
    subject = models.CharField(max_length=300)
    body = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    dedupe_key = models.CharField(max_length=200, blank=True, help_text="Raising the same key twice alerts once.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(event_kind__in=EventKind.values), name="%(app_label)s_%(class)s_event_kind_valid"
            ),
            # Two racing callers raising the same fact: the database, not a read-then-write, keeps one.
            models.UniqueConstraint(
                fields=["product", "event_kind", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                nulls_distinct=False,
                name="%(app_label)s_%(class)s_unique_dedupe_key",
            ),
        ]

    def __str__(self) -> str:
        return f"ALR-{self.pk} {self.event_kind}: {self.subject}"

    @property
    def human_id(self) -> str:
        return f"ALR-{self.pk}"


class Delivery(models.Model):
    """One alert on its way to one subscription: pending until delivered, or dead after the last attempt."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"  # an attempt failed; a retry is scheduled at next_attempt_at
        DEAD = "dead", "Dead"  # gave up: every attempt failed

    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="deliveries")
    subscription = models.ForeignKey(AlertSubscription, on_delete=models.PROTECT, related_name="deliveries")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "delivered", "failed", "dead"]),
                name="%(app_label)s_%(class)s_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state="delivered") | Q(delivered_at__isnull=False),
                name="%(app_label)s_%(class)s_delivered_has_time",
            ),
            models.UniqueConstraint(
                fields=["alert", "subscription"], name="%(app_label)s_%(class)s_unique_per_subscription"
            ),
        ]
        indexes = [
            # serves the redelivery sweep: due deliveries that are still waiting
            models.Index(fields=["state", "next_attempt_at"], name="alerts_delivery_due_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of ALR-{self.alert_id} ({self.state})"

    def is_finished(self) -> bool:
        return self.state in (self.State.DELIVERED, self.State.DEAD)


class DeliveryAttempt(models.Model):
    """One try at delivering: when, the HTTP status (webhooks) or the error, and how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        outcome = self.status_code or self.error[:40]
        return f"attempt on delivery {self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S} ({outcome})"
