from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """Releases, promotions, gates, approvals, the status API, deployments and drift."""

    name = "approvals"
