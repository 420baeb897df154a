from django.apps import AppConfig


class HomeConfig(AppConfig):
    """The role-shaped home dashboard and its charts."""

    name = "home"
    verbose_name = "Home"
