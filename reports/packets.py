"""The PDF release packet (issue 7, item 1): everything an auditor needs about one release, on paper.

`packet_context` is the one place that gathers the facts, with a bounded number of queries whatever the size
of the release (one query per kind of fact); the template only lays them out. Gates, approvals and reasons are
printed from the decisions recorded at the time (`reports.decisions`), never from a fresh evaluation; today's
evaluation (one per promotion) appears only in its own section, where it differs from the record.
`release_state_sha256` says whether a kept rendering still describes the release as it is.

The packet prints what an auditor reads; the bundle carries everything. So tests are printed as totals per
suite plus every failure, never as 10,000 rows (the bundle's `test-results.json` has each result), and the
trace baseline names each requirement's failing tests but counts its passing ones.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone

from changecontrol.models import AuditEvent, Signature, User, record_type
from common.canonical import canonical_sha256

# Beyond these many rows a list is counted, not printed: the packet stays readable; the bundle holds every row.
MAX_LISTED_FAILURES = 1000
MAX_LISTED_SKIPPED = 100
MAX_AUDIT_EVENTS = 2000
# A trace row names its tests up to this many; beyond, it names the ones not passing and counts the rest.
MAX_NAMED_TESTS_PER_ROW = 3
NO_JUSTIFICATION = "no justification recorded"
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _utc(value) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


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


def _release_deployments(release):
    """Deployments that shipped the release or any of its artifacts, oldest first, with their break-glass reviews."""
    from runtime.models import Deployment

    return (
        Deployment.objects.filter(Q(release=release) | Q(artifact__in=release.artifacts.all()))
        .select_related("environment", "artifact", "deployer", "release", "review", "review__signature")
        .order_by("deployed_at", "pk")
    )


def _audit_human_ids(release, change_requests, promotions, evidence_ids, deployments=()) -> list[str]:
    ids = [release.human_id, f"{release.product.key} {release.version} baseline"]
    ids += [cr.human_id for cr in change_requests] + [p.human_id for p in promotions]
    ids += [f"EV-{pk}" for pk in evidence_ids]
    for deployment in deployments:
        ids.append(deployment.human_id)
        review = getattr(deployment, "review", None)  # the reverse one-to-one raises when absent; this does not
        if review is not None:
            ids.append(review.human_id)
    return ids


def release_audit_events(release, *, change_requests=None, promotions=None, evidence_ids=None, deployments=None):
    """The release's audit-trail excerpt: its own events and those of its CRs, promotions, evidence and deployments."""
    from evidence.models import Evidence

    if change_requests is None or promotions is None:
        change_requests, promotions = _release_objects(release)
    if evidence_ids is None:
        evidence_ids = list(Evidence.objects.filter(artifact__releases=release).values_list("pk", flat=True))
    if deployments is None:
        deployments = list(_release_deployments(release))
    human_ids = _audit_human_ids(release, change_requests, promotions, evidence_ids, deployments)
    return AuditEvent.objects.filter(object_human_id__in=human_ids).order_by("pk")


def _open_drift(release):
    """Open drift findings about the release's digests, in any environment of its product."""
    from runtime.models import DriftFinding

    return (
        DriftFinding.objects.filter(
            product=release.product, state=DriftFinding.State.OPEN, digest__in=release.artifacts.values("digest")
        )
        .select_related("environment")
        .order_by("opened_at", "pk")
    )


def release_state_sha256(release) -> str:
    """A fingerprint of everything a packet shows that can still change; equal fingerprints, equal packets."""
    from approvals.models import Decision
    from changecontrol.services import active_policy
    from evidence.models import Evidence

    change_requests, promotions = _release_objects(release)
    evidence = list(
        Evidence.objects.filter(artifact__releases=release).order_by("pk").values_list("pk", "state", "verdict")
    )
    deployments = list(_release_deployments(release))
    last_event = (
        release_audit_events(
            release,
            change_requests=change_requests,
            promotions=promotions,
            evidence_ids=[pk for pk, _, _ in evidence],
            deployments=deployments,
        )
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    policy = active_policy(release.product)
    facts = {
        "release": release.pk,
        "manifest_sha256": release.manifest_sha256,
        "artifacts": sorted(release.artifacts.values_list("pk", flat=True)),
        "change_requests": [(cr.pk, cr.state, cr.content_version) for cr in change_requests],
        "promotions": [(p.pk, p.state) for p in promotions],
        "evidence": evidence,
        "deployments": [(d.pk, getattr(d, "review", None) and d.review.state) for d in deployments],
        # Drift opens and resolves without an audit event of the release: it is fingerprinted on its own.
        "open_drift": list(_open_drift(release).values_list("pk", flat=True)),
        "last_audit_event": last_event,
        # Decisions are stored without an audit event of the release, and the "evaluated again today" section
        # depends on the policy in force: both are fingerprinted on their own.
        "decisions": list(
            Decision.objects.filter(promotion__release=release).order_by("pk").values_list("pk", flat=True)
        ),
        "active_policy": policy.pk if policy else None,
    }
    return canonical_sha256(facts)


def _trace_tests_text(tests: list[dict]) -> str:
    """One requirement's tests in a line: all of them when few, else the ones not passing named and the rest counted."""
    if len(tests) <= MAX_NAMED_TESTS_PER_ROW:
        return "; ".join(f"{t['name']} ({t['result']})" for t in tests)
    results = Counter(t["result"] for t in tests)
    summary = f"{len(tests)} tests: " + ", ".join(f"{n} {result}" for result, n in sorted(results.items()))
    named = [f"{t['name']} ({t['result']})" for t in tests if t["result"] != "passed"]
    return "; ".join([summary, *named])


def _trace_baseline(release) -> dict[str, Any] | None:
    from traceability.models import TraceBaseline

    baseline = (
        TraceBaseline.objects.filter(product=release.product, release_version=release.version)
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
        "scope": _scope_rows(release),
        "rows": [
            {
                "id": row["id"],
                "version": row.get("version", ""),
                "status": row.get("status", ""),
                "tests": _trace_tests_text(row.get("tests") or []),
            }
            for row in content.get("rows") or []
        ],
    }


def _scope_rows(release) -> list[dict[str, Any]]:
    """The release's scope as recorded with its baseline: what it was judged against (IEC 62304 §5.7-5.8, §8)."""
    from traceability.scope import release_scope

    scope = release_scope(product=release.product, release_version=release.version)
    if scope is None:
        return []
    kinds = {"requirement": "requirement", "hazard": "hazard", "risk_control": "risk control"}
    return [
        {
            "id": item.identifier,
            "kind": kinds.get(item.kind, item.kind),
            "version": item.version,
            "title": item.title,
            "status": item.status,
        }
        for item in scope.entries()
    ]


def _deployment_row(deployment, *, now) -> dict[str, Any]:
    """A deployment as the packet and the bundle show it; a break-glass one with its retrospective review."""
    review = getattr(deployment, "review", None)
    review_row = None
    if review is not None:
        review_row = {
            "id": review.human_id,
            "state": review.state,
            "state_display": review.get_state_display(),
            "due_at": _utc(review.due_at),
            "overdue": review.is_overdue(now),
            # Reviewed, but after the policy's window: still a finding an auditor must see.
            "late": bool(review.reviewed_at and review.reviewed_at > review.due_at),
            "reviewed_at": _utc(review.reviewed_at),
            "findings": review.findings,
            "signature": _manifestation(review.signature) if review.signature_id else None,
        }
    return {
        "id": deployment.human_id,
        "environment": deployment.environment.key,
        "kind": deployment.kind,
        "kind_display": deployment.get_kind_display(),
        "authorised": deployment.authorised,
        "at": _utc(deployment.deployed_at),
        "deployer": deployment.deployer.printed_name,
        # The recorded decision it acted on (DEC-n): a deployment's authorisation is judged by it, not re-judged.
        "decision": f"DEC-{deployment.decision_id}" if deployment.decision_id else "",
        "artifact": deployment.artifact.name if deployment.artifact_id else "",
        "digest": deployment.digest,
        "release": str(deployment.release) if deployment.release_id else "",
        "pipeline_url": deployment.pipeline_url,
        "justification": deployment.justification,
        "reasons": list(deployment.reasons or []),
        "review": review_row,
    }


def _deployments(release, deployments=None) -> list[dict[str, Any]]:
    """Deployments of the release (normal, rollback, break-glass with its review), oldest first."""
    now = timezone.now()
    if deployments is None:
        deployments = _release_deployments(release)
    return [_deployment_row(d, now=now) for d in deployments]


def _accepting_gates(document, environment_key: str, failing: int) -> list[str]:
    """The gates of an environment under which `failing` failed tests may pass: informational, tolerant or CEL."""
    try:
        rule = document.environment(environment_key)
    except Exception:  # noqa: BLE001 - an old policy without this environment accepts nothing we can name
        return []
    reasons = []
    for gate in rule.gates:
        if gate.kind == "tests" and not gate.blocking:
            reasons.append(f"tests gate '{gate.id}' is informational (non-blocking)")
        elif gate.kind == "tests" and int(gate.params.get("max_failed", 0)) >= failing:
            reasons.append(f"tests gate '{gate.id}' allows up to {gate.params.get('max_failed')} failure(s)")
        elif gate.kind == "cel":
            reasons.append(f"CEL gate '{gate.id}': {gate.params.get('expression', '')}")
    if not any(g.kind == "tests" for g in rule.gates):
        reasons.append(f"the policy has no tests gate for {environment_key}")
    return reasons


def _accepted_records(accepted, signatures) -> list[dict[str, Any]]:
    """Each accepted failure of the release (a signed record of its own) with its Part 11 signature."""
    from approvals.models import AcceptedFailure

    signed = {
        s.subject_id: s
        for s in signatures
        if s.subject_type == record_type(AcceptedFailure) and s.meaning == Signature.Meaning.FAILURE_ACCEPTED
    }
    return [
        {
            "id": a.human_id,
            "test": a.test,
            "failures": [f"{f['status']} in {f['evidence']} ({f.get('artifact_name', '')})" for f in a.failures],
            "justification": a.justification,
            "problem_report": a.problem_report,
            "tier": a.tier,
            "policy_version": a.policy_version.version,
            "signature": _manifestation(signed[a.pk]) if a.pk in signed else None,
        }
        for a in accepted
    ]


def _failure_acceptances(promotions, signatures, failing: int) -> list[dict[str, Any]]:
    """Where failing tests were accepted: each promotion that passed with them, why, and what its signers wrote.

    Besides the accepted failures signed as records of their own (`_accepted_records`), a promotion may pass while
    failures stand (a non-blocking or tolerant tests gate, or a CEL condition, let it through): there the recorded
    justification is the approving signatures' comments — and the packet says so when there is none.
    """
    from approvals.models import Promotion

    if not failing:
        return []
    approving = defaultdict(list)
    for signature in signatures:
        if signature.subject_type == record_type(Promotion) and signature.meaning == Signature.Meaning.APPROVED:
            approving[signature.subject_id].append(signature)
    rows = []
    for promotion in promotions:
        if promotion.state not in Promotion.PASSED_STATES:
            continue
        signed = [s for s in approving[promotion.pk] if not s.invalidated_at]
        # The policy the approvers signed under (recorded on their signatures), else the one the request used.
        policy = next((s.policy_version for s in signed if s.policy_version_id), None) or promotion.policy_version
        justifications = [_manifestation(s) for s in signed if (s.comment or "").strip()]
        rows.append(
            {
                "promotion": promotion.human_id,
                "environment": promotion.environment.key,
                "state": promotion.get_state_display(),
                "decided_at": _utc(promotion.decided_at),
                "policy_version": policy.version,
                "gates": _accepting_gates(policy.document, promotion.environment.key, failing),
                "justifications": justifications,
                "unjustified_signers": [s.printed_name for s in signed if not (s.comment or "").strip()],
            }
        )
    return rows


def _known_anomalies(*, vulnerabilities, decisions, drift, skipped, skipped_total, failing) -> dict[str, Any]:
    """One list of what is known to be wrong or incomplete: open vulnerabilities, informational gates that did not
    pass in the recorded decisions, open drift on the release's digests, skipped tests (and a pointer to the failing
    ones)."""
    informational = [
        {
            "promotion": r["id"],
            "environment": r["environment"],
            "decision": r["recorded"]["id"],
            "id": g.get("id", ""),
            "kind": g.get("kind", ""),
            "status": g.get("status", ""),
            "detail": g.get("detail", ""),
        }
        for r in decisions
        if r["recorded"]
        for g in r["recorded"]["gates"]
        if not g.get("blocking") and g.get("status") != "pass"
    ]
    open_vulnerabilities = [v for v in vulnerabilities if v.suppressed_by_id is None]
    drift_rows = [
        {
            "id": f.human_id,
            "environment": f.environment.key,
            "kind": f.get_kind_display(),
            "name": f.name,
            "digest": f.digest,
            "opened_at": _utc(f.opened_at),
        }
        for f in drift
    ]
    return {
        "open_vulnerabilities": open_vulnerabilities,
        "informational_gates": informational,
        "drift": drift_rows,
        "skipped": skipped,
        "skipped_total": skipped_total,
        "skipped_unlisted": max(skipped_total - len(skipped), 0),
        "failing_tests": failing,
        "count": len(open_vulnerabilities) + len(informational) + len(drift_rows) + skipped_total + failing,
    }


def _test_row(result) -> dict[str, Any]:
    return {
        "artifact": result["artifact__name"],
        "suite": result["suite"],
        "test": f"{result['classname']} {result['name']}".strip(),
        "status": result["status"],
        "message": (result["message"] or "")[:300],
    }


TEST_ROW_FIELDS = ("artifact__name", "suite", "classname", "name", "status", "message")


def packet_context(release, *, generated_by: User | None = None) -> dict[str, Any]:
    """Everything the packet shows, gathered once (each kind of fact is one query)."""
    from approvals.models import AcceptedFailure, Promotion
    from changecontrol.models import ChangeRequest
    from evidence.models import Evidence, Provenance, SbomComponent, TestResult, Vulnerability
    from reports.decisions import evaluated_again_today, promotion_records
    from runtime.models import BreakGlassReview

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

    # 2. Tests: totals per artifact and suite (one grouped query), every failure, and the skipped ones.
    suite_totals: dict[tuple[str, str], Counter] = defaultdict(Counter)
    counts: Counter = Counter()
    for row in (
        TestResult.objects.filter(artifact_id__in=artifact_ids)
        .values("artifact_id", "artifact__name", "suite", "status")
        .annotate(n=Count("id"))
    ):
        suite_totals[(row["artifact__name"], row["suite"])][row["status"]] += row["n"]
        counts[(row["artifact_id"], row["status"])] += row["n"]
    tests_of = TestResult.objects.filter(artifact_id__in=artifact_ids).order_by("pk")
    failures = [
        _test_row(r)
        for r in tests_of.filter(status__in=["failed", "error"]).values(*TEST_ROW_FIELDS)[:MAX_LISTED_FAILURES]
    ]
    skipped = [_test_row(r) for r in tests_of.filter(status="skipped").values(*TEST_ROW_FIELDS)[:MAX_LISTED_SKIPPED]]
    failure_total = sum(n for (_, status), n in counts.items() if status in ("failed", "error"))
    skipped_total = sum(n for (_, status), n in counts.items() if status == "skipped")

    # 3. Vulnerabilities, worst first; SBOM components and their licences.
    vulnerabilities = sorted(
        Vulnerability.objects.filter(artifact_id__in=artifact_ids).select_related("artifact", "suppressed_by"),
        key=lambda v: (SEVERITY_ORDER.get(v.severity, 9), v.vuln_id),
    )
    components = list(
        SbomComponent.objects.filter(artifact_id__in=artifact_ids)
        .order_by("name", "version", "pk")
        .values("name", "version", "license_expression", "purl", "artifact__name")
    )
    licences = Counter(c["license_expression"] or "(none declared)" for c in components)

    # 4. Deployments with their break-glass reviews, and open drift on the release's digests.
    deployments = list(_release_deployments(release))
    review_ids = [d.review.pk for d in deployments if getattr(d, "review", None) is not None]
    drift = list(_open_drift(release))

    # 5. Signatures on the CRs, promotions, break-glass reviews and accepted failures, in one query.
    accepted = list(AcceptedFailure.objects.filter(release=release).select_related("policy_version").order_by("pk"))
    subjects = (
        Q(subject_type=record_type(ChangeRequest), subject_id__in=[cr.pk for cr in change_requests])
        | Q(subject_type=record_type(Promotion), subject_id__in=[p.pk for p in promotions])
        | Q(subject_type=record_type(BreakGlassReview), subject_id__in=review_ids)
        | Q(subject_type=record_type(AcceptedFailure), subject_id__in=[a.pk for a in accepted])
    )
    signatures = list(Signature.objects.filter(subjects).select_related("policy_version").order_by("signed_at", "pk"))
    signatures_by_subject = defaultdict(list)
    for signature in signatures:
        signatures_by_subject[signature.subject_human_id].append(_manifestation(signature))

    # 6. The audit-trail excerpt.
    audit_events = list(
        release_audit_events(
            release,
            change_requests=change_requests,
            promotions=promotions,
            evidence_ids=[e.pk for e in evidence],
            deployments=deployments,
        )[:MAX_AUDIT_EVENTS]
    )

    tests_by_artifact = {
        a.pk: {s: counts.get((a.pk, s), 0) for s in ("passed", "failed", "error", "skipped")} for a in artifacts
    }
    # 7. What was decided, from the decisions recorded at the time; today's evaluation only where it differs.
    decisions = promotion_records(promotions, deployments)
    now = timezone.now()
    return {
        "title": f"{product.key} {release.version}",
        "release": release,
        "product": product,
        "cover": {
            "product_key": product.key,
            "product_name": product.name,
            "version": release.version,
            "safety_class": product.get_safety_class_display(),
            "safety_class_code": product.safety_class,
            "safety_rationale": product.safety_rationale,
            "generated_at": _utc(now),
            "generated_by": generated_by.printed_name if generated_by else "Custody",
            "custody_version": settings.CUSTODY_VERSION,
            "frozen_at": _utc(release.frozen_at),
            "manifest_sha256": release.manifest_sha256,
            "manifest_key_id": release.manifest_key_id,
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
        "decisions": decisions,
        "evaluated_today": evaluated_again_today(decisions, product=product),
        "approvals": [_manifestation(sig) for sig in signatures],
        "trace_baseline": _trace_baseline(release),
        "tests": {
            "total": sum(counts.values()),
            "passed": sum(n for (_, s), n in counts.items() if s == "passed"),
            "failed": failure_total,
            "skipped": skipped_total,
            "suites": [
                {
                    "artifact": artifact_name,
                    "suite": suite or "(no suite name)",
                    "total": sum(totals.values()),
                    **{s: totals.get(s, 0) for s in ("passed", "failed", "error", "skipped")},
                }
                for (artifact_name, suite), totals in sorted(suite_totals.items())
            ],
            "failures": failures,
            "failures_unlisted": max(failure_total - len(failures), 0),
            "accepted_records": _accepted_records(accepted, signatures),
            "acceptances": _failure_acceptances(promotions, signatures, failure_total),
        },
        "anomalies": _known_anomalies(
            vulnerabilities=vulnerabilities,
            decisions=decisions,
            drift=drift,
            skipped=skipped,
            skipped_total=skipped_total,
            failing=failure_total,
        ),
        "no_justification": NO_JUSTIFICATION,
        "vulnerabilities": vulnerabilities,
        "vulnerability_counts": Counter(v.severity for v in vulnerabilities if v.suppressed_by_id is None),
        "licences": sorted(licences.items(), key=lambda item: (-item[1], item[0])),
        "components": components,
        "deployments": _deployments(release, deployments),
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


@lru_cache(maxsize=1)
def _stylesheet(path: str, mtime: float):
    import weasyprint

    # Parsed once per process (and again only when the file changes): the CSS is the same for every packet.
    with open(path, encoding="utf-8") as handle:
        return weasyprint.CSS(string=handle.read())


def render_packet_pdf(release, *, generated_by: User | None = None) -> bytes:
    """The packet as PDF bytes (WeasyPrint); the stylesheet is read from templates/pdf/packet.css."""
    import weasyprint

    html = render_packet_html(release, generated_by=generated_by)
    css_path = Path(settings.BASE_DIR) / "templates" / "pdf" / "packet.css"
    stylesheet = _stylesheet(str(css_path), css_path.stat().st_mtime)
    document = weasyprint.HTML(string=html, base_url=str(css_path.parent))
    return document.write_pdf(stylesheets=[stylesheet])
