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
