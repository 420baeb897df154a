"""Django admin for the alert outbox: read-only views; subscriptions change through the audited settings page."""

from __future__ import annotations

from django.contrib import admin

from alerts.models import Alert, AlertSubscription, Delivery, DeliveryAttempt


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertSubscription)
class AlertSubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("product", "event_kind", "channel", "target", "body_format", "active", "created_at")
    list_filter = ("product", "event_kind", "channel", "active")
    exclude = ("secret_encrypted",)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("id", "product", "event_kind", "subject", "created_at")
    list_filter = ("product", "event_kind")


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("at", "status_code", "error", "duration_ms", "succeeded")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "alert", "subscription", "state", "attempts", "next_attempt_at", "delivered_at")
    list_filter = ("state",)
    inlines = [DeliveryAttemptInline]
