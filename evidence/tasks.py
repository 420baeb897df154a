"""Celery tasks of the evidence app: thin, take ids, own their retries (acks_late, idempotent)."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

# Transient: the database went away or the storage hiccupped. Parse errors are not transient and never retry.
TRANSIENT = (OperationalError, InterfaceError, OSError, ConnectionError)


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
)
def process_evidence(evidence_id: int, reprocess: bool = False) -> str:
    """Verify → parse → normalise one evidence; a redelivered message for a finished one does nothing."""
    from evidence.processing import evidence_process

    evidence = evidence_process(evidence_id=evidence_id, reprocess=reprocess)
    return evidence.state if evidence is not None else "missing"


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
