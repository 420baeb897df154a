"""What approvals does when an app below it records an input a promotion depends on.

Evidence that finished processing, a change request decided, a policy activated: each can complete an awaiting
promotion or undo the approval of one not yet deployed. Those apps never import this one; `ApprovalsConfig.ready()`
registers `on_audit_event` with `changecontrol.audit.listen`, and for each such event it queues, on commit, a task
that re-judges the open promotions the input touches, on behalf of the person (or service account) whose input it was.
"""

from __future__ import annotations

from django.db import transaction

from approvals.models import Promotion
from approvals.tasks import promotions_refresh
from changecontrol.models import AuditEvent
from evidence.models import Evidence

# Evidence reaching one of these states changes what counts for its artifact's releases.
EVIDENCE_SETTLED = frozenset(
    {"evidence.parsed", "evidence.rejected", "evidence.failed", "evidence.superseded", "evidence.reinstated"}
)
# A change request's approval state, which the change-requests gate reads.
CHANGE_REQUEST_DECIDED = frozenset(
    {
        "change_request.approved",
        "change_request.auto_approved",
        "change_request.rejected",
        "change_request.approval_reset",
        "change_request.implemented",
        "change_request.closed",
        "change_request.withdrawn",
    }
)
POLICY_ACTIVATED = "policy.activated"


def _open(**release_filter) -> list[int]:
    return list(
        Promotion.objects.filter(state__in=Promotion.OPEN_STATES, **release_filter)
        .values_list("pk", flat=True)
        .distinct()
    )


def on_audit_event(event: AuditEvent) -> None:
    if event.action in EVIDENCE_SETTLED:
        evidence = Evidence.objects.filter(pk=event.object_id).values("artifact_id", "uploaded_by_id").first()
        if evidence is None:
            return
        # The person or pipeline who sent the report moved the promotion, not "the system".
        promotion_ids = _open(release__artifacts=evidence["artifact_id"])
        actor_id = evidence["uploaded_by_id"]
    elif event.action in CHANGE_REQUEST_DECIDED:
        promotion_ids, actor_id = _open(release__change_requests=event.object_id), event.actor_id
    elif event.action == POLICY_ACTIVATED:
        promotion_ids, actor_id = _open(release__product__key=event.product_key), event.actor_id
    else:
        return
    if promotion_ids:
        transaction.on_commit(lambda: _queue_refresh(promotion_ids, actor_id))


def _queue_refresh(promotion_ids: list[int], actor_id: int | None) -> None:
    promotions_refresh.delay(promotion_ids, actor_id)
