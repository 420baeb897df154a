"""Pages of the runtime record: deployment log, deployment detail and review, manual deployments, drift, break-glass."""

from django.urls import path

from runtime import views

urlpatterns = [
    path("deployments/", views.deployment_log, name="deployments"),
    path("deployments/new", views.deployment_create, name="deployment-create"),
    path("deployments/<str:deployment_id>", views.deployment_detail, name="deployment"),
    path("deployments/<str:deployment_id>/review", views.deployment_review, name="deployment-review"),
    path("products/<slug:product>/drift", views.drift_findings, name="drift"),
    path("break-glass/", views.break_glass_list, name="break-glass"),
    path("affected/", views.affected_releases, name="affected"),
]
