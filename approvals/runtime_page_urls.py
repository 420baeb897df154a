"""Pages of the runtime record: deployment log, deployment detail and review, manual deployments, drift, break-glass."""

from django.urls import path

from approvals import runtime_views

urlpatterns = [
    path("deployments/", runtime_views.deployment_log, name="deployments"),
    path("deployments/new", runtime_views.deployment_create, name="deployment-create"),
    path("deployments/<str:deployment_id>", runtime_views.deployment_detail, name="deployment"),
    path("deployments/<str:deployment_id>/review", runtime_views.deployment_review, name="deployment-review"),
    path("products/<slug:product>/drift", runtime_views.drift_findings, name="drift"),
    path("break-glass/", runtime_views.break_glass_list, name="break-glass"),
]
