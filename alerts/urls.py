"""Alert pages, per product: subscriptions and the delivery log."""

from django.urls import path

from alerts import views

urlpatterns = [
    path("products/<slug:product>/alerts/", views.alert_settings, name="alert-settings"),
    path(
        "products/<slug:product>/alerts/subscriptions/<int:subscription_id>/toggle",
        views.alert_subscription_toggle,
        name="alert-subscription-toggle",
    ),
    path("products/<slug:product>/alerts/deliveries/", views.delivery_log, name="alert-delivery-log"),
]
