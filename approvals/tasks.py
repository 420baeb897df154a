"""Celery tasks of the approvals app (thin: call one service)."""

from celery import shared_task

from approvals import services
from changecontrol.models import User


@shared_task(acks_late=True, name="approvals.tasks.promotions_expire")
def promotions_expire() -> list[str]:
    """Approved promotions whose approvals lapsed before deployment become expired (Celery beat, every few minutes)."""
    return services.promotions_expire()


@shared_task(acks_late=True, name="approvals.tasks.promotions_refresh")
def promotions_refresh(promotion_ids: list[int], actor_id: int | None) -> list[str]:
    """Re-judge open promotions after an input of theirs changed, on behalf of whoever made the input; idempotent."""
    actor = User.objects.filter(pk=actor_id).first() if actor_id is not None else None
    return services.promotions_refresh(promotion_ids=promotion_ids, actor=actor)
