"""Django admin for the evidence app: read-mostly views; raw evidence and facts are never edited here."""

from django.contrib import admin

from evidence.models import Artifact, Build, Evidence, ProviderCredential, SignerKey


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence records change only through services (which audit); the admin only looks."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Build)
class BuildAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "commit", "branch", "ci_system", "pull_state", "created_at")
    list_filter = ("product", "ci_system", "pull_state")
    search_fields = ("commit", "pipeline_url", "branch")


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ("name", "digest", "kind", "build", "created_at")
    list_filter = ("product", "kind")
    search_fields = ("digest", "name")


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ("human_id", "evidence_type", "name", "state", "verdict", "uploaded_at")
    list_filter = ("product", "evidence_type", "state", "verdict")
    search_fields = ("sha256", "name", "artifact__digest")


@admin.register(SignerKey)
class SignerKeyAdmin(ReadOnlyAdmin):
    list_display = ("name", "product", "key_id", "algorithm", "valid_from", "valid_until", "revoked_at")
    list_filter = ("product", "algorithm")


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(ReadOnlyAdmin):
    list_display = ("product", "provider", "base_url", "created_at")
    exclude = ("secret_encrypted",)
