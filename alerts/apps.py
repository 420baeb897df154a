from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """The alert outbox: e-mail and signed webhooks, delivered by Celery with retries and a delivery log."""

    name = "alerts"

    def ready(self):
        # The core never calls the outbox: the outbox reads the core's audit events (alerts.feeds).
        from alerts import feeds
        from changecontrol import audit

        audit.listen(feeds.on_audit_event)
