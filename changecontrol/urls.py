from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("changecontrol.api_urls")),
    path("admin/", admin.site.urls),
    path("", include("changecontrol.page_urls")),
    path("", include("changecontrol.items_page_urls")),
    path("", include("evidence.page_urls")),
    path("", include("approvals.page_urls")),
    path("", include("approvals.runtime_page_urls")),
    path("", include("alerts.page_urls")),
    path("", include("evidence.auditor_urls")),
]

# Under /api/ every error is JSON in the §7 shape, a path no route matches included; pages keep the HTML pages.
handler404 = "changecontrol.api_errors.not_found"
handler500 = "changecontrol.api_errors.server_error"
