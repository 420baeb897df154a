"""Server-rendered pages of the core domain (CRs addressed by human ID, as in the API: /change-requests/CR-12)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from changecontrol import views

urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("products/", views.product_list, name="products"),
    path("products/<slug:product>/change-requests/", views.change_request_list, name="product-change-requests"),
    path("products/<slug:product>/change-requests/new", views.change_request_create, name="change-request-create"),
    path("change-requests/", views.change_request_list, name="change-requests"),
    path("change-requests/<str:change_request_id>", views.change_request_detail, name="change-request"),
    path("change-requests/<str:change_request_id>/edit", views.change_request_edit, name="change-request-edit"),
    path("change-requests/<str:change_request_id>/submit", views.change_request_submit, name="change-request-submit"),
    path(
        "change-requests/<str:change_request_id>/withdraw",
        views.change_request_withdraw,
        name="change-request-withdraw",
    ),
    path(
        "change-requests/<str:change_request_id>/implemented",
        views.change_request_mark_implemented,
        name="change-request-implemented",
    ),
    path("change-requests/<str:change_request_id>/close", views.change_request_close, name="change-request-close"),
    path("change-requests/<str:change_request_id>/sign", views.change_request_sign, name="change-request-sign"),
    path("signatures/<str:signature_id>", views.signature_detail, name="signature"),
    path("audit/", views.audit_trail, name="audit-trail"),
    path("products/<slug:product>/policy", views.policy_history, name="policy-history"),
    path("products/<slug:product>/policy/diff", views.policy_diff, name="policy-diff"),
    path("products/<slug:product>/policy/propose", views.policy_propose, name="policy-propose"),
    path("products/<slug:product>/policy/<int:version>/sign", views.policy_sign, name="policy-sign"),
]
