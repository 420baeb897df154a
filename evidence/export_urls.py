"""API paths of release packets and bundles (DESIGN §7); included under /api/v1/ by changecontrol.api_urls."""

from django.urls import path

from evidence import export_api

urlpatterns = [
    path(
        "releases/<slug:product>/<str:version>/packet.pdf",
        export_api.ReleasePacketApi.as_view(),
        name="api-release-packet",
    ),
    path(
        "releases/<slug:product>/<str:version>/bundle.zip",
        export_api.ReleaseBundleApi.as_view(),
        name="api-release-bundle",
    ),
    path("exports/<str:export_id>", export_api.ReleaseExportDetailApi.as_view(), name="api-release-export"),
]
