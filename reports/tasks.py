"""Celery tasks of the reports app: render release packets and bundles (thin: load by id, call the service)."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

TRANSIENT = (OperationalError, InterfaceError, ConnectionError)


# The wire name queued messages carry; kept when the task moved here (docs/architecture.md).
@shared_task(
    name="evidence.export_tasks.render_release_export",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=120,
    max_retries=4,
)
def render_release_export(export_id: int) -> str:
    """Render one export; a redelivered message for a finished one does nothing (idempotent)."""
    from reports.exports import release_export_render

    export = release_export_render(export_id=export_id)
    return export.state if export is not None else "missing"
