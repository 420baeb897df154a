"""Every URL of Custody: the public API v1 (DESIGN §7) under /api/v1/, the admin, and the pages of each app."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularSwaggerSplitView

from changecontrol.api_schema import SchemaApi
from common.api_errors import api_path_not_found

api_v1 = [
    # First: the CI gate (`status`) is asked on every pipeline run, and URL patterns are tried in order.
    path("", include("approvals.api_urls")),
    path("schema/", SchemaApi.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file (`?script`): the CSP allows no inline script.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path("", include("changecontrol.api_urls")),
    path("", include("traceability.api_urls")),
    path("", include("evidence.api_urls")),
    path("", include("reports.api_urls")),
    path("", include("runtime.api_urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    # Last under /api/: any other path there is the JSON 404, development (DEBUG) included.
    re_path(r"^api/(?P<rest>.*)$", api_path_not_found, name="api-not-found"),
    path("admin/", admin.site.urls),
    path("", include("home.urls")),
    path("", include("changecontrol.urls")),
    path("", include("traceability.urls")),
    path("", include("evidence.urls")),
    path("", include("approvals.urls")),
    path("", include("runtime.urls")),
    path("", include("alerts.urls")),
    path("", include("reports.urls")),
]

# Under /api/ every error is JSON in the §7 shape, a path no route matches included; pages keep the HTML pages.
handler400 = "common.api_errors.bad_request"
handler404 = "common.api_errors.not_found"
handler500 = "common.api_errors.server_error"
