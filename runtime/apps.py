from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    """Deployments, environment snapshots and drift, break-glass and its retrospective review."""

    name = "runtime"
    verbose_name = "Runtime record"
