from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project itself: it holds what spans every app (the demo and its `seed_demo` command)."""

    name = "config"
    verbose_name = "Custody"
