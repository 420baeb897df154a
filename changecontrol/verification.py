"""Verify the audit trail and the records it seals: what `verify_audit` and the nightly task run (DESIGN §6).

One walk answers four questions, and names everything that is wrong rather than stopping at the first:

1. The chain: every event in order, linked to the one before, hashing to what it stores.
2. The checkpoints: every one (not only the latest) still names its event's hash and carries Custody's signature;
   none recorded by the trail is missing from the table, none in the table is unknown to the trail.
3. The records: every sealed record's row still hashes to the seal its latest event recorded (changecontrol.seals);
   a row rewritten, removed or inserted behind Custody's back is named with its type, human ID and fields.
4. Coverage: events after the latest checkpoint (but the checkpoint's own event) are not vouched for by Custody's
   signature, so the trail is not called intact until a checkpoint covers them.

With `witnesses`, the database's checkpoints are compared with the copies published outside it (witnesses.py).

Incremental runs start from the checkpoint the latest intact run reached (its `audit.verified` event) and walk only
what came after: the new events, the new checkpoints and the records those events sealed. A full run walks all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from changecontrol import audit, seals
from changecontrol.models import AuditChainHead, AuditCheckpoint, AuditEvent, record_type
from common.canonical import canonical_json

CHECKPOINT_ACTION = "audit.checkpoint_signed"
VERIFIED_ACTION = "audit.verified"
FAILED_ACTION = "audit.verification_failed"
# Findings named in full; beyond this many of one kind they are counted (a wholesale rewrite must stay readable).
NAMED_PER_KIND = 50


@dataclass(frozen=True)
class Finding:
    """One thing that is not as Custody recorded it."""

    kind: str  # "event", "checkpoint", "record" or "witness"
    subject: str  # what it is about, as a person names it: "event #12", "SIG-4", "checkpoint 3"
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.detail}"


@dataclass
class AuditReport:
    """What one verification found."""

    kind: str  # "full" or "incremental"
    first_event: int = 1
    last_event: int = 0
    events: int = 0
    checkpoints: int = 0
    records: int = 0
    covered_through: int = 0  # the event the latest valid checkpoint signs
    checkpoint_id: int | None = None
    findings: list[Finding] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)  # why Custody cannot vouch for all of it (not tampering)
    notes: list[str] = field(default_factory=list)

    @property
    def tampered(self) -> bool:
        return bool(self.findings)

    @property
    def intact(self) -> bool:
        return not self.findings and not self.uncovered

    def add(self, kind: str, subject: str, detail: str) -> None:
        self.findings.append(Finding(kind, subject, detail))

    def summary(self) -> dict[str, Any]:
        """The outcome as the audit event that records it holds it."""
        return {
            "kind": self.kind,
            "intact": self.intact,
            "events": self.events,
            "from_event": self.first_event,
            "through_event": self.covered_through,
            "checkpoint": self.checkpoint_id,
            "checkpoints": self.checkpoints,
            "records": self.records,
            "findings": [str(finding) for finding in self.findings[:NAMED_PER_KIND]],
            "finding_count": len(self.findings),
            "uncovered": self.uncovered,
        }


@dataclass
class _Walk:
    """What the chain walk collects on its way: seals, checkpoint events, the hashes checkpoints name."""

    wanted_hashes: set[int]
    latest_seals: dict[tuple[str, int], tuple[int, dict]] = field(default_factory=dict)
    checkpoint_events: list[tuple[int, dict]] = field(default_factory=list)
    hashes: dict[int, str] = field(default_factory=dict)
    broken_at: int | None = None


def verify(*, incremental: bool = False, witnesses: Iterable[Any] = ()) -> AuditReport:
    """Verify the trail and the sealed records (incremental: only what came after the last intact run)."""
    base = _incremental_base() if incremental else None
    report = AuditReport(kind="incremental" if base else "full")
    if incremental and base is None:
        report.notes.append("no earlier intact verification to start from: verified everything")
    after_id, previous_hash, base_checkpoint = 0, audit.GENESIS_HASH, None
    if base is not None:
        base_checkpoint = _usable_base(base, report)
        if base_checkpoint is None:  # the base no longer holds: trust nothing, walk everything
            report.kind = "full"
        else:
            after_id, previous_hash = base_checkpoint.event_id, base_checkpoint.event_hash
    checkpoints = list(
        AuditCheckpoint.objects.filter(id__gte=base_checkpoint.pk if base_checkpoint else 0).order_by("id")
    )
    walk = _Walk(wanted_hashes={c.event_id for c in checkpoints})
    report.first_event = after_id + 1
    _walk_chain(report, walk, after_id=after_id, previous_hash=previous_hash)
    _check_checkpoints(report, walk, checkpoints, full=base_checkpoint is None)
    _check_coverage(report)
    if walk.broken_at is None:
        _check_records(report, walk, full=base_checkpoint is None)
    else:
        report.notes.append(
            f"sealed records were not checked: the chain is broken at event #{walk.broken_at}, "
            "so the seals after it cannot be trusted; investigate that first"
        )
    for witness in witnesses:
        _compare_with_witness(report, witness)
    return report


# ---------------------------------------------------------------- incremental base


def _incremental_base() -> dict[str, Any] | None:
    """The latest intact verification's outcome (the trail records each one)."""
    after = AuditEvent.objects.filter(action=VERIFIED_ACTION).order_by("-id").values_list("after", flat=True).first()
    return after if isinstance(after, dict) and after.get("checkpoint") else None


def _usable_base(base: dict[str, Any], report: AuditReport) -> AuditCheckpoint | None:
    """The checkpoint the last intact run reached, if it still stands (else the run becomes a full one)."""
    from common.keys import keyring

    checkpoint = AuditCheckpoint.objects.filter(pk=base["checkpoint"]).first()
    subject = f"checkpoint {base['checkpoint']}"
    if checkpoint is None:
        report.add("checkpoint", subject, "the last intact verification ended here, and it is gone from the table")
        return None
    event_hash = AuditEvent.objects.filter(pk=checkpoint.event_id).values_list("hash", flat=True).first()
    if event_hash != checkpoint.event_hash or not keyring().verify(checkpoint.statement(), checkpoint.signed_blob()):
        report.add("checkpoint", subject, "no longer matches its event or Custody's signature")
        return None
    return checkpoint


# ---------------------------------------------------------------- 1. the chain


def _walk_chain(report: AuditReport, walk: _Walk, *, after_id: int, previous_hash: str) -> None:
    expected = after_id + 1
    sha256, canonical = hashlib.sha256, canonical_json
    last = after_id
    for fields, stored_hash in audit.stored_events(after_id=after_id):
        event_id = fields["id"]
        if event_id != expected:
            report.add("event", f"event #{expected}", f"is missing (the next present is #{event_id})")
            walk.broken_at = expected
            break
        if fields["previous_hash"] != previous_hash:
            report.add("event", f"event #{event_id}", "does not link to the event before it")
            walk.broken_at = event_id
            break
        if sha256(canonical(fields)).hexdigest() != stored_hash:
            report.add("event", f"event #{event_id}", f"({fields['action']}) was altered: its hash does not match")
            walk.broken_at = event_id
            break
        for sealed in fields.get("seals") or ():
            walk.latest_seals[(sealed["type"], sealed["id"])] = (event_id, sealed)
        if fields["action"] == CHECKPOINT_ACTION:
            walk.checkpoint_events.append((event_id, fields["after"] or {}))
        if event_id in walk.wanted_hashes:
            walk.hashes[event_id] = stored_hash
        previous_hash, expected, last = stored_hash, expected + 1, event_id
        report.events += 1
    report.last_event = last
    head = AuditChainHead.objects.filter(singleton=True).values_list("last_event_id", flat=True).first() or 0
    if walk.broken_at is None and head != last:
        report.add("event", f"events #{last + 1}–#{head}", f"are missing (the chain head records #{head})")
        walk.broken_at = last + 1


# ---------------------------------------------------------------- 2. checkpoints


def _check_checkpoints(report: AuditReport, walk: _Walk, checkpoints: list[AuditCheckpoint], *, full: bool) -> None:
    from common.keys import keyring

    ring = keyring()
    previous: AuditCheckpoint | None = None
    for checkpoint in checkpoints:
        subject = f"checkpoint {checkpoint.pk}"
        report.checkpoints += 1
        problem = ""
        if checkpoint.event_id > report.last_event and walk.broken_at is None:
            problem = f"names event #{checkpoint.event_id}, beyond the end of the chain (#{report.last_event})"
        elif checkpoint.event_id in walk.hashes and walk.hashes[checkpoint.event_id] != checkpoint.event_hash:
            problem = f"event #{checkpoint.event_id} no longer matches this signed checkpoint"
        elif not ring.verify(checkpoint.statement(), checkpoint.signed_blob()):
            problem = "carries a signature Custody did not make"
        elif checkpoint.event_count != checkpoint.event_id:
            problem = f"counts {checkpoint.event_count} events but signs event #{checkpoint.event_id}"
        elif previous is not None and (
            checkpoint.event_id < previous.event_id or checkpoint.created_at < previous.created_at
        ):
            problem = f"goes back in the chain or in time after checkpoint {previous.pk}"
        if problem:
            report.add("checkpoint", subject, problem)
            continue
        previous = checkpoint
        if checkpoint.event_id <= report.last_event and checkpoint.event_id >= report.covered_through:
            report.covered_through, report.checkpoint_id = checkpoint.event_id, checkpoint.pk
    # The trail records every checkpoint it signed: one missing from the table was removed, one the trail never
    # recorded was put there by hand.
    by_event = {(c.event_id, c.event_hash): c for c in checkpoints}
    recorded = set()
    for event_id, after in walk.checkpoint_events:
        key = (after.get("event"), after.get("hash"))
        recorded.add(key)
        if key not in by_event:
            report.add(
                "checkpoint",
                f"checkpoint {after.get('checkpoint', '?')}",
                f"signed by event #{event_id} over event #{after.get('event')}, is missing from the checkpoint table",
            )
    for checkpoint in checkpoints:
        # Its own event follows the event it signs: walked unless it came before an incremental run's start.
        walked = full or checkpoint.event_id >= report.first_event - 1
        if walked and (checkpoint.event_id, checkpoint.event_hash) not in recorded and walk.broken_at is None:
            report.add("checkpoint", f"checkpoint {checkpoint.pk}", "was never recorded by the audit trail")


# ---------------------------------------------------------------- 4. coverage


def _check_coverage(report: AuditReport) -> None:
    if report.checkpoint_id is None:
        report.uncovered.append(
            "no valid signed checkpoint exists: the chain could have been rewritten from any event; "
            "run `manage.py checkpoint_audit` (Celery beat does so hourly)"
        )
        return
    first, last = report.covered_through + 1, report.last_event
    # The checkpoint's own event comes right after the event it signs: Custody's signature stands behind it.
    if first <= last and AuditEvent.objects.filter(pk=first, action=CHECKPOINT_ACTION).exists():
        first += 1
    if first <= last:
        report.uncovered.append(
            f"events #{first}–#{last} ({last - first + 1}) came after the latest checkpoint "
            f"({report.checkpoint_id}, event #{report.covered_through}) and are not covered by a signed checkpoint "
            "yet: run `manage.py checkpoint_audit`, then verify again"
        )


# ---------------------------------------------------------------- 3. sealed records


def _check_records(report: AuditReport, walk: _Walk, *, full: bool) -> None:
    by_type: dict[str, dict[int, tuple[int, dict]]] = {}
    for (type_name, pk), sealed in walk.latest_seals.items():
        by_type.setdefault(type_name, {})[pk] = sealed
    for model in seals.sealed_models():
        type_name = record_type(model)
        sealed_here = by_type.pop(type_name, {})
        pks = set(sealed_here)
        if full:
            pks |= set(seals.must_be_sealed(model).values_list("pk", flat=True))
        layout = seals.layout_of(model)
        ordered = sorted(pks)
        for start in range(0, len(ordered), seals.BATCH):
            batch = ordered[start : start + seals.BATCH]
            stored = dict(seals.contents(layout, batch))
            for pk in batch:
                _check_record(report, model, pk, sealed_here.get(pk), stored.get(pk))
    for type_name, sealed_here in by_type.items():
        for pk, (event_id, _) in sorted(sealed_here.items()):
            report.add("record", f"{type_name} #{pk}", f"sealed by event #{event_id}, of a kind Custody no longer has")


def _check_record(report: AuditReport, model, pk: int, sealed: tuple[int, dict] | None, content: dict | None) -> None:
    report.records += 1
    if content is None:
        event_id = sealed[0] if sealed else "?"
        report.add("record", f"{record_type(model)} #{pk}", f"sealed by event #{event_id}, no longer exists")
        return
    if sealed is None:
        report.add(
            "record",
            seals.human_id(model, pk),
            f"({record_type(model)}) carries no seal: it was written behind Custody's back, or before this version "
            "sealed records (then run `manage.py seal_records` once)",
        )
        return
    event_id, seal = sealed
    if hashlib.sha256(canonical_json(content)).hexdigest() == seal.get("sha256"):
        return
    fields = ", ".join(seals.changed_fields(seal, content))
    report.add(
        "record",
        seals.human_id(model, pk),
        f"({record_type(model)}) no longer matches its seal in event #{event_id}: changed {fields}",
    )


# ---------------------------------------------------------------- witnesses


def _compare_with_witness(report: AuditReport, witness) -> None:
    from changecontrol.witnesses import WitnessUnavailable, checkpoint_entry

    try:
        published = {int(entry["checkpoint"]): entry for entry in witness.entries()}
    except WitnessUnavailable as error:
        report.uncovered.append(f"witness {witness.uri} could not be read: {error}")
        return
    stored = {c.pk: c for c in AuditCheckpoint.objects.order_by("id")}
    for pk, entry in sorted(published.items()):
        checkpoint = stored.get(pk)
        if checkpoint is None:
            report.add(
                "witness",
                f"checkpoint {pk}",
                f"(event #{entry.get('event_id')}, {entry.get('created_at')}) is at witness {witness.uri} "
                "but no longer in the database: it was removed",
            )
            continue
        expected = checkpoint_entry(checkpoint)
        differs = [name for name in expected if str(entry.get(name)) != str(expected[name])]
        if differs:
            report.add(
                "witness",
                f"checkpoint {pk}",
                f"differs from its copy at witness {witness.uri}: {', '.join(differs)} altered",
            )
    newest = max(published, default=0)
    for pk, checkpoint in stored.items():
        if pk in published:
            continue
        if pk < newest:
            report.add(
                "witness",
                f"checkpoint {pk}",
                f"is in the database but never reached witness {witness.uri}, which holds later ones",
            )
        else:
            report.uncovered.append(
                f"checkpoint {pk} (event #{checkpoint.event_id}) is not at witness {witness.uri} yet"
            )


def unsealed_records() -> dict[type, list[int]]:
    """The records that must carry a seal and carry none in the trail (written before records were sealed)."""
    sealed: set[tuple[str, int]] = set()
    for fields, _ in audit.stored_events():
        sealed.update((entry["type"], entry["id"]) for entry in fields.get("seals") or ())
    unsealed = {}
    for model in seals.sealed_models():
        type_name = record_type(model)
        pks = seals.must_be_sealed(model).order_by("pk").values_list("pk", flat=True)
        missing = [pk for pk in pks if (type_name, pk) not in sealed]
        if missing:
            unsealed[model] = missing
    return unsealed


def outcome_record(report: AuditReport) -> AuditEvent:
    """Record a verification's outcome in the trail: an intact one is where the next incremental run starts; a
    failed one is alerted to every product's subscribers (alerts.feeds)."""
    from django.db import transaction

    with transaction.atomic():
        return audit.record(
            actor=None,
            action=VERIFIED_ACTION if report.intact else FAILED_ACTION,
            after=report.summary(),
            reason="; ".join(report.uncovered) if report.uncovered and not report.tampered else "",
        )
