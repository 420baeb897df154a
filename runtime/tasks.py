"""Celery tasks of the runtime record (thin: call one service)."""

from celery import shared_task

from runtime import osv
from runtime.deployments import break_glass_reviews_alert_overdue


# The wire name queued messages and the beat schedule carry; kept when the task moved here (docs/architecture.md).
@shared_task(acks_late=True, name="approvals.tasks.alert_overdue_reviews")
def alert_overdue_reviews() -> list[str]:
    """Alert every break-glass review past its window (Celery beat, daily; deduplicated per review per day)."""
    return break_glass_reviews_alert_overdue()


@shared_task(acks_late=True)
def advisory_findings_close_by_vex() -> int:
    """Close advisory findings a signed VEX statement now covers (Celery beat; VEX arrives as evidence, below us)."""
    return osv.advisory_findings_close_by_vex()


@shared_task(acks_late=True)
def match_advisories(artifact_ids: list[int]) -> list[str]:
    """Match stored advisories against artifacts that just started running (queued on commit of the deployment or
    snapshot that named them); idempotent: a finding exists once per release, artifact and advisory."""
    return [finding.human_id for finding in osv.advisories_match_artifacts(artifact_ids=artifact_ids)]
