"""API paths of the runtime record, included under /api/v1/: deployments, the log, reviews, snapshots."""

from django.urls import path

from runtime import affected_api, api

urlpatterns = [
    path("affected", affected_api.AffectedApi.as_view(), name="api-affected"),
    path("affected.csv", affected_api.AffectedCsvApi.as_view(), name="api-affected-csv"),
    path("deployments", api.DeploymentListCreateApi.as_view(), name="api-deployments"),
    path("deployments.csv", api.DeploymentCsvApi.as_view(), name="api-deployments-csv"),
    path("deployments/<str:deployment_id>", api.DeploymentDetailApi.as_view(), name="api-deployment"),
    path(
        "deployments/<str:deployment_id>/review",
        api.BreakGlassReviewApi.as_view(),
        name="api-deployment-review",
    ),
    path(
        "products/<slug:product>/environments/<slug:environment>/snapshot",
        api.SnapshotApi.as_view(),
        name="api-environment-snapshot",
    ),
]
