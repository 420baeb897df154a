from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """The alert outbox: e-mail and signed webhooks, delivered by Celery with retries and a delivery log."""

    name = "alerts"
