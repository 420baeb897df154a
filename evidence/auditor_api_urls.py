"""API paths of auditor downloads (issue 7): population report, audit-trail export, release notes."""

from django.urls import path, re_path

from evidence import auditor_api

urlpatterns = [
    path("population-report", auditor_api.PopulationReportApi.as_view(), name="api-population-report"),
    path("audit-events/export", auditor_api.AuditEventExportApi.as_view(), name="api-audit-events-export"),
    re_path(
        r"^releases/(?P<product>[-a-zA-Z0-9_]+)/(?P<version>[^/]+)/release-notes\.(?P<extension>md|html|pdf)$",
        auditor_api.ReleaseNotesApi.as_view(),
        name="api-release-notes",
    ),
]
