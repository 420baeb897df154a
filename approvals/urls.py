from django.urls import path

from approvals import views

urlpatterns = [
    path("approvals/", views.pending_approvals, name="pending-approvals"),
    path("promotions/<str:promotion_id>", views.promotion_detail, name="promotion"),
    path("promotions/<str:promotion_id>/sign", views.promotion_sign, name="promotion-sign"),
    path("products/<slug:product>/releases", views.release_list, name="releases"),
    path("products/<slug:product>/releases/new", views.release_create, name="release-create"),
    path("products/<slug:product>/releases/<str:version>", views.release_detail, name="release"),
    path("products/<slug:product>/releases/<str:version>/promote", views.release_promote, name="release-promote"),
    path("products/<slug:product>/releases/<str:version>/edit", views.release_edit, name="release-edit"),
    path(
        "products/<slug:product>/releases/<str:version>/accept-failure",
        views.release_accept_failure,
        name="release-accept-failure",
    ),
]
