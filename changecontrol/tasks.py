"""Celery tasks of the core domain (thin: call one service)."""

from celery import shared_task

from changecontrol import audit


@shared_task(acks_late=True, name="changecontrol.tasks.audit_checkpoint")
def audit_checkpoint() -> int | None:
    """Sign the audit chain head (Celery beat, hourly by default)."""
    checkpoint = audit.checkpoint_create()
    return checkpoint.pk if checkpoint else None
