"""Auditor pages (issue 7, item 7): search, release downloads, population report, audit-trail export."""

from django.urls import path

from evidence import auditor_views

urlpatterns = [
    path("auditor/", auditor_views.auditor_search, name="auditor-search"),
    path("auditor/population", auditor_views.auditor_population, name="auditor-population"),
    path("auditor/audit-export", auditor_views.auditor_audit_export, name="auditor-audit-export"),
    path("auditor/releases/<slug:product>/<str:version>", auditor_views.auditor_release, name="auditor-release"),
]
