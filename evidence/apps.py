from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    """Builds, artifacts, evidence intake and verification, parsed facts, traceability, packets."""

    name = "evidence"
