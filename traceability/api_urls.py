"""API paths of traceability (included under /api/v1/): import, trace matrix, items, links, baselines."""

from django.urls import path

from traceability import api

urlpatterns = [
    path("products/<slug:product>/requirements/import", api.RequirementsImportApi.as_view(), name="api-items-import"),
    path("products/<slug:product>/trace-matrix", api.ProductTraceMatrixApi.as_view(), name="api-trace-matrix"),
    path(
        "products/<slug:product>/trace-matrix.csv",
        api.ProductTraceMatrixApi.as_view(as_csv=True),
        name="api-trace-matrix-csv",
    ),
    path(
        "releases/<slug:product>/<str:version>/trace-matrix",
        api.ReleaseTraceMatrixApi.as_view(),
        name="api-release-trace-matrix",
    ),
    path(
        "releases/<slug:product>/<str:version>/trace-matrix.csv",
        api.ReleaseTraceMatrixApi.as_view(as_csv=True),
        name="api-release-trace-matrix-csv",
    ),
    path("products/<slug:product>/items", api.ItemListCreateApi.as_view(), name="api-items"),
    path(
        "products/<slug:product>/items/export.csv", api.ItemExportApi.as_view(export_format="csv"), name="api-items-csv"
    ),
    path(
        "products/<slug:product>/items/export.json",
        api.ItemExportApi.as_view(export_format="json"),
        name="api-items-json",
    ),
    path("products/<slug:product>/items/<str:identifier>", api.ItemDetailApi.as_view(), name="api-item"),
    path("products/<slug:product>/items/<str:identifier>/impact", api.ItemImpactApi.as_view(), name="api-item-impact"),
    path("products/<slug:product>/links", api.LinkCreateApi.as_view(), name="api-links"),
    path(
        "products/<slug:product>/links/<int:link_id>/clear-suspect",
        api.LinkClearSuspectApi.as_view(),
        name="api-link-clear-suspect",
    ),
    path(
        "change-requests/<str:change_request_id>/items",
        api.ChangeRequestItemsApi.as_view(),
        name="api-change-request-items",
    ),
    path("products/<slug:product>/baselines", api.BaselineListApi.as_view(), name="api-baselines"),
    path("products/<slug:product>/baselines/compare", api.BaselineCompareApi.as_view(), name="api-baselines-compare"),
]
