"""Verify an audit chain of 100,000 events, against the floor of hashing the same canonical records in memory."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

from django.db import transaction

from benchmarks import Result, timed
from changecontrol import audit
from changecontrol.models import AuditChainHead, AuditEvent
from common.canonical import canonical_json, jsonable

EVENTS = int(os.environ.get("CUSTODY_BENCH_AUDIT_EVENTS", "100000"))
BATCH = 5000
ACTIONS = (
    "change_request.created",
    "change_request.updated",
    "signature.approved",
    "login.failed",
    "evidence.uploaded",
)


def _event(pk: int, previous_hash: str, at: datetime) -> AuditEvent:
    """A realistic event: a few fields of before/after JSON, a reason, a request id."""
    number = pk % 997
    event = AuditEvent(
        pk=pk,
        at=at,
        actor=None,
        actor_name="Custody (benchmark)",
        action=ACTIONS[pk % len(ACTIONS)],
        product_key="rsd",
        object_type="changecontrol.changerequest",
        object_id=str(number),
        object_human_id=f"CR-{number}",
        object_version=str(pk % 7 + 1),
        before=jsonable({"state": "draft", "title": f"Recalibrate threshold {number}", "tier": "medium"}),
        after=jsonable(
            {"state": "submitted", "title": f"Recalibrate threshold {number}", "tier": "high", "score": pk % 10}
        ),
        reason="benchmark event: replayed anonymised encounters reviewed with the clinical panel",
        request_id=f"{pk:032x}",
        client_address="10.0.0.7",
        via_token="",
        previous_hash=previous_hash,
    )
    event.hash = audit.compute_hash(event)
    return event


@transaction.atomic
def insert_chain(count: int) -> None:
    """Bulk-insert a valid chain, hashed in Python exactly as audit.record does, and move the head."""
    previous_hash = audit.GENESIS_HASH
    start = datetime(2024, 1, 1, tzinfo=UTC)
    batch = []
    for pk in range(1, count + 1):
        event = _event(pk, previous_hash, start + timedelta(seconds=pk, microseconds=pk % 1000))
        previous_hash = event.hash
        batch.append(event)
        if len(batch) == BATCH:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    if batch:
        AuditEvent.objects.bulk_create(batch)
    AuditChainHead.objects.update_or_create(
        singleton=True, defaults={"last_event_id": count, "last_hash": previous_hash}
    )


def run() -> list[Result]:
    insert_chain(EVENTS)
    verify_seconds, report = timed(audit.verify_chain)
    assert report.intact and report.count == EVENTS, report
    # The floor: the same canonical records, already fetched and in memory, only encoded and hashed.
    records = [audit.event_fields(event) for event in AuditEvent.objects.order_by("pk").iterator(chunk_size=BATCH)]

    def hash_in_memory() -> int:
        sha256, canonical = hashlib.sha256, canonical_json
        return sum(1 for record in records if sha256(canonical(record)).hexdigest())

    floor_seconds, hashed = timed(hash_in_memory)
    assert hashed == EVENTS
    return [
        Result(
            name="audit chain verify (verify_audit)",
            size=f"{EVENTS:,} events",
            measured_seconds=verify_seconds,
            floor_seconds=floor_seconds,
            target_ratio=0.3,
            note="measured: `audit.verify_chain()` reading every event from the database and checking order, links, "
            "hashes and the latest checkpoint; floor: `common.canonical.canonical_json` + sha256 over the same records already "
            "fetched into memory.",
        )
    ]
