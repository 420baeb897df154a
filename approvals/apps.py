from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """Releases, promotions, gates, separation of duties, signatures, and the status answer."""

    name = "approvals"

    def ready(self):
        # Inputs recorded by the apps below (evidence, change requests, policies) re-judge open promotions.
        from approvals import listeners
        from changecontrol import audit

        audit.listen(listeners.on_audit_event)
