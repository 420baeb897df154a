"""API paths of the reports app (under /api/v1/): packets, bundles, population report, audit export, release notes."""

from django.urls import path, re_path

from reports import api

urlpatterns = [
    path("releases/<slug:product>/<str:version>/packet.pdf", api.ReleasePacketApi.as_view(), name="api-release-packet"),
    path("releases/<slug:product>/<str:version>/bundle.zip", api.ReleaseBundleApi.as_view(), name="api-release-bundle"),
    path("exports/<str:export_id>", api.ReleaseExportDetailApi.as_view(), name="api-release-export"),
    path("population-report", api.PopulationReportApi.as_view(), name="api-population-report"),
    path("audit-events/export", api.AuditEventExportApi.as_view(), name="api-audit-events-export"),
    re_path(
        r"^releases/(?P<product>[-a-zA-Z0-9_]+)/(?P<version>[^/]+)/release-notes\.(?P<extension>md|html|pdf)$",
        api.ReleaseNotesApi.as_view(),
        name="api-release-notes",
    ),
]
