"""Celery tasks of the alert outbox: thin, take ids, own their retries (acks_late, idempotent)."""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True, max_retries=None, name="alerts.tasks.deliver")
def deliver(self, delivery_id: int) -> str:
    """Send one delivery once; on failure retry after the backoff (the delivery row counts the attempts)."""
    from alerts.services import delivery_attempt

    outcome = delivery_attempt(delivery_id=delivery_id)
    if outcome.skipped:
        return f"skipped: {outcome.skipped}"
    if outcome.retry_in is not None:
        # Retried outside the attempt's transaction: the failed attempt is committed before the retry is queued.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.state


@shared_task(acks_late=True, name="alerts.tasks.redeliver_due")
def redeliver_due(grace_seconds: int = 60) -> int:
    """Beat sweep: re-queue deliveries whose next attempt is overdue (a lost message must not lose an alert)."""
    from alerts.services import deliveries_due

    due = deliveries_due(grace_seconds=grace_seconds)
    for delivery_id in due:
        deliver.delay(delivery_id)
    return len(due)
