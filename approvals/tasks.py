"""Celery tasks of the approvals app (thin: call one service)."""

from celery import shared_task

from approvals import services
from approvals.models import Promotion


@shared_task(acks_late=True, name="approvals.tasks.promotions_expire")
def promotions_expire() -> list[str]:
    """Approved promotions whose approvals lapsed before deployment become expired (Celery beat, every few minutes)."""
    return services.promotions_expire()


@shared_task(acks_late=True, name="approvals.tasks.promotion_refresh")
def promotion_refresh(promotion_id: int) -> str | None:
    """Re-evaluate one awaiting promotion (e.g. after its evidence finished processing); idempotent."""
    promotion = Promotion.objects.filter(pk=promotion_id).first()
    if promotion is None:
        return None
    return services.promotion_refresh(promotion=promotion).state
