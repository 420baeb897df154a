"""The PDF release packet (issue 7, item 1): everything an auditor needs about one release, on paper.

`packet_context` is the one place that gathers the facts, with a bounded number of queries whatever the size
of the release (one query per kind of fact, plus one live gate evaluation per promotion); the template only
lays them out. `release_state_sha256` says whether a kept rendering still describes the release as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone

from changecontrol.models import AuditEvent, Signature, User

# Failures beyond this many are counted, not listed: the packet stays readable; the bundle holds the raw reports.
MAX_LISTED_FAILURES = 200
MAX_AUDIT_EVENTS = 2000
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _utc(value) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _subject_type(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def _manifestation(signature: Signature) -> dict[str, Any]:
    """Part 11 §11.50: printed name, date and time, meaning — and the role it was given in."""
    return {
        "subject": signature.subject_human_id,
        "printed_name": signature.printed_name,
        "signed_at": _utc(signature.signed_at),
        "meaning": signature.get_meaning_display(),
        "role": signature.get_role_display() if signature.role else "",
        "comment": signature.comment,
        "content_sha256": signature.content_sha256,
        "invalidated": bool(signature.invalidated_at),
        "invalidated_reason": signature.invalidated_reason,
        "expires_at": _utc(signature.expires_at),
    }


def _release_objects(release) -> tuple[list, list]:
    from approvals.models import Promotion

    change_requests = list(release.change_requests.select_related("requester").order_by("pk"))
    promotions = list(
        Promotion.objects.filter(release=release)
        .select_related("environment", "requester", "policy_version", "release__product")
        .order_by("environment__order", "pk")
    )
    return change_requests, promotions


def _audit_human_ids(release, change_requests, promotions, evidence_ids) -> list[str]:
    ids = [release.human_id, f"{release.product.key} {release.version} baseline"]
    ids += [cr.human_id for cr in change_requests] + [p.human_id for p in promotions]
    ids += [f"EV-{pk}" for pk in evidence_ids]
    return ids


def release_audit_events(release, *, change_requests=None, promotions=None, evidence_ids=None):
    """The release's audit-trail excerpt: its own events and those of its CRs, promotions and evidence."""
    from evidence.models import Evidence

    if change_requests is None or promotions is None:
        change_requests, promotions = _release_objects(release)
    if evidence_ids is None:
        evidence_ids = list(Evidence.objects.filter(artifact__releases=release).values_list("pk", flat=True))
    human_ids = _audit_human_ids(release, change_requests, promotions, evidence_ids)
    return AuditEvent.objects.filter(object_human_id__in=human_ids).order_by("pk")


def release_state_sha256(release) -> str:
    """A fingerprint of everything a packet shows that can still change; equal fingerprints, equal packets."""
    from evidence.models import Evidence

    change_requests, promotions = _release_objects(release)
    evidence = list(
        Evidence.objects.filter(artifact__releases=release).order_by("pk").values_list("pk", "state", "verdict")
    )
    last_event = (
        release_audit_events(
            release, change_requests=change_requests, promotions=promotions, evidence_ids=[pk for pk, _, _ in evidence]
        )
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    facts = {
        "release": release.pk,
        "manifest_sha256": release.manifest_sha256,
        "artifacts": sorted(release.artifacts.values_list("pk", flat=True)),
        "change_requests": [(cr.pk, cr.state, cr.content_version) for cr in change_requests],
        "promotions": [(p.pk, p.state) for p in promotions],
        "evidence": evidence,
        "last_audit_event": last_event,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def _gate_results(promotions) -> list[dict[str, Any]]:
    """Each promotion's gates as the active policy judges them now, blocking first, failures first within."""
    from approvals.services import promotion_status

    results = []
    order = {"fail": 0, "missing": 1, "pass": 2}
    for promotion in promotions:
        try:
            status = promotion_status(promotion)
        except Exception as error:  # noqa: BLE001 - a packet must render even when a policy no longer does
            results.append(
                {"promotion": promotion, "decision": "unknown", "gates": [], "error": str(error), "reasons": []}
            )
            continue
        gates = sorted(
            status["gates"], key=lambda g: (not g.get("blocking"), order.get(g.get("status"), 3), g.get("id", ""))
        )
        results.append(
            {
                "promotion": promotion,
                "decision": status["decision"],
                "policy": status["policy"],
                "gates": gates,
                "approvals": status["approvals"],
                "reasons": status["reasons"],
                "evaluated_at": _utc(datetime.fromisoformat(status["evaluated_at"])),
            }
        )
    return results


def _trace_baseline(release) -> dict[str, Any] | None:
    from changecontrol import models as cc_models

    baseline_model = getattr(cc_models, "TraceBaseline", None)
    if baseline_model is None:
        return None
    baseline = (
        baseline_model.objects.filter(product=release.product, release_version=release.version)
        .select_related("taken_by")
        .first()
    )
    if baseline is None:
        return None
    content = baseline.content or {}
    return {
        "taken_at": _utc(baseline.taken_at),
        "taken_by": baseline.taken_by.printed_name,
        "sha256": baseline.sha256,
        "coverage": content.get("coverage"),
        "counts": content.get("counts") or {},
        "rows": content.get("rows") or [],
    }


def _deployments(release) -> list[dict[str, Any]] | None:
    """Deployments of the release's artifacts, if the deployments module exists yet (None: not recorded)."""
    from approvals import models as approval_models

    deployment_model = getattr(approval_models, "Deployment", None)
    if deployment_model is None:
        return None
    rows = []
    for deployment in deployment_model.objects.filter(artifact__releases=release).order_by("pk"):
        rows.append(
            {
                "id": getattr(deployment, "human_id", f"DEP-{deployment.pk}"),
                "environment": str(getattr(deployment, "environment", "")),
                "kind": getattr(deployment, "kind", ""),
                "authorised": getattr(deployment, "authorised", None),
                "at": _utc(getattr(deployment, "deployed_at", None) or getattr(deployment, "created_at", None)),
                "justification": getattr(deployment, "justification", ""),
            }
        )
    return rows


def packet_context(release, *, generated_by: User | None = None) -> dict[str, Any]:
    """Everything the packet shows, gathered once (each kind of fact is one query)."""
    from evidence.models import Evidence, Provenance, SbomComponent, TestResult, Vulnerability

    product = release.product
    change_requests, promotions = _release_objects(release)
    artifacts = list(
        release.artifacts.select_related("build", "build__product", "build__registered_by").order_by("name", "digest")
    )
    artifact_ids = [a.pk for a in artifacts]

    # 1. Evidence and what was parsed from it, per artifact.
    evidence = list(Evidence.objects.filter(artifact_id__in=artifact_ids).select_related("signer_key").order_by("pk"))
    evidence_by_artifact = defaultdict(list)
    for item in evidence:
        evidence_by_artifact[item.artifact_id].append(item)
    provenance_by_artifact = defaultdict(list)
    for item in Provenance.objects.filter(artifact_id__in=artifact_ids).order_by("pk"):
        provenance_by_artifact[item.artifact_id].append(item)

    # 2. Tests: counts per status, and the failures themselves.
    counts = Counter(
        {
            (row["artifact_id"], row["status"]): row["n"]
            for row in TestResult.objects.filter(artifact_id__in=artifact_ids)
            .values("artifact_id", "status")
            .annotate(n=Count("id"))
        }
    )
    failures_qs = TestResult.objects.filter(artifact_id__in=artifact_ids, status__in=["failed", "error"]).order_by("pk")
    failures = list(failures_qs.select_related("artifact")[:MAX_LISTED_FAILURES])
    failure_total = sum(n for (_, status), n in counts.items() if status in ("failed", "error"))

    # 3. Vulnerabilities, worst first; SBOM components and their licences.
    vulnerabilities = sorted(
        Vulnerability.objects.filter(artifact_id__in=artifact_ids).select_related("artifact", "suppressed_by"),
        key=lambda v: (SEVERITY_ORDER.get(v.severity, 9), v.vuln_id),
    )
    components = list(
        SbomComponent.objects.filter(artifact_id__in=artifact_ids)
        .select_related("artifact")
        .order_by("name", "version")
    )
    licences = Counter(c.license_expression or "(none declared)" for c in components)

    # 4. Signatures on the CRs and promotions, in one query.
    from approvals.models import Promotion
    from changecontrol.models import ChangeRequest

    subjects = Q(subject_type=_subject_type(ChangeRequest), subject_id__in=[cr.pk for cr in change_requests]) | Q(
        subject_type=_subject_type(Promotion), subject_id__in=[p.pk for p in promotions]
    )
    signatures = list(Signature.objects.filter(subjects).order_by("signed_at", "pk"))
    signatures_by_subject = defaultdict(list)
    for signature in signatures:
        signatures_by_subject[signature.subject_human_id].append(_manifestation(signature))

    # 5. The audit-trail excerpt.
    audit_events = list(
        release_audit_events(
            release, change_requests=change_requests, promotions=promotions, evidence_ids=[e.pk for e in evidence]
        )[:MAX_AUDIT_EVENTS]
    )

    tests_by_artifact = {
        a.pk: {s: counts.get((a.pk, s), 0) for s in ("passed", "failed", "error", "skipped")} for a in artifacts
    }
    now = timezone.now()
    return {
        "title": f"{product.key} {release.version}",
        "release": release,
        "product": product,
        "cover": {
            "product_key": product.key,
            "product_name": product.name,
            "version": release.version,
            "safety_class": product.get_safety_class_display()
            if hasattr(product, "get_safety_class_display")
            else product.safety_class,
            "safety_class_code": product.safety_class,
            "safety_rationale": product.safety_rationale,
            "generated_at": _utc(now),
            "generated_by": generated_by.printed_name if generated_by else "Custody",
            "custody_version": getattr(settings, "CUSTODY_VERSION", ""),
            "frozen_at": _utc(getattr(release, "frozen_at", None)),
            "manifest_sha256": getattr(release, "manifest_sha256", ""),
            "manifest_key_id": getattr(release, "manifest_key_id", ""),
            "created_by": release.created_by.printed_name,
            "created_at": _utc(release.created_at),
        },
        "change_requests": [
            {
                "id": cr.human_id,
                "title": cr.title,
                "tier": cr.tier or "unclassified",
                "type": cr.get_change_type_display(),
                "kind": cr.get_kind_display(),
                "state": cr.get_state_display(),
                "requester": cr.requester.printed_name,
                "approved_automatically": cr.approved_automatically,
                "approvals": signatures_by_subject.get(cr.human_id, []),
            }
            for cr in change_requests
        ],
        "artifacts": [
            {
                "name": a.name,
                "kind": a.kind,
                "digest": a.digest,
                "build": a.build.human_id,
                "commit": a.build.commit,
                "evidence": [
                    {
                        "id": e.human_id,
                        "type": e.get_evidence_type_display(),
                        "name": e.name,
                        "state": e.get_state_display(),
                        "verdict": e.verdict,
                        "verdict_display": e.get_verdict_display(),
                        "signer": e.signer_key.name if e.signer_key else "",
                        "sha256": e.sha256,
                    }
                    for e in evidence_by_artifact[a.pk]
                ],
                "provenance": [
                    {
                        "builder_id": p.builder_id,
                        "source_repository": p.source_repository,
                        "source_commit": p.source_commit,
                    }
                    for p in provenance_by_artifact[a.pk]
                ],
                "tests": tests_by_artifact[a.pk],
            }
            for a in artifacts
        ],
        "builds": list({a.build.pk: a.build for a in artifacts}.values()),
        "gate_results": _gate_results(promotions),
        "approvals": [_manifestation(sig) for sig in signatures],
        "trace_baseline": _trace_baseline(release),
        "tests": {
            "total": sum(counts.values()),
            "passed": sum(n for (_, s), n in counts.items() if s == "passed"),
            "failed": failure_total,
            "skipped": sum(n for (_, s), n in counts.items() if s == "skipped"),
            "failures": failures,
            "failures_unlisted": max(failure_total - len(failures), 0),
        },
        "vulnerabilities": vulnerabilities,
        "vulnerability_counts": Counter(v.severity for v in vulnerabilities if v.suppressed_by_id is None),
        "licences": sorted(licences.items(), key=lambda item: (-item[1], item[0])),
        "components": components,
        "deployments": _deployments(release),
        "audit_events": [
            {
                "id": event.pk,
                "at": _utc(event.at),
                "actor": event.actor_name,
                "action": event.action,
                "object": event.object_human_id,
                "reason": event.reason,
                "hash": event.hash,
            }
            for event in audit_events
        ],
        "audit_truncated": len(audit_events) >= MAX_AUDIT_EVENTS,
        "verify": {
            "bundle_command": "custody verify-bundle bundle.zip --key custody.pub",
            "keys_path": "/api/v1/keys",
        },
    }


def render_packet_html(release, *, generated_by: User | None = None) -> str:
    return render_to_string("pdf/packet.html", packet_context(release, generated_by=generated_by))


def render_packet_pdf(release, *, generated_by: User | None = None) -> bytes:
    """The packet as PDF bytes (WeasyPrint); the stylesheet is read from templates/pdf/packet.css."""
    from pathlib import Path

    import weasyprint

    html = render_packet_html(release, generated_by=generated_by)
    css_path = Path(settings.BASE_DIR) / "templates" / "pdf" / "packet.css"
    stylesheet = weasyprint.CSS(string=css_path.read_text(encoding="utf-8"))
    document = weasyprint.HTML(string=html, base_url=str(css_path.parent))
    return document.write_pdf(stylesheets=[stylesheet])
