"""Release notes as structured evidence (issue 7, item 6): Markdown, HTML and PDF from one context.

`release_notes_context` gathers the facts once — scope, affected modules, linked approvals, validation summary,
known limitations, rollback conditions and digests — and every format only lays that dict out, so the three
can never disagree. The facts come from the same places as the packet (`reports.packets`, `evidence.selectors`);
gates and outcomes are the decisions recorded at the time (`reports.decisions`): the notes never re-evaluate.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from django.template.loader import render_to_string

from changecontrol.models import User, record_type
from evidence import selectors
from reports.audit_export import render_pdf
from reports.decisions import promotion_records
from reports.packets import _manifestation, _release_deployments, _release_objects, _utc

# Failures listed as known anomalies beyond this many are counted, not listed (the packet has them all).
MAX_LISTED = 100
DECISIONS_NOTE = (
    "Each promotion's decision as Custody recorded it at the time, under the policy version named (with its sha256); "
    "a later policy or later evidence does not change it."
)


def affected_modules(change_requests) -> list[dict[str, Any]]:
    """Each item a CR's `affected_items` names (comma, semicolon or line separated) with the CRs naming it."""
    by_module = defaultdict(list)
    for cr in change_requests:
        for item in re.split(r"[,;\n]+", cr.affected_items or ""):
            item = item.strip()
            if item and cr.human_id not in by_module[item]:
                by_module[item].append(cr.human_id)
    return [
        {"name": name, "change_requests": ids} for name, ids in sorted(by_module.items(), key=lambda i: i[0].lower())
    ]


def _approvals(change_requests, promotions) -> list[dict[str, Any]]:
    from django.db.models import Q

    from approvals.models import Promotion
    from changecontrol.models import ChangeRequest, Signature

    subjects = Q(subject_type=record_type(ChangeRequest), subject_id__in=[cr.pk for cr in change_requests]) | Q(
        subject_type=record_type(Promotion), subject_id__in=[p.pk for p in promotions]
    )
    return [_manifestation(s) for s in Signature.objects.filter(subjects).order_by("signed_at", "pk")]


def release_notes_context(release, *, generated_by: User | None = None) -> dict[str, Any]:
    """The one dict every format of the release notes is rendered from."""
    from django.utils import timezone

    product = release.product
    change_requests, promotions = _release_objects(release)
    artifacts = list(release.artifacts.select_related("build").order_by("name", "digest"))

    # 1. Validation: tests, coverage and vulnerabilities per artifact, counting evidence only.
    tests = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "total": 0}
    coverage_rows, anomalies, vulnerabilities = [], [], []
    for artifact in artifacts:
        for status, count in selectors.test_counts(artifact).items():
            tests[status] = tests.get(status, 0) + count
        cov = selectors.coverage(artifact)
        if cov is not None:
            coverage_rows.append({"artifact": artifact.name, "line_rate": cov.get("line_rate")})
        for result in selectors.tests_failures_first(artifact).filter(status__in=["failed", "error"])[:MAX_LISTED]:
            anomalies.append(
                {
                    "artifact": artifact.name,
                    "test": f"{result.classname} {result.name}".strip(),
                    "message": result.message,
                }
            )
        for vuln in selectors.vulnerabilities(artifact).filter(suppressed_by__isnull=True)[:MAX_LISTED]:
            vulnerabilities.append(
                {
                    "artifact": artifact.name,
                    "id": vuln.vuln_id,
                    "severity": vuln.severity,
                    "package": f"{vuln.package_name} {vuln.package_version}".strip(),
                    "fixed_in": ", ".join(vuln.fixed_versions or []),
                }
            )
    # 2. What was decided: each promotion's recorded decision and its gates, never a fresh evaluation.
    decisions, gates = [], []
    for record in promotion_records(promotions, list(_release_deployments(release))):
        recorded = record["recorded"] or {}
        policy = recorded.get("policy") or {}
        decisions.append(
            {
                "promotion": record["id"],
                "environment": record["environment"],
                "state": record["state"],
                "decision_id": ", ".join(recorded.get("ids", [])),
                "decision": recorded.get("decision", "not recorded"),
                "evaluated_at": recorded.get("evaluated_at", ""),
                "policy": f"{policy['name']} v{policy['version']}" if policy else "",
                "policy_sha256": policy.get("sha256", ""),
                "basis": record["basis"],
            }
        )
        for gate in recorded.get("gates", []):
            gates.append(
                {
                    "promotion": record["id"],
                    "environment": record["environment"],
                    "decision_id": recorded["id"],
                    "id": gate.get("id", ""),
                    "kind": gate.get("kind", ""),
                    "blocking": bool(gate.get("blocking")),
                    "status": gate.get("status", ""),
                    "detail": gate.get("detail", ""),
                }
            )

    return {
        "title": f"{product.key} {release.version} release notes",
        "product": {"key": product.key, "name": product.name, "safety_class": product.safety_class},
        "version": release.version,
        "generated_at": _utc(timezone.now()),
        "generated_by": generated_by.printed_name if generated_by else "Custody",
        "frozen_at": _utc(release.frozen_at),
        "notes": release.notes,
        "scope": [
            {
                "id": cr.human_id,
                "title": cr.title,
                "type": cr.get_change_type_display(),
                "kind": cr.get_kind_display(),
                "tier": cr.tier or "unclassified",
                "state": cr.get_state_display(),
                "why": cr.why,
                "what_changes": cr.what_changes,
            }
            for cr in change_requests
        ],
        "affected_modules": affected_modules(change_requests),
        "approvals": _approvals(change_requests, promotions),
        "decisions_note": DECISIONS_NOTE,
        "validation": {"tests": tests, "coverage": coverage_rows, "decisions": decisions, "gates": gates},
        "known_limitations": {"anomalies": anomalies, "vulnerabilities": vulnerabilities},
        "rollback": [
            {"id": cr.human_id, "plan": cr.rollback_plan or "(no rollback plan recorded)"} for cr in change_requests
        ],
        "digests": {
            "artifacts": [{"name": a.name, "digest": a.digest, "build": a.build.human_id} for a in artifacts],
            "manifest_sha256": release.manifest_sha256,
            "manifest_key_id": release.manifest_key_id,
        },
    }


def _cell(value: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value if value is not None else "").split()).replace("|", "\\|")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def render_release_notes_markdown(context: dict[str, Any]) -> str:
    c = context
    v = c["validation"]
    t = v["tests"]
    out = [
        f"# {c['product']['name']} {c['version']} — release notes",
        "",
        f"Product `{c['product']['key']}`, IEC 62304 safety class {c['product']['safety_class']}. "
        f"Generated {c['generated_at']} by {c['generated_by']}"
        + (f"; release frozen {c['frozen_at']}." if c["frozen_at"] else "; release not frozen yet."),
        "",
    ]
    if c["notes"]:
        out += [c["notes"], ""]
    out += ["## Scope", ""]
    out += (
        _table(
            ["CR", "Title", "Type", "Tier", "State", "Why"],
            [[s["id"], s["title"], s["type"], s["tier"], s["state"], s["why"]] for s in c["scope"]],
        )
        if c["scope"]
        else ["This release names no change requests.", ""]
    )
    out += ["## Affected modules", ""]
    out += [f"- {m['name']} ({', '.join(m['change_requests'])})" for m in c["affected_modules"]] or ["- none named"]
    out += ["", "## Approvals", ""]
    out += (
        _table(
            ["Record", "Printed name", "Meaning", "Role", "Signed (UTC)", "Valid"],
            [
                [
                    a["subject"],
                    a["printed_name"],
                    a["meaning"],
                    a["role"],
                    a["signed_at"],
                    "no" if a["invalidated"] else "yes",
                ]
                for a in c["approvals"]
            ],
        )
        if c["approvals"]
        else ["No electronic signatures recorded.", ""]
    )
    out += ["## Validation summary", ""]
    out += [f"Tests: {t['passed']} passed, {t['failed']} failed, {t['error']} errors, {t['skipped']} skipped.", ""]
    out += [f"Coverage of {row['artifact']}: {row['line_rate']}" for row in v["coverage"]] or ["Coverage: no report."]
    out += [""]
    if v["decisions"]:
        out += [DECISIONS_NOTE, ""]
        out += _table(
            ["Promotion", "Environment", "State", "Decision", "Outcome", "Evaluated (UTC)", "Policy", "Policy sha256"],
            [
                [
                    d["promotion"],
                    d["environment"],
                    d["state"],
                    d["decision_id"] or "—",
                    d["decision"],
                    d["evaluated_at"],
                    d["policy"],
                    f"`{d['policy_sha256']}`" if d["policy_sha256"] else "",
                ]
                for d in v["decisions"]
            ],
        )
    if v["gates"]:
        out += _table(
            ["Promotion", "Decision", "Gate", "Blocking", "Status", "Detail"],
            [
                [g["promotion"], g["decision_id"], g["id"], "yes" if g["blocking"] else "no", g["status"], g["detail"]]
                for g in v["gates"]
            ],
        )
    out += ["## Known limitations", ""]
    lim = c["known_limitations"]
    out += [f"- Test {a['test']} ({a['artifact']}): {_cell(a['message'])}" for a in lim["anomalies"]]
    out += [
        f"- {x['id']} ({x['severity']}) in {x['package']} of {x['artifact']}"
        + (f"; fixed in {x['fixed_in']}" if x["fixed_in"] else "")
        for x in lim["vulnerabilities"]
    ]
    if not lim["anomalies"] and not lim["vulnerabilities"]:
        out += ["- No open anomalies or vulnerabilities recorded."]
    out += ["", "## Rollback conditions", ""]
    out += [f"- {r['id']}: {_cell(r['plan'])}" for r in c["rollback"]] or ["- no change requests"]
    out += ["", "## Digests", ""]
    out += _table(
        ["Artifact", "Digest", "Build"],
        [[a["name"], f"`{a['digest']}`", a["build"]] for a in c["digests"]["artifacts"]],
    )
    if c["digests"]["manifest_sha256"]:
        out += [
            f"Release manifest sha256 `{c['digests']['manifest_sha256']}`, signed with Custody key `{c['digests']['manifest_key_id']}`.",
            "",
        ]
    return "\n".join(out)


def render_release_notes_html(context: dict[str, Any]) -> str:
    # Served to browsers under the CSP, which refuses inline style: the print-only @page rule stays in the PDF.
    return render_to_string("pdf/release_notes.html", {**context, "screen": True})


def render_release_notes_pdf(context: dict[str, Any]) -> bytes:
    return render_pdf("pdf/release_notes.html", context)
