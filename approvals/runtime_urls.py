"""API paths of the runtime record, included under /api/v1/: deployments, the log, reviews, snapshots."""

from django.urls import path

from approvals import runtime_api

urlpatterns = [
    path("deployments", runtime_api.DeploymentListCreateApi.as_view(), name="api-deployments"),
    path("deployments.csv", runtime_api.DeploymentCsvApi.as_view(), name="api-deployments-csv"),
    path("deployments/<str:deployment_id>", runtime_api.DeploymentDetailApi.as_view(), name="api-deployment"),
    path(
        "deployments/<str:deployment_id>/review",
        runtime_api.BreakGlassReviewApi.as_view(),
        name="api-deployment-review",
    ),
    path(
        "products/<slug:product>/environments/<slug:environment>/snapshot",
        runtime_api.SnapshotApi.as_view(),
        name="api-environment-snapshot",
    ),
]
