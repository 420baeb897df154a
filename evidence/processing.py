"""Processing one evidence: verify → parse → normalise, then write all its facts in one transaction.

Steps (evidence_process):
1. claim: pending → processing (own short transaction, so the status page shows it);
2. read the raw bytes from storage and verify signatures / subject (verdict);
3. parse with the type's parser into unsaved fact rows (evidence/facts.py);
4. in ONE transaction: delete this evidence's old facts, insert the new ones, set the final state, audit.
A worker killed anywhere before step 4 commits leaves the previous facts (or none) and the state
"processing"; the re-run (acks_late redelivery, or evidence_sweep past the deadline) produces exactly one complete
result. Whatever else goes wrong ends the evidence `failed` with the reason: nothing stays in flight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DataError, InterfaceError, OperationalError, connection, connections, transaction
from django.db.models import CharField, OuterRef, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from changecontrol import audit
from changecontrol.models import AuditEvent
from evidence import services, storage
from evidence.facts import Facts, facts_of, storable
from evidence.models import (
    COUNTING_VERDICTS,
    Artifact,
    CoverageFile,
    Evidence,
    Provenance,
    SbomComponent,
    StaticFinding,
    TestResult,
    VexStatement,
    Vulnerability,
)
from evidence.parsers.base import EvidenceParseError
from evidence.vex import vex_apply

log = logging.getLogger(__name__)

BATCH = 5000  # rows per INSERT; progress is reported after each batch
FACT_MODELS = (TestResult, CoverageFile, StaticFinding, SbomComponent, Vulnerability, VexStatement, Provenance)
# Transient: the database went away or the storage hiccupped. The task retries these; anything else fails the evidence.
TRANSIENT = (OperationalError, InterfaceError, OSError, ConnectionError)
FINISHED_STATES = (Evidence.State.PARSED, Evidence.State.REJECTED, Evidence.State.FAILED, Evidence.State.SUPERSEDED)


@dataclass
class Verdict:
    """The outcome of checking who signed the evidence and what it is about."""

    verdict: str
    detail: str = ""
    signer_key: Any = None
    content: bytes | None = None  # what to parse, when it is not the raw bytes (a DSSE payload's predicate)
    content_type: str = ""  # the evidence type of `content`
    statement: Any = None


class Rejected(Exception):
    """Verification refused the evidence (invalid signature, subject mismatch)."""


# ---------------------------------------------------------------- entry point


def evidence_process(*, evidence_id: int, reprocess: bool = False) -> Evidence | None:
    """Process one evidence; a finished one is left alone unless `reprocess` (so redelivery is harmless)."""
    # 1. Claim.
    with transaction.atomic():
        evidence = Evidence.objects.select_for_update().filter(pk=evidence_id).first()
        if evidence is None:
            log.warning("evidence %s vanished before processing", evidence_id)
            return None
        if evidence.state in FINISHED_STATES and not reprocess:
            return evidence
        _claim(evidence)
    try:
        return _verify_parse_write(evidence_id)
    except TRANSIENT:
        raise  # the task retries these, and gives up with a reason (evidence.tasks)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # whatever the input, the evidence ends
        log.exception("processing evidence %s stopped on an unexpected error", evidence_id)
        return _finish_failed(
            Evidence.objects.select_related("artifact").get(pk=evidence_id), _unexpected(exc), verdict=None
        )


def _unexpected(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "the file nests deeper than can be read (thousands of levels); no tool writes that, check the file"
    return (
        f"processing stopped on an error nobody foresaw ({type(exc).__name__}: {str(exc)[:500]}); reprocess it "
        "once the cause is fixed"
    )


def _verify_parse_write(evidence_id: int) -> Evidence:
    evidence = Evidence.objects.select_related("artifact", "product").get(pk=evidence_id)
    # 2. Read and verify (storage errors are OSError: the task retries them).
    raw = storage.read_bytes(evidence.storage_name)
    signature = storage.read_bytes(evidence.signature_storage_name) if evidence.signature_storage_name else None
    _progress(evidence_id, 10)
    try:
        verdict = verify(evidence=evidence, raw=raw, signature=signature)
    except EvidenceParseError as exc:
        return _finish_failed(evidence, str(exc))
    if verdict.verdict in (Evidence.Verdict.INVALID_SIGNATURE, Evidence.Verdict.SUBJECT_MISMATCH):
        return _finish_rejected(evidence, verdict)
    _progress(evidence_id, 20)
    # 3. Parse.
    try:
        facts = facts_of(evidence=evidence, raw=raw, statement=verdict.statement)
    except EvidenceParseError as exc:
        return _finish_failed(evidence, str(exc), verdict=verdict)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        # A parser bug or an input nobody foresaw: fail this evidence with the reason, never the worker.
        log.exception("parser crashed on evidence %s", evidence_id)
        return _finish_failed(evidence, f"the file could not be read: {type(exc).__name__}: {exc}", verdict=verdict)
    _progress(evidence_id, 60)
    # 4. Write everything at once.
    try:
        return _finish_parsed(evidence, verdict, facts)
    except (DataError, UnicodeEncodeError):
        # Text PostgreSQL cannot hold (U+0000, a lone surrogate such as \ud800) reached a row: clean all of them
        # (rare, so only then) and write once more.
        log.warning("evidence %s holds text PostgreSQL cannot store; writing it cleaned", evidence_id)
        return _finish_parsed(evidence, verdict, storable(facts))


# ---------------------------------------------------------------- nothing stays in flight


def evidence_give_up(*, evidence_id: int, reason: str) -> Evidence | None:
    """Fail an unfinished evidence with the reason (retries exhausted, deadline passed); a finished one is kept."""
    with transaction.atomic():
        evidence = Evidence.objects.select_for_update().filter(pk=evidence_id).first()
        if evidence is None or evidence.state in FINISHED_STATES:
            return evidence
        if evidence.state == Evidence.State.PENDING:
            _claim(evidence)  # pending → failed is no step of processing: it fails as a run that could not finish
    return _finish_failed(Evidence.objects.select_related("artifact").get(pk=evidence_id), reason)


def _in_flight_since():
    """The time of the evidence's latest trail event: its upload, its reprocess request or its latest claim."""
    return Subquery(
        AuditEvent.objects.filter(object_type="evidence.evidence", object_id=Cast(OuterRef("pk"), CharField()))
        .order_by("-at")
        .values("at")[:1]
    )


def evidence_sweep(*, now=None) -> dict[str, int]:
    """Re-queue pending evidence whose task was lost; re-run, then fail, processing stuck past its deadline.

    pending for longer than CUSTODY_EVIDENCE_REQUEUE_SECONDS: its message never reached a worker (the broker was
    down at upload), so it is queued again, at most once per that interval. processing for longer than
    CUSTODY_EVIDENCE_DEADLINE_SECONDS: its worker stopped mid-task; it runs again until it has had
    CUSTODY_EVIDENCE_MAX_ATTEMPTS attempts, then fails with the reason.
    """
    from evidence.tasks import process_evidence

    now = now or timezone.now()
    requeue_after = settings.CUSTODY_EVIDENCE_REQUEUE_SECONDS
    deadline = settings.CUSTODY_EVIDENCE_DEADLINE_SECONDS
    max_attempts = settings.CUSTODY_EVIDENCE_MAX_ATTEMPTS
    done = {"requeued": 0, "rerun": 0, "failed": 0}
    pending = Evidence.objects.filter(state=Evidence.State.PENDING).annotate(since=_in_flight_since())
    for evidence_id, since in pending.filter(since__lt=now - timedelta(seconds=requeue_after)).values_list(
        "pk", "since"
    ):
        if cache.add(f"evidence-requeued-{evidence_id}-{since.timestamp()}", 1, timeout=requeue_after):
            process_evidence.delay(evidence_id)
            done["requeued"] += 1
    stuck = Evidence.objects.filter(state=Evidence.State.PROCESSING).annotate(since=_in_flight_since())
    for evidence_id, attempts in stuck.filter(since__lt=now - timedelta(seconds=deadline)).values_list(
        "pk", "attempts"
    ):
        if attempts < max_attempts:
            process_evidence.delay(evidence_id)
            done["rerun"] += 1
        else:
            evidence_give_up(
                evidence_id=evidence_id,
                reason=f"processing did not finish within {deadline // 60} minutes in {attempts} attempts (a worker "
                "stopped mid-task each time); reprocess it to try again",
            )
            done["failed"] += 1
    return done


def _claim(evidence: Evidence) -> None:
    """pending (or an unfinished processing) → processing, one more attempt; the caller holds the row lock."""
    Evidence.objects.filter(pk=evidence.pk).update(
        state=Evidence.State.PROCESSING, progress=5, attempts=evidence.attempts + 1, superseded_by=None
    )
    # Sealed at each step (DESIGN §6): a row left "processing" is then what the trail says, not a rewrite.
    audit.record(
        actor=None,
        action="evidence.processing",
        obj=evidence,
        before={"state": evidence.state},
        after={"state": "processing", "attempt": evidence.attempts + 1},
        seal=[evidence],
    )


# ---------------------------------------------------------------- verification


def verify(*, evidence: Evidence, raw: bytes, signature: bytes | None) -> Verdict:
    from evidence import verification as v

    keys = services.trusted_keys(
        product=evidence.product, evidence_type=evidence.evidence_type, at=evidence.uploaded_at
    )
    if evidence.evidence_type == Evidence.Type.DSSE:
        try:
            envelope = v.parse_dsse(raw)
        except v.SignatureError as exc:
            raise EvidenceParseError(str(exc)) from None
        outcome = v.verify_dsse(envelope=envelope, trusted_keys=[(k.key_id, k.public_key_pem) for k in keys])
        if not outcome.verified:
            return Verdict(Evidence.Verdict.INVALID_SIGNATURE, _no_key_detail(outcome.detail, keys, evidence))
        key = next(k for k in keys if k.key_id == outcome.key_id)
        try:
            statement = v.parse_statement(envelope.payload)
            matches = v.subject_matches(statement=statement, artifact_digest=evidence.artifact.digest)
        except v.SignatureError as exc:
            raise EvidenceParseError(f"payload: {exc}") from None
        if not matches:
            subjects = ", ".join(
                f"{name or '?'} " + " ".join(f"{alg}:{value}" for alg, value in digest.items())
                for name, digest in statement.subjects
            )[:500]
            return Verdict(
                Evidence.Verdict.SUBJECT_MISMATCH,
                f"the statement is about {subjects}, not artifact {evidence.artifact.digest}",
                signer_key=key,
            )
        return Verdict(Evidence.Verdict.SIGNED, outcome.detail, signer_key=key, statement=statement)

    if evidence.evidence_type == Evidence.Type.COSIGN:
        if signature is None:
            raise EvidenceParseError(
                "a cosign upload needs its signature: send the simplesigning payload as `file` and the base64 "
                "signature as `signature`"
            )
        key = _blob_signer(keys, signature, raw)
        if key is None:
            return Verdict(Evidence.Verdict.INVALID_SIGNATURE, _no_key_detail("", keys, evidence))
        try:
            claim = v.parse_cosign_simplesigning(raw)
        except v.SignatureError as exc:
            raise EvidenceParseError(str(exc)) from None
        if claim.docker_manifest_digest != evidence.artifact.digest:
            return Verdict(
                Evidence.Verdict.SUBJECT_MISMATCH,
                f"the signature is for image {claim.docker_manifest_digest}, not artifact {evidence.artifact.digest}",
                signer_key=key,
            )
        return Verdict(
            Evidence.Verdict.SIGNED,
            f"cosign signature verified with key {key.key_id} for {claim.docker_reference or 'the image'}",
            signer_key=key,
            statement=claim,
        )

    if signature is None:
        return Verdict(Evidence.Verdict.UNSIGNED, "no signature was uploaded with it")
    key = _blob_signer(keys, signature, raw)
    if key is None:
        return Verdict(Evidence.Verdict.INVALID_SIGNATURE, _no_key_detail("", keys, evidence))
    return Verdict(Evidence.Verdict.SIGNED, f"blob signature verified with key {key.key_id}", signer_key=key)


def _blob_signer(keys, signature: bytes, raw: bytes):
    from evidence import verification as v

    for key in keys:
        try:
            if v.verify_cosign_blob(public_key=key.public_key_pem, signature_b64_or_raw=signature, blob=raw):
                return key
        except v.SignatureError:
            return None  # the signature itself is unreadable: no key can verify it
    return None


def _no_key_detail(detail: str, keys, evidence: Evidence) -> str:
    if not keys:
        return (
            f"no registered, unrevoked signer key of {evidence.product.key} allowed for {evidence.evidence_type} "
            "was valid when this was uploaded, so the signature cannot be trusted"
        )
    return (
        detail or f"the signature does not verify with any of the {len(keys)} trusted key(s) of {evidence.product.key}"
    )


# ---------------------------------------------------------------- the final write


def _clear_facts(evidence: Evidence) -> None:
    # Vulnerabilities elsewhere may point at this evidence's VEX statements (PROTECT): unlink them first.
    Vulnerability.objects.filter(suppressed_by__evidence=evidence).update(suppressed_by=None)
    for model in FACT_MODELS:
        model.objects.filter(evidence=evidence).delete()


def _finish_parsed(evidence: Evidence, verdict: Verdict, facts: Facts) -> Evidence:
    total = len(facts.rows)
    # Progress from inside the transaction must come from another connection to be seen (PostgreSQL only;
    # under an outer transaction — tests, eager runs — that connection would not even see the row).
    side_progress = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        _clear_facts(evidence)
        by_model: dict[type, list] = {}
        for row in facts.rows:
            by_model.setdefault(type(row), []).append(row)
        written = 0
        for model, rows in by_model.items():
            for start in range(0, len(rows), BATCH):
                model.objects.bulk_create(rows[start : start + BATCH])
                written += len(rows[start : start + BATCH])
                if total > BATCH and side_progress:
                    _side_progress(evidence.pk, 60 + int(39 * written / total))
        # Lock the row last: the progress updates above come from another connection and must not wait on us.
        locked = _lock_copies(evidence)
        counts = verdict.verdict == Evidence.Verdict.SIGNED or verdict.verdict == Evidence.Verdict.UNSIGNED
        Evidence.objects.filter(pk=evidence.pk).update(
            state=Evidence.State.PARSED,
            verdict=verdict.verdict,
            verdict_detail=verdict.detail,
            signer_key=verdict.signer_key,
            summary=facts.summary,
            error="",
            progress=100,
            processed_at=timezone.now(),
        )
        audit.record(
            actor=None,
            action="evidence.parsed",
            obj=locked,
            before={"state": locked.state},
            after={
                "state": "parsed",
                "verdict": verdict.verdict,
                "signer_key": verdict.signer_key.key_id if verdict.signer_key else "",
                "rows": total,
                "counts_as_evidence": counts,
                "summary": facts.summary,
            },
            seal=[locked],
        )
        settled = _settle_copies(evidence)
        if settled or facts.applies_vex or any(isinstance(r, VexStatement) for r in facts.rows):
            vex_apply(evidence.artifact)
    return Evidence.objects.get(pk=evidence.pk)


def _finish_rejected(evidence: Evidence, verdict: Verdict) -> Evidence:
    with transaction.atomic():
        _clear_facts(evidence)
        locked = _lock_copies(evidence)
        Evidence.objects.filter(pk=evidence.pk).update(
            state=Evidence.State.REJECTED,
            verdict=verdict.verdict,
            verdict_detail=verdict.detail,
            signer_key=verdict.signer_key,
            summary={},
            error="",
            progress=100,
            processed_at=timezone.now(),
        )
        audit.record(
            actor=None,
            action="evidence.rejected",
            obj=locked,
            before={"state": locked.state},
            after={"state": "rejected", "verdict": verdict.verdict},
            reason=verdict.detail,
            seal=[locked],
        )
        settled = _settle_copies(evidence)  # a copy this one had superseded counts again
        if settled or evidence.evidence_type in (Evidence.Type.OPENVEX, Evidence.Type.CYCLONEDX):
            vex_apply(evidence.artifact)  # a VEX that no longer counts must stop suppressing
    return Evidence.objects.get(pk=evidence.pk)


def _finish_failed(evidence: Evidence, error: str, *, verdict: Verdict | None = None) -> Evidence:
    with transaction.atomic():
        _clear_facts(evidence)
        locked = _lock_copies(evidence)
        Evidence.objects.filter(pk=evidence.pk).update(
            state=Evidence.State.FAILED,
            verdict=verdict.verdict if verdict else Evidence.Verdict.UNVERIFIED,
            verdict_detail=verdict.detail if verdict else "",
            signer_key=verdict.signer_key if verdict else None,
            summary={},
            error=error[:8000],
            progress=100,
            processed_at=timezone.now(),
        )
        audit.record(
            actor=None,
            action="evidence.failed",
            obj=locked,
            before={"state": locked.state},
            after={"state": "failed"},
            reason=error[:2000],
            seal=[locked],
        )
        if _settle_copies(evidence):  # a copy this one had superseded counts again
            vex_apply(evidence.artifact)
    return Evidence.objects.get(pk=evidence.pk)


# ---------------------------------------------------------------- copies of one file


def _copies_of(evidence: Evidence):
    """Every evidence holding the same file for the same artifact and type (sent with other signatures, or none)."""
    return Evidence.objects.filter(
        artifact_id=evidence.artifact_id, evidence_type=evidence.evidence_type, sha256=evidence.sha256
    ).order_by("id")


def _lock_copies(evidence: Evidence) -> Evidence:
    """Lock every copy of the evidence's file, in id order, and return the evidence itself, locked.

    Copies finishing at the same moment settle which of them counts (_settle_copies): taking their locks in one
    order makes the second wait for the first instead of each holding its own row and deadlocking on the other's.
    NO KEY: a copy still writing its facts holds a KEY SHARE lock on its row (their foreign keys); FOR UPDATE would
    wait on that while holding the row the other copy locks next.
    """
    copies = _copies_of(evidence).select_for_update(no_key=True)
    return next(copy for copy in copies if copy.pk == evidence.pk)


def _settle_copies(evidence: Evidence) -> bool:
    """Let one copy of the evidence's file count: a signed copy over an unsigned one, else the newest.

    Copies hold the same tests, components and findings, so counting two would double every total; the others are
    superseded (kept, facts and all, naming the copy that counts), and one counts again when that copy stops
    counting (rejected or failed on reprocessing). Runs in the finishing transaction, after _lock_copies.
    Returns whether any copy changed state.
    """
    copies = [
        copy
        for copy in _copies_of(evidence)
        if copy.state in (Evidence.State.PARSED, Evidence.State.SUPERSEDED) and copy.verdict in COUNTING_VERDICTS
    ]
    if not copies:
        return False
    counting = max(copies, key=lambda copy: (copy.verdict == Evidence.Verdict.SIGNED, copy.pk))
    changed = False
    for copy in copies:
        if copy.pk == counting.pk:
            if copy.state == Evidence.State.SUPERSEDED:
                Evidence.objects.filter(pk=copy.pk).update(state=Evidence.State.PARSED, superseded_by=None)
                audit.record(
                    actor=None,
                    action="evidence.reinstated",
                    obj=copy,
                    before={"state": copy.state, "superseded_by": f"EV-{copy.superseded_by_id}"},
                    after={"state": "parsed"},
                    reason="no other copy of the same file counts now",
                    seal=[copy],
                )
                changed = True
        elif copy.state != Evidence.State.SUPERSEDED or copy.superseded_by_id != counting.pk:
            Evidence.objects.filter(pk=copy.pk).update(state=Evidence.State.SUPERSEDED, superseded_by=counting)
            signed = " with a signature that verified" if counting.verdict == Evidence.Verdict.SIGNED else ""
            audit.record(
                actor=None,
                action="evidence.superseded",
                obj=copy,
                before={"state": copy.state},
                after={"state": "superseded", "superseded_by": counting.human_id},
                reason=f"{counting.human_id} holds the same file{signed} and counts instead",
                seal=[copy],
            )
            changed = True
    return changed


# ---------------------------------------------------------------- helpers


def _progress(evidence_id: int, percent: int) -> None:
    Evidence.objects.filter(pk=evidence_id).update(progress=percent)


def _side_progress(evidence_id: int, percent: int) -> None:
    """Report progress from a separate connection, so a poller sees it while the big transaction is open."""
    side = connections.create_connection("default")
    try:
        with side.cursor() as cursor:
            cursor.execute("UPDATE evidence_evidence SET progress = %s WHERE id = %s", [percent, evidence_id])
    except Exception:  # progress is cosmetic; never fail processing because of it
        log.debug("progress update failed", exc_info=True)
    finally:
        side.close()


def artifact_of(evidence_id: int) -> Artifact:
    return Evidence.objects.select_related("artifact").get(pk=evidence_id).artifact
