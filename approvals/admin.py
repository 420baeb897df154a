"""Read-only admin views of releases, promotions and decisions: they change only through services."""

from django.contrib import admin

from approvals.models import Decision, Promotion, Release


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    list_display = ("product", "version", "created_by", "created_at", "frozen_at")
    list_filter = ("product",)
    search_fields = ("version",)


@admin.register(Promotion)
class PromotionAdmin(ReadOnlyAdmin):
    list_display = ("human_id", "release", "environment", "state", "tier", "requester", "requested_at")
    list_filter = ("state", "environment__key")


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("human_id", "artifact", "environment", "decision", "policy_version", "evaluated_at")
    list_filter = ("decision",)
