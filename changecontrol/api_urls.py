"""Every path of the public API v1 (DESIGN §7). Apps add theirs in their own api_urls modules."""

from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from changecontrol import api, api_schema

urlpatterns = [
    # First: the CI gate (`status`) is asked on every pipeline run, and URL patterns are tried in order.
    path("", include("approvals.api_urls")),
    path("schema/", api_schema.SchemaApi.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("keys", api.PublicKeysApi.as_view(), name="api-keys"),
    path("products", api.ProductListApi.as_view(), name="api-products"),
    path("products/<slug:product>", api.ProductDetailApi.as_view(), name="api-product"),
    path(
        "products/<slug:product>/change-requests", api.ChangeRequestListCreateApi.as_view(), name="api-change-requests"
    ),
    path("products/<slug:product>/risk-preview", api.RiskPreviewApi.as_view(), name="api-risk-preview"),
    path("change-requests/<str:change_request_id>", api.ChangeRequestDetailApi.as_view(), name="api-change-request"),
    path(
        "change-requests/<str:change_request_id>/submit",
        api.ChangeRequestSubmitApi.as_view(),
        name="api-change-request-submit",
    ),
    path(
        "change-requests/<str:change_request_id>/withdraw",
        api.ChangeRequestWithdrawApi.as_view(),
        name="api-change-request-withdraw",
    ),
    path(
        "change-requests/<str:change_request_id>/signatures",
        api.ChangeRequestSignApi.as_view(),
        name="api-change-request-sign",
    ),
    path("audit-events", api.AuditEventListApi.as_view(), name="api-audit-events"),
    path("", include("changecontrol.items_urls")),
    path("", include("evidence.api_urls")),
    path("", include("evidence.export_urls")),
    path("", include("approvals.runtime_urls")),
    path("", include("evidence.auditor_api_urls")),
]
