from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """What auditors take away: packets, evidence bundles, the population report, release notes, exports."""

    name = "reports"
    verbose_name = "Reports"
