"""Pages of the evidence app: build, artifact, evidence detail and its raw download."""

from django.urls import path

from evidence import views

urlpatterns = [
    path("builds/<str:build_id>", views.build_detail, name="evidence-build"),
    path("artifacts/<str:digest>", views.artifact_detail, name="evidence-artifact"),
    path("evidence/<str:evidence_id>", views.evidence_detail, name="evidence-detail"),
    path("evidence/<str:evidence_id>/raw", views.evidence_raw, name="evidence-raw"),
]
