"""Celery tasks of the core domain (thin: call one service)."""

from celery import shared_task

from changecontrol import audit, verification, witnesses
from changecontrol.models import AuditCheckpoint

# A witness that is down is tried again for about a day (30 s doubling to an hour), then the failure is alerted.
WITNESS_RETRIES = 30


@shared_task(acks_late=True, name="changecontrol.tasks.audit_checkpoint")
def audit_checkpoint() -> int | None:
    """Sign the audit chain head (Celery beat, hourly by default); published to the witnesses once committed."""
    checkpoint = audit.checkpoint_create()
    return checkpoint.pk if checkpoint else None


@shared_task(bind=True, acks_late=True, max_retries=WITNESS_RETRIES, name="changecontrol.tasks.checkpoint_publish")
def checkpoint_publish(self, checkpoint_id: int) -> list[str]:
    """Publish one checkpoint to every witness (idempotent: a witness holding it already is left alone)."""
    checkpoint = AuditCheckpoint.objects.filter(pk=checkpoint_id).first()
    if checkpoint is None:
        return []  # gone before it was published: verify_audit names a removed checkpoint
    failures = witnesses.checkpoint_publish(checkpoint)
    if failures and self.request.retries < self.max_retries:
        raise self.retry(countdown=min(3600, 30 * 2**self.request.retries))
    if failures:
        witnesses.failure_record(checkpoint, failures)
    return sorted(failures)


@shared_task(acks_late=True, name="changecontrol.tasks.audit_verify")
def audit_verify(incremental: bool = True) -> bool:
    """Checkpoint the head, publish it, verify (from the last intact run, or in full) and record the outcome."""
    checkpoint = audit.checkpoint_create()
    if checkpoint is not None:
        # Published here as well as by its own task, so the comparison below never races the publication.
        witnesses.checkpoint_publish(checkpoint)
    report = verification.verify(incremental=incremental, witnesses=witnesses.configured())
    verification.outcome_record(report)
    return report.intact
