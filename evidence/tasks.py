"""Celery tasks of the evidence app: thin, take ids, own their retries (acks_late, idempotent)."""

from __future__ import annotations

import random

from celery import shared_task


@shared_task(bind=True, acks_late=True, max_retries=6)
def process_evidence(self, evidence_id: int, reprocess: bool = False) -> str:
    """Verify → parse → normalise one evidence; a redelivered message for a finished one does nothing.

    Transient errors (database, storage) retry with backoff; after the last retry the evidence fails with the
    reason, so it never stays in flight. Every other error already ends it (evidence.processing).
    """
    from evidence.processing import TRANSIENT, evidence_give_up, evidence_process

    try:
        evidence = evidence_process(evidence_id=evidence_id, reprocess=reprocess)
    except TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            evidence_give_up(evidence_id=evidence_id, reason=f"gave up after {self.max_retries} retries: {exc}")
            return "failed"
        countdown = min(300, 2**self.request.retries) + random.uniform(0, 1)  # noqa: S311  # jitter, not secrets
        raise self.retry(exc=exc, countdown=countdown) from None
    return evidence.state if evidence is not None else "missing"


@shared_task(acks_late=True, name="evidence.tasks.sweep_in_flight")
def sweep_in_flight() -> dict[str, int]:
    """Beat sweep: re-queue pending evidence whose task was lost, re-run or fail processing stuck past its deadline."""
    from evidence.processing import evidence_sweep

    return evidence_sweep()


@shared_task(bind=True, acks_late=True, max_retries=4)
def pull_build_evidence(self, build_id: int) -> str:
    """Fetch a build's reports from its CI provider and take them in as evidence of its artifacts."""
    from common.errors import DomainError
    from evidence.models import Build
    from evidence.providers.base import ProviderError, TransientProviderError
    from evidence.pull import build_pull
    from evidence.services import build_pull_mark

    build_pull_mark(build_id=build_id, state=Build.PullState.RUNNING, attempt=True)
    try:
        detail = build_pull(build_id=build_id)
    except TransientProviderError as exc:
        if self.request.retries >= self.max_retries:
            build_pull_mark(build_id=build_id, state=Build.PullState.FAILED, detail=f"gave up after retries: {exc}")
            return "failed"
        build_pull_mark(build_id=build_id, state=Build.PullState.RETRYING, detail=str(exc))
        raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from None
    except (ProviderError, DomainError) as exc:
        build_pull_mark(build_id=build_id, state=Build.PullState.FAILED, detail=str(exc))
        return "failed"
    build_pull_mark(build_id=build_id, state=Build.PullState.DONE, detail=detail)
    return "done"
