"""Auditor pages (issue 7, item 7): search, release downloads, population report, audit-trail export."""

from django.urls import path

from reports import views

urlpatterns = [
    path("auditor/", views.auditor_search, name="auditor-search"),
    path("auditor/population", views.auditor_population, name="auditor-population"),
    path("auditor/audit-export", views.auditor_audit_export, name="auditor-audit-export"),
    path("auditor/releases/<slug:product>/<str:version>", views.auditor_release, name="auditor-release"),
]
