"""API paths of the core domain (under /api/v1/, DESIGN §7): keys, products, change requests, signatures, audit
events, policy versions."""

from django.urls import path

from changecontrol import api

urlpatterns = [
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
    path("signatures/<str:signature_id>", api.SignatureDetailApi.as_view(), name="api-signature"),
    path(
        "products/<slug:product>/policy-versions",
        api.PolicyVersionListCreateApi.as_view(),
        name="api-policy-versions",
    ),
    path(
        "products/<slug:product>/policy-versions/<int:version>",
        api.PolicyVersionDetailApi.as_view(),
        name="api-policy-version",
    ),
    path(
        "products/<slug:product>/policy-versions/<int:version>/signatures",
        api.PolicyVersionSignApi.as_view(),
        name="api-policy-version-sign",
    ),
]
