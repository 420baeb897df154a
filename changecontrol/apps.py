from django.apps import AppConfig


class ChangeControlConfig(AppConfig):
    """Core domain: people and roles, products, policies, change requests, signatures, audit trail."""

    name = "changecontrol"
    verbose_name = "Change control"
