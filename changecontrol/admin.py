"""Django admin for rare settings (DESIGN §1): products, environments, people, tokens; the records are read-only.

Every change made here is audited like any other write. Audit events, checkpoints, signatures and policy
versions are shown but never editable: they change only through the services that sign and chain them.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction

from changecontrol import audit
from changecontrol.api_auth import token_create, token_revoke
from changecontrol.auth import account_sessions_end, account_unlock
from changecontrol.models import (
    ApiToken,
    AuditCheckpoint,
    AuditEvent,
    Environment,
    PolicyVersion,
    Product,
    Signature,
    User,
)
from common.links import validate_http_url

admin.site.site_header = "Custody administration"
admin.site.site_title = "Custody administration"
admin.site.index_title = "Configuration (every change here is audited)"


def _value(obj, field: str):
    if "password" in field:
        return "(changed)"
    value = getattr(obj, field, None)
    if hasattr(value, "pk"):
        return str(value)
    return value


class AuditedAdminMixin:
    """Record an audit event for every save and delete made through the admin, in the same transaction."""

    def save_model(self, request, obj, form, change):
        changed = list(form.changed_data)
        before = {}
        if change and changed:
            original = type(obj).objects.get(pk=obj.pk)
            before = {field: _value(original, field) for field in changed}
        super().save_model(request, obj, form, change)
        if change and not changed:
            return
        audit.record(
            actor=request.user,
            action=f"{obj._meta.model_name}.{'updated' if change else 'created'}",
            obj=obj,
            before=before or None,
            after={field: _value(obj, field) for field in changed},
            reason="changed in the administration pages",
        )

    def delete_model(self, request, obj):
        audit.record(
            actor=request.user,
            action=f"{obj._meta.model_name}.deleted",
            obj=obj,
            before={"repr": str(obj)},
            reason="deleted in the administration pages",
        )
        super().delete_model(request, obj)

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            audit.record(
                actor=request.user,
                action=f"{obj._meta.model_name}.deleted",
                obj=obj,
                before={"repr": str(obj)},
                reason="deleted in the administration pages",
            )
            obj.delete()
        for obj in instances:
            created = obj.pk is None
            obj.save()
            audit.record(
                actor=request.user,
                action=f"{obj._meta.model_name}.{'created' if created else 'updated'}",
                obj=obj,
                after={
                    field.name: _value(obj, field.name) for field in obj._meta.concrete_fields if field.name != "id"
                },
                reason="changed in the administration pages",
            )
        formset.save_m2m()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EnvironmentInline(admin.TabularInline):
    model = Environment
    extra = 0
    fields = ["order", "key", "name"]
    ordering = ["order"]


@admin.register(Product)
class ProductAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["key", "name", "safety_class", "created_at"]
    search_fields = ["key", "name"]
    inlines = [EnvironmentInline]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "repository_url":
            # The admin's URL widget prints the stored value as a link: a plain input, and the one URL rule.
            kwargs.update(widget=forms.URLInput(attrs={"size": 60}), assume_scheme="https")
            field = super().formfield_for_dbfield(db_field, request, **kwargs)
            field.validators.append(validate_http_url)
            return field
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # The key is in every human ID, URL and audit event: it never changes once created.
        return ["key", "created_at"] if obj is not None else ["created_at"]

    def has_delete_permission(self, request, obj=None):
        return False  # products are PROTECTed by their evidence; retire them instead


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    list_display = ["username", "printed_name", "email", "is_service_account", "is_active", "locked", "last_login"]
    list_filter = ["is_service_account", "is_active", "is_superuser", "groups"]
    search_fields = ["username", "full_name", "email"]
    readonly_fields = ["failed_login_count", "locked_at", "last_login", "date_joined"]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Custody", {"fields": ["full_name", "is_service_account", "failed_login_count", "locked_at"]}),
    )
    actions = ["unlock_accounts"]

    def has_delete_permission(self, request, obj=None):
        return False  # people are named in audit events and signatures; deactivate them instead

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            account_sessions_end(user=obj)  # a deactivated account stops at once, in every open session

    @admin.display(boolean=True, description="Locked")
    def locked(self, user: User) -> bool:
        return user.is_locked()

    @admin.action(description="Unlock the selected accounts (audited)")
    def unlock_accounts(self, request, queryset):
        unlocked = 0
        for user in queryset:
            if user.locked_at is None and not user.failed_login_count:
                continue
            account_unlock(
                actor=request.user, user=user, reason=f"unlocked in the administration pages by {request.user.username}"
            )
            unlocked += 1
        self.message_user(request, f"Unlocked {unlocked} account(s).", messages.SUCCESS)


class ApiTokenCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in ApiToken.SCOPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiToken
        fields = ["name", "user", "products", "scopes"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "scope_list", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at", "products"]
    search_fields = ["name", "prefix", "user__username"]
    actions = ["revoke_tokens"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "user", "products", "scopes"]
        return [
            "name",
            "user",
            "prefix",
            "scope_list",
            "product_list",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the audit trail names tokens

    @admin.display(description="Scopes")
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes)

    @admin.display(description="Products")
    def product_list(self, token: ApiToken) -> str:
        return ", ".join(token.products.values_list("key", flat=True))

    def save_model(self, request, obj, form, change):
        if change:
            return  # tokens are immutable; only revocation changes them
        token, secret = token_create(
            actor=request.user,
            name=form.cleaned_data["name"],
            user=form.cleaned_data["user"],
            products=list(form.cleaned_data["products"]),
            scopes=list(form.cleaned_data["scopes"]),
        )
        obj.pk = token.pk
        # The one and only time the secret is shown: Custody stores its hash.
        messages.warning(request, f"Token {token.prefix}… created. Copy it now, it will not be shown again: {secret}")

    def save_related(self, request, form, formsets, change):
        pass  # token_create set the products

    @admin.action(description="Revoke the selected tokens (audited)")
    def revoke_tokens(self, request, queryset):
        with transaction.atomic():
            tokens = [token for token in queryset if token.revoked_at is None]
            for token in tokens:
                token_revoke(
                    actor=request.user,
                    token=token,
                    reason=f"revoked in the administration pages by {request.user.username}",
                )
        self.message_user(request, f"Revoked {len(tokens)} token(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "at", "actor_name", "action", "product_key", "object_human_id", "reason"]
    list_filter = ["product_key", "action"]
    search_fields = ["object_human_id", "actor_name", "action", "reason", "request_id"]
    date_hierarchy = "at"
    list_per_page = 100
    show_full_result_count = False  # counting a large append-only table on every page is wasted work


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "event_id", "event_hash", "key_id"]


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["product", "version", "state", "author", "created_at", "activated_at", "sha256"]
    list_filter = ["product", "state"]


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ["subject_human_id", "printed_name", "meaning", "role", "signed_at", "invalidated_at"]
    list_filter = ["product", "meaning"]
    search_fields = ["subject_human_id", "printed_name"]
