from django.apps import AppConfig


class TraceabilityConfig(AppConfig):
    """Requirements, hazards, risk controls, their versions and links, baselines and the trace matrix."""

    name = "traceability"
    verbose_name = "Traceability"
