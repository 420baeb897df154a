"""Alerts about what the core records: it never calls the outbox, so the outbox reads its audit events.

`AlertsConfig.ready()` registers `on_audit_event` with `changecontrol.audit.listen`; it runs inside the transaction
that appended the event, so an alert exists if and only if its fact was committed (as with `alert_raise` called
directly by the apps above this one: approvals and runtime).
"""

from __future__ import annotations

from collections.abc import Callable

from alerts.services import alert_raise
from changecontrol.models import AuditEvent, ChangeRequest, Product, User
from changecontrol.roles import role_map
from changecontrol.services import approval_requirement


def _account_locked(event: AuditEvent) -> None:
    """A lockout alert for every product the person works on: each product's subscribers decide who hears it."""
    user = User.objects.get(pk=event.object_id)
    locked_at = user.locked_at.isoformat()
    for product in Product.objects.filter(pk__in=role_map(user)):
        alert_raise(
            product=product,
            event_kind="lockout",
            subject=f"Account locked: {user.username} ({user.printed_name})",
            body={
                "user": user.username,
                "printed_name": user.printed_name,
                "failed_attempts": user.failed_login_count,
                "locked_at": locked_at,
            },
            dedupe_key=f"lockout:{user.pk}:{locked_at}",
        )


def _change_request_submitted(event: AuditEvent) -> None:
    """Tell the product's subscribers that a change request waits for signatures."""
    change_request = ChangeRequest.objects.select_related("product", "requester", "policy_version").get(
        pk=event.object_id
    )
    requirement = approval_requirement(change_request)
    if requirement["auto"]:
        return  # the policy approves it on the spot (its own audit event follows): nobody needs to sign
    alert_raise(
        product=change_request.product,
        event_kind="approval_requested",
        subject=f"{change_request.human_id} awaits approval: {change_request.title}",
        body={
            "change_request": change_request.human_id,
            "tier": change_request.tier,
            "roles": ", ".join(requirement["roles"]),
            "signatures_needed": requirement["count"],
            "requester": change_request.requester.printed_name,
            "url": f"/change-requests/{change_request.human_id}",
        },
        dedupe_key=f"cr:{change_request.pk}:v{change_request.content_version}",
    )


def _audit_integrity(event: AuditEvent) -> None:
    """The trail or a witness failed its check: every product's records are at stake, so every product hears it."""
    after = event.after or {}
    if event.action == "audit.witness_failed":
        subject = f"Audit checkpoint {after.get('checkpoint')} did not reach its witness(es)"
        body = {"checkpoint": after.get("checkpoint"), "failures": event.reason}
    else:
        count = after.get("finding_count", 0)
        subject = (
            f"Audit trail verification failed: {count} finding(s)"
            if count
            else "Audit trail verification: part of the trail is not covered"
        )
        body = {
            "kind": after.get("kind"),
            "findings": "; ".join(after.get("findings") or [])[:2000],
            "not_covered": "; ".join(after.get("uncovered") or [])[:1000],
        }
    for product in Product.objects.order_by("key"):
        alert_raise(
            product=product,
            event_kind="audit_integrity",
            subject=subject,
            body={**body, "event": event.pk},
            dedupe_key=f"audit:{event.pk}",
        )


FEEDS: dict[str, Callable[[AuditEvent], None]] = {
    "account.locked": _account_locked,
    "change_request.submitted": _change_request_submitted,
    "audit.verification_failed": _audit_integrity,
    "audit.witness_failed": _audit_integrity,
}


def on_audit_event(event: AuditEvent) -> None:
    feed = FEEDS.get(event.action)
    if feed is not None:
        feed(event)
