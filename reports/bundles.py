"""The signed evidence bundle of a release (issue 7, item 2), in the format `custody_cli.bundle` verifies offline.

Files: the PDF packet, every evidence file as received, JSON exports of the release and what it depends on,
the release's audit events with their chain links and a signed checkpoint, and VERIFY.md. The manifest of
all of them is signed with Custody's Ed25519 key (`keyring().sign_detached`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC
from typing import Any

from django.core.files.storage import default_storage
from django.utils import timezone

from changecontrol.models import AuditCheckpoint, Signature, record_type
from common.canonical import jsonable
from common.keys import keyring
from custody_cli.bundle import build_bundle
from reports.packets import _release_objects, release_audit_events

_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def _json_file(value: Any) -> bytes:
    # Indented and sorted: auditors read these with a text editor, and the same facts give the same bytes.
    return (json.dumps(jsonable(value), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _utc_iso(value) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _evidence_path(evidence) -> str:
    name = (
        _UNSAFE_NAME_CHARACTERS.sub("_", evidence.name or evidence.storage_name.rsplit("/", 1)[-1]).strip("._")
        or "file"
    )
    return f"evidence/{evidence.evidence_type}/{evidence.sha256}-{name[:100]}"


def _evidence_files(release) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """Raw evidence bytes as received, and an index saying what each file is."""
    from evidence.models import Evidence

    files: dict[str, bytes] = {}
    index = []
    for evidence in Evidence.objects.filter(artifact__releases=release).select_related("artifact").order_by("pk"):
        path = _evidence_path(evidence)
        entry = {
            "id": evidence.human_id,
            "artifact": evidence.artifact.digest,
            "type": evidence.evidence_type,
            "name": evidence.name,
            "sha256": evidence.sha256,
            "size": evidence.size,
            "state": evidence.state,
            "verdict": evidence.verdict,
            "verdict_detail": evidence.verdict_detail,
            "uploaded_at": _utc_iso(evidence.uploaded_at),
            "path": None,
        }
        try:
            with default_storage.open(evidence.storage_name, "rb") as handle:
                files[path] = handle.read()
            entry["path"] = path
        except (FileNotFoundError, OSError) as error:
            # Said plainly in the bundle rather than silently left out: a missing file is itself a finding.
            entry["missing"] = f"the stored bytes could not be read: {error}"
        if evidence.signature_storage_name:
            try:
                with default_storage.open(evidence.signature_storage_name, "rb") as handle:
                    files[path + ".sig"] = handle.read()
                entry["signature_path"] = path + ".sig"
            except (FileNotFoundError, OSError):
                entry["signature_missing"] = True
        index.append(entry)
    return files, index


def _signature_json(signature: Signature) -> dict[str, Any]:
    return {
        "subject": signature.subject_human_id,
        "printed_name": signature.printed_name,
        "signer": signature.signer.username,
        "signed_at": _utc_iso(signature.signed_at),
        "meaning": signature.meaning,
        "role": signature.role,
        "comment": signature.comment,
        "content": signature.content,
        "content_sha256": signature.content_sha256,
        # The version number and digest of the policy the signer signed under, as decisions.json names policies.
        "policy_version": signature.policy_version.version if signature.policy_version_id else None,
        "policy_sha256": signature.policy_version.sha256 if signature.policy_version_id else None,
        "expires_at": _utc_iso(signature.expires_at),
        "invalidated_at": _utc_iso(signature.invalidated_at),
        "invalidated_reason": signature.invalidated_reason,
    }


def _decision_json(decision) -> dict[str, Any]:
    policy = decision.policy_version
    return {
        "id": decision.human_id,
        "artifact": decision.artifact.digest,
        "environment": decision.environment.key,
        "promotion": decision.promotion.human_id if decision.promotion_id else None,
        "decision": decision.decision,
        "gates": decision.gates,
        "approvals": decision.approvals,
        "reasons": decision.reasons,
        "policy": policy.document.name if policy else None,
        "policy_version": policy.version if policy else None,
        # The digest of the exact policy text the decision was evaluated under (PolicyVersion.sha256).
        "policy_sha256": policy.sha256 if policy else None,
        "inputs_sha256": decision.inputs_sha256,
        "answer_sha256": decision.answer_sha256,
        "evaluated_at": _utc_iso(decision.evaluated_at),
    }


def _exports(release) -> dict[str, bytes]:
    from approvals.models import Promotion
    from changecontrol.models import ChangeRequest
    from reports.decisions import promotion_records, release_decision_rows
    from reports.packets import _deployments, _release_deployments

    change_requests, promotions = _release_objects(release)
    deployments = list(_release_deployments(release))
    # The decision that counted for each promotion, as the packet prints it (decisions.json holds them all).
    counted = {r["id"]: r for r in promotion_records(promotions, deployments)}
    release_json = {
        "product": release.product.key,
        "version": release.version,
        "created_at": _utc_iso(release.created_at),
        "created_by": release.created_by.printed_name,
        "frozen_at": _utc_iso(release.frozen_at),
        "manifest": release.manifest,
        "manifest_sha256": release.manifest_sha256,
        "manifest_key_id": release.manifest_key_id,
        "manifest_signature": release.manifest_signature,
        "artifacts": [
            {"digest": a.digest, "name": a.name, "kind": a.kind, "build": a.build.human_id, "commit": a.build.commit}
            for a in release.artifacts.select_related("build", "build__product").order_by("digest")
        ],
        "change_requests": [cr.human_id for cr in change_requests],
        "promotions": [
            {
                "id": p.human_id,
                "environment": p.environment.key,
                "state": p.state,
                "tier": p.tier,
                "requester": p.requester.printed_name,
                "policy_version": p.policy_version.version,
                "requested_at": _utc_iso(p.requested_at),
                "decided_at": _utc_iso(p.decided_at),
                "deployed_at": _utc_iso(p.deployed_at),
                "rejection_reason": p.rejection_reason,
                "recorded_decision": (counted[p.human_id]["recorded"] or {}).get("id"),
                "recorded_decision_ids": (counted[p.human_id]["recorded"] or {}).get("ids", []),
                "recorded_decision_basis": counted[p.human_id]["basis"],
            }
            for p in promotions
        ],
    }
    crs_json = [
        {
            "id": cr.human_id,
            "title": cr.title,
            "why": cr.why,
            "what_changes": cr.what_changes,
            "affected_items": cr.affected_items,
            "kind": cr.kind,
            "type": cr.change_type,
            "state": cr.state,
            "tier": cr.tier,
            "risk_score": cr.risk_score,
            "risk_answers": cr.risk_answers,
            "verification_plan": cr.verification_plan,
            "rollback_plan": cr.rollback_plan,
            "requester": cr.requester.printed_name,
            "content_version": cr.content_version,
            "approved_automatically": cr.approved_automatically,
            "submitted_at": _utc_iso(cr.submitted_at),
            "decided_at": _utc_iso(cr.decided_at),
        }
        for cr in change_requests
    ]
    signatures = Signature.objects.filter(
        subject_type=record_type(ChangeRequest), subject_id__in=[cr.pk for cr in change_requests]
    ) | Signature.objects.filter(subject_type=record_type(Promotion), subject_id__in=[p.pk for p in promotions])
    approvals_json = [
        _signature_json(s) for s in signatures.select_related("signer", "policy_version").order_by("signed_at", "pk")
    ]
    decisions_json = [_decision_json(d) for d in release_decision_rows(release)]
    deployments_json = {
        "note": (
            "Every deployment of this release or of its artifacts, oldest first: normal, rollback and break-glass, "
            "whether it was authorised, the recorded decision it acted on (`decision`, an id in decisions.json), "
            "and each break-glass deployment's retrospective review."
        ),
        "deployments": _deployments(release, deployments),
    }
    events = list(release_audit_events(release, change_requests=change_requests, promotions=promotions))
    checkpoint = None
    if events:
        # The chain link: a checkpoint at or after the last event vouches for every event before it.
        found = AuditCheckpoint.objects.filter(event_id__gte=events[-1].pk).order_by("-pk").first()
        if found is not None:
            checkpoint = {
                "id": found.pk,
                "event_id": found.event_id,
                "event_hash": found.event_hash,
                "event_count": found.event_count,
                "created_at": found.created_at.isoformat(),
                "statement": found.statement().decode(),
                "key_id": found.key_id,
                "signature": found.signature,
            }
    audit_json = {
        "note": (
            "An excerpt of Custody's hash-chained audit trail: each event's hash covers its previous_hash. "
            "Events of other records sit between these in the full chain; the checkpoint, signed by Custody, "
            "names an event at or after the last one listed."
        ),
        "events": [
            {
                "id": e.pk,
                "at": e.at.isoformat(),
                "actor": e.actor_name,
                "action": e.action,
                "product_key": e.product_key,
                "object_type": e.object_type,
                "object_id": e.object_id,
                "object_human_id": e.object_human_id,
                "object_version": e.object_version,
                "before": e.before,
                "after": e.after,
                "reason": e.reason,
                "request_id": e.request_id,
                "client_address": e.client_address,
                "via_token": e.via_token,
                "previous_hash": e.previous_hash,
                "seals": e.seals,
                "hash": e.hash,
            }
            for e in events
        ],
        "checkpoint": checkpoint,
    }
    return {
        "release.json": _json_file(release_json),
        "change-requests.json": _json_file(crs_json),
        "approvals.json": _json_file(approvals_json),
        "decisions.json": _json_file(decisions_json),
        "deployments.json": _json_file(deployments_json),
        "audit-events.json": _json_file(audit_json),
        "test-results.json": _test_results_json(release),
        "trace-baseline.json": _trace_baseline_json(release),
    }


def _trace_baseline_json(release) -> bytes:
    """The release's trace baseline exactly as stored (its sha256 is the canonical JSON's): the scope the release is
    judged against, the items and links at the freeze, and the matrix then."""
    from traceability.models import TraceBaseline

    baseline = (
        TraceBaseline.objects.filter(product=release.product, release_version=release.version)
        .select_related("taken_by")
        .first()
    )
    if baseline is None:
        return _json_file({"note": "the release has not frozen: no trace baseline was taken yet", "baseline": None})
    return _json_file(
        {
            "note": (
                "The trace baseline taken when the release froze. `content.scope` is what the release is judged "
                "against: the items in force then, at their versions, plus those its change requests link. "
                "sha256 is the SHA-256 of content in canonical JSON (sorted keys, no spaces, UTF-8)."
            ),
            "taken_at": _utc_iso(baseline.taken_at),
            "taken_by": baseline.taken_by.printed_name,
            "sha256": baseline.sha256,
            "content": baseline.content,
        }
    )


def _test_results_json(release) -> bytes:
    """Every test result of the release's artifacts (the packet prints totals and failures only).

    Written row by row rather than through `_json_file`: a release may hold tens of thousands of results.
    """
    from evidence.models import TestResult

    rows = (
        TestResult.objects.filter(artifact__releases=release)
        .order_by("pk")
        .values_list(
            "artifact__digest",
            "evidence_id",
            "suite",
            "classname",
            "name",
            "status",
            "duration_s",
            "message",
            "requirement_ids",
        )
    )
    keys = ("artifact", "evidence", "suite", "classname", "name", "status", "duration_s", "message", "requirements")
    lines = []
    for values in rows.iterator(chunk_size=5000):
        row = dict(zip(keys, values, strict=True))
        row["evidence"] = f"EV-{row['evidence']}"
        lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False))
    body = ",\n  ".join(lines)
    return f'{{\n"results": [\n  {body}\n]\n}}\n'.encode() if lines else b'{\n"results": []\n}\n'


VERIFY_TEMPLATE = """# Verifying this evidence bundle

Bundle of **{product} {version}**, made by Custody {custody_version} at {created_at}.

`manifest.json` lists every file in this zip with its sha256 and size; `manifest.sig.json` holds Custody's
Ed25519 signature over the exact bytes of `manifest.json` and the id of the key that made it ({key_id}).

1. Get Custody's public key: `GET /api/v1/keys` on your Custody server (or your quality system's copy
   of it), and save the `public_key_pem` of key `{key_id}` as `custody.pub`.
2. Run, on any machine, without the server or a database:

       custody verify-bundle bundle.zip --key custody.pub

3. Exit codes: 0 verified; 1 a file was changed, added or removed after signing (each is named);
   2 the signature is invalid or missing; 3 the signature is valid but made by a key you did not trust;
   4 not a readable bundle.

Without `--key` the key embedded in the bundle is used, which proves only that the bundle is internally
consistent: anyone can re-sign an edited bundle with their own key. Always verify against a trusted key.

Contents: `packet.pdf` (the human-readable release packet), `evidence/<type>/<sha256>-<name>` (each evidence
file exactly as received; its sha256 is in its name), `evidence-index.json`, and JSON exports: `release.json`,
`change-requests.json`, `approvals.json` (Part 11 signature manifestations), `decisions.json`,
`deployments.json` (with break-glass retrospective reviews), `test-results.json` (every test result; the packet
prints totals per suite and the failures), `trace-baseline.json` (the release's scope and its matrix when it froze),
`audit-events.json` (each event with its hash and previous_hash, and
the latest signed audit checkpoint at or after the last event).

`decisions.json` is what was decided: every decision Custody recorded for this release's promotions and digests
(DEC-n), each with its outcome, gates, approvals and reasons, the policy version it was evaluated under and that
version's sha256 (`policy_sha256`), the sha256 of its inputs and of its answer, and when it was evaluated.
`release.json` names, per promotion, the decision that counted (`recorded_decision`, and why that one), and
`deployments.json` the decision each deployment acted on. The packet prints these recorded decisions, never a
re-evaluation. `decisions.json` is listed in the signed manifest like every other file: a decision changed after
signing — an outcome, a gate, a policy digest — makes `custody verify-bundle` exit 1 naming `decisions.json`.
"""


def build_release_bundle(release, *, pdf_bytes: bytes) -> bytes:
    """The release's evidence bundle as zip bytes, its manifest signed with Custody's key."""
    from django.conf import settings

    created_at = timezone.now().astimezone(UTC).isoformat().replace("+00:00", "Z")
    files, index = _evidence_files(release)
    files["packet.pdf"] = pdf_bytes
    files["evidence-index.json"] = _json_file(index)
    files.update(_exports(release))
    signing = keyring()
    key_id = signing.key_id
    files["VERIFY.md"] = VERIFY_TEMPLATE.format(
        product=release.product.key,
        version=release.version,
        custody_version=getattr(settings, "CUSTODY_VERSION", ""),
        created_at=created_at,
        key_id=key_id,
    ).encode("utf-8")
    subject = {
        "product": release.product.key,
        "version": release.version,
        "manifest_sha256": release.manifest_sha256,
    }
    return build_bundle(files=files, subject=subject, created_at=created_at, sign=signing.sign_detached)
