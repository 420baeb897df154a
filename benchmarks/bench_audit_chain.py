"""Verify the audit trail and its sealed records: in full over 100,000 events against the floor of hashing the same
records in memory, and incrementally — 1,000 new events on top of 1,000,000 — against 1,000 events alone."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

from django.db import transaction

from benchmarks import Result, timed
from changecontrol import audit, seals, verification
from changecontrol.models import AuditChainHead, AuditCheckpoint, AuditEvent, Product, Signature, User, record_type
from common.canonical import canonical_json, jsonable

EVENTS = int(os.environ.get("CUSTODY_BENCH_AUDIT_EVENTS", "100000"))
BASE_EVENTS = int(os.environ.get("CUSTODY_BENCH_AUDIT_BASE_EVENTS", "1000000"))
NEW_EVENTS = 1000
SEAL_EVERY = 5  # one event in five signs something, and seals the signature
BATCH = 5000
ACTIONS = (
    "change_request.created",
    "change_request.updated",
    "evidence.uploaded",
    "login.failed",
)
START = datetime(2024, 1, 1, tzinfo=UTC)


def _event(pk: int, previous_hash: str, sealed: list[dict] | None) -> AuditEvent:
    """A realistic event: a few fields of before/after JSON, a reason, a request id; a signature's seal if any."""
    number = pk % 997
    event = AuditEvent(
        pk=pk,
        at=START + timedelta(seconds=pk, microseconds=pk % 1000),
        actor=None,
        actor_name="Custody (benchmark)",
        action="signature.approved" if sealed else ACTIONS[pk % len(ACTIONS)],
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
        seals=sealed,
    )
    event.hash = audit.compute_hash(event)
    return event


def _signatures(count: int, *, product: Product, signer: User) -> list[Signature]:
    """Signatures as the services write them: a canonical content of a change request, its hash, a comment."""
    made, first = [], Signature.objects.count()
    for index in range(first, first + count):
        content = {
            "change_request": f"CR-{index}",
            "content_version": index % 3 + 1,
            "title": f"Recalibrate the sepsis risk score threshold {index}",
            "risk_answers": {"patient_safety_impact": "indirect", "data_sensitivity": "none"},
            "verification_plan": "Replay 10,000 anonymised encounters; compare alert rates with the panel.",
        }
        made.append(
            Signature(
                subject_type="changecontrol.changerequest",
                subject_id=index,
                subject_human_id=f"CR-{index}",
                product=product,
                signer=signer,
                printed_name=signer.printed_name,
                signed_at=START + timedelta(seconds=index),
                meaning="approved",
                role="quality",
                comment="Evidence reviewed with the clinical panel.",
                content=jsonable(content),
                content_sha256=hashlib.sha256(canonical_json(content)).hexdigest(),
            )
        )
    return Signature.objects.bulk_create(made, batch_size=BATCH)


@transaction.atomic
def extend_chain(count: int, *, product: Product, signer: User) -> None:
    """Append `count` events to the chain (one in five sealing a new signature), hashed as audit.record hashes."""
    head = AuditChainHead.objects.select_for_update().get(singleton=True)
    signatures = _signatures(count // SEAL_EVERY, product=product, signer=signer)
    layout, type_name = seals.layout_of(Signature), record_type(Signature)
    sealed_by = {}
    for start in range(0, len(signatures), BATCH):
        batch = [s.pk for s in signatures[start : start + BATCH]]
        for pk, content in seals.contents(layout, batch):
            sealed_by[pk] = [{"type": type_name, "id": pk, **seals.seal_from_content(content)}]
    pending = [sealed_by[pk] for pk in sorted(sealed_by, reverse=True)]
    previous_hash, events = head.last_hash, []
    for pk in range(head.last_event_id + 1, head.last_event_id + count + 1):
        sealed = pending.pop() if pk % SEAL_EVERY == 0 and pending else None
        event = _event(pk, previous_hash, sealed)
        previous_hash = event.hash
        events.append(event)
        if len(events) == BATCH:
            AuditEvent.objects.bulk_create(events)
            events = []
    if events:
        AuditEvent.objects.bulk_create(events)
    AuditChainHead.objects.filter(pk=head.pk).update(last_event_id=head.last_event_id + count, last_hash=previous_hash)


def verify_intact(**kwargs) -> verification.AuditReport:
    report = verification.verify(**kwargs)
    assert report.intact, (report.findings[:3], report.uncovered)
    return report


def run() -> list[Result]:
    product = Product.objects.create(key="rsd", name="Risk Score Dashboard", safety_class="B")
    signer = User.objects.create_user(username="quinn", password="x", full_name="Quinn Quality")
    AuditChainHead.objects.get_or_create(singleton=True, defaults={"last_hash": audit.GENESIS_HASH})

    # 1. A thousand events alone, verified from scratch: the yardstick of the incremental run.
    extend_chain(NEW_EVENTS, product=product, signer=signer)
    audit.checkpoint_create()
    alone_seconds, _ = timed(verify_intact)

    # 2. In full, 100,000 events and their sealed records, against hashing the same records in memory.
    extend_chain(EVENTS - NEW_EVENTS - 2, product=product, signer=signer)
    audit.checkpoint_create()
    full_seconds, full = timed(verify_intact)
    assert full.events >= EVENTS and full.records >= EVENTS // SEAL_EVERY
    events = [fields for fields, _ in audit.stored_events()]
    layout = seals.layout_of(Signature)
    pks = list(Signature.objects.order_by("pk").values_list("pk", flat=True))
    contents = [
        content
        for start in range(0, len(pks), BATCH)
        for _, content in seals.contents(layout, pks[start : start + BATCH])
    ]

    def hash_in_memory() -> int:
        sha256, canonical = hashlib.sha256, canonical_json
        return sum(1 for record in (*events, *contents) if sha256(canonical(record)).hexdigest())

    floor_seconds, hashed = timed(hash_in_memory)
    assert hashed == len(events) + len(contents)

    # 3. Incrementally: the trail grows to a million events, a run verifies it, a thousand more arrive.
    extend_chain(BASE_EVENTS - full.last_event - 2, product=product, signer=signer)
    audit.checkpoint_create()
    base = verification.AuditReport(kind="full", events=BASE_EVENTS)
    base.covered_through, base.checkpoint_id = AuditCheckpoint.objects.values_list("event_id", "pk").latest("pk")
    verification.outcome_record(base)  # as the last nightly run would have, having verified all of it
    extend_chain(NEW_EVENTS, product=product, signer=signer)
    audit.checkpoint_create()
    incremental_seconds, incremental = timed(lambda: verify_intact(incremental=True))
    assert incremental.kind == "incremental" and incremental.events <= NEW_EVENTS + 3
    return [
        Result(
            name="audit verify in full (verify_audit: chain, checkpoints, sealed records)",
            size=f"{full.events:,} events, {full.records:,} sealed records",
            measured_seconds=full_seconds,
            floor_seconds=floor_seconds,
            target_ratio=0.3,
            note="measured: `verification.verify()` reading every event and every sealed signature from the database, "
            "checking order, links, hashes, every checkpoint, coverage and each record against its seal; floor: "
            "`canonical_json` + sha256 over the same events and record contents already in memory.",
        ),
        Result(
            name="audit verify, incremental (verify_audit --incremental)",
            size=f"{incremental.events:,} new events on {incremental.last_event - incremental.events:,}",
            measured_seconds=incremental_seconds,
            floor_seconds=alone_seconds,
            target_ratio=0.5,
            note="measured: the nightly run from the checkpoint the last intact run reached, over a trail of a million "
            f"events; floor: a full verification of {NEW_EVENTS:,} events alone (target: under twice that).",
        ),
    ]
