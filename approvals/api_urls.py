"""API paths of the approvals app (releases, promotions, status, policy versions, deployments, snapshots)."""

from django.urls import path

from approvals import api, api_failures

urlpatterns = [
    path("status", api.StatusApi.as_view(), name="api-status"),  # the CI gate's hot path: tried first
    path("products/<slug:product>/releases", api.ReleaseListCreateApi.as_view(), name="api-releases"),
    path("releases/<slug:product>/<str:version>", api.ReleaseDetailApi.as_view(), name="api-release"),
    path(
        "releases/<slug:product>/<str:version>/promotions",
        api.PromotionCreateApi.as_view(),
        name="api-release-promotions",
    ),
    path(
        "releases/<slug:product>/<str:version>/test-failures",
        api_failures.TestFailuresApi.as_view(),
        name="api-release-test-failures",
    ),
    path(
        "releases/<slug:product>/<str:version>/accepted-failures",
        api_failures.AcceptedFailureCreateApi.as_view(),
        name="api-release-accepted-failures",
    ),
    path("promotions/<str:promotion_id>", api.PromotionDetailApi.as_view(), name="api-promotion"),
    path("promotions/<str:promotion_id>/signatures", api.PromotionSignApi.as_view(), name="api-promotion-sign"),
    path("approvals/pending", api.PendingApprovalsApi.as_view(), name="api-pending-approvals"),
    path("status/history", api.DecisionHistoryApi.as_view(), name="api-status-history"),
]
