from django.apps import AppConfig


class ChangeControlConfig(AppConfig):
    """Core domain: people and roles, products, policies, change requests, signatures, audit trail."""

    name = "changecontrol"
    verbose_name = "Change control"

    def ready(self):
        # Registers the OpenAPI description of the bearer-token authentication (drf-spectacular extension).
        from changecontrol import api_schema  # noqa: F401
