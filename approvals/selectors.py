"""Reads of the approvals app: a release's facts for the gates, promotions a caller may see, pending approvals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from approvals.models import AcceptedFailure, Decision, Promotion, Release
from changecontrol.access import visible_product_ids
from changecontrol.models import ApiToken, ChangeRequest, Environment, PolicyVersion, Signature, User, record_type
from changecontrol.roles import role_map
from changecontrol.services import active_policy
from common import prepared_sql
from common.canonical import canonical_sha256
from evidence.models import (
    Artifact,
    CoverageFile,
    Evidence,
    Provenance,
    SbomComponent,
    StaticFinding,
    TestResult,
    Vulnerability,
)
from traceability.matrix import trace_matrix
from traceability.scope import release_scope

SBOM_TYPES = (Evidence.Type.CYCLONEDX, Evidence.Type.SPDX)
SCAN_TYPES = (Evidence.Type.GRYPE, Evidence.Type.TRIVY, Evidence.Type.OSV)
COVERAGE_TYPES = (Evidence.Type.COBERTURA, Evidence.Type.LCOV)


# ---------------------------------------------------------------- visibility


def releases_visible_to(user: User, token: ApiToken | None = None) -> QuerySet[Release]:
    return Release.objects.filter(product_id__in=visible_product_ids(user, token)).select_related(
        "product", "created_by"
    )


def promotions_visible_to(user: User, token: ApiToken | None = None) -> QuerySet[Promotion]:
    return Promotion.objects.filter(release__product_id__in=visible_product_ids(user, token)).select_related(
        "release", "release__product", "environment", "requester", "policy_version"
    )


# ---------------------------------------------------------------- facts


def release_artifacts(release: Release):
    return release.artifacts.select_related("build__product").order_by("digest")


def with_release_contents(releases: QuerySet[Release]) -> QuerySet[Release]:
    """Releases with their artifacts (by digest, with builds), change requests and promotions prefetched:
    four queries for a list of any length, where reading them per release cost three more per row."""
    return releases.select_related("product", "created_by").prefetch_related(
        Prefetch("artifacts", queryset=Artifact.objects.select_related("build__product").order_by("digest")),
        Prefetch("change_requests", queryset=ChangeRequest.objects.order_by("pk")),
        Prefetch("promotions", queryset=Promotion.objects.select_related("environment").order_by("id")),
    )


def release_facts(
    *, release: Release, environment_key: str, after: str | None, trace_scope: str = "release"
) -> dict[str, Any]:
    """Everything the gates read, as plain JSON: a fixed number of queries however many artifacts and evidence.

    `trace_scope` is the policy's `traceability.scope`: "release" judges the release's own scope, "current" every
    requirement current now."""
    artifacts = list(release_artifacts(release))
    ids = [a.pk for a in artifacts]
    per: dict[int, dict[str, Any]] = {
        a.pk: {
            "digest": a.digest,
            "name": a.name,
            "build": a.build.human_id if a.build_id else "",
            "evidence": [],
            "evidence_names": [],
            "signed_types": [],
            "tests": None,
            "coverage": None,
            "static": None,
            "vulns": None,
            "sbom": False,
            "sbom_components": 0,
            "licenses": [],
            "provenance": [],
        }
        for a in artifacts
    }
    counting = list(
        Evidence.objects.counting()
        .filter(artifact_id__in=ids)
        .order_by("id")
        .values("id", "artifact_id", "evidence_type", "name", "verdict", "sha256")
    )
    counting_ids = [e["id"] for e in counting]
    for row in counting:
        facts = per[row["artifact_id"]]
        facts["evidence"].append(
            {
                "id": row["id"],
                "type": row["evidence_type"],
                "name": row["name"],
                "verdict": row["verdict"],
                "sha256": row["sha256"],
            }
        )
        if row["name"]:
            facts["evidence_names"].append(row["name"])
        if row["verdict"] == Evidence.Verdict.SIGNED:
            facts["signed_types"].append(row["evidence_type"])
        if row["evidence_type"] == Evidence.Type.JUNIT:
            facts["tests"] = {"total": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0}
        if row["evidence_type"] in COVERAGE_TYPES:
            facts["coverage"] = {"lines_valid": 0, "lines_covered": 0, "branches_valid": 0, "branches_covered": 0}
        if row["evidence_type"] == Evidence.Type.SARIF:
            facts["static"] = {}
        if row["evidence_type"] in SCAN_TYPES:
            facts["vulns"] = {"all": {}, "fixable": {}, "examples": {}}
        if row["evidence_type"] in SBOM_TYPES:
            facts["sbom"] = True
    # 1. Tests: counts per status.
    for row in (
        TestResult.objects.filter(evidence_id__in=counting_ids).values("artifact_id", "status").annotate(n=Count("id"))
    ):
        tests = per[row["artifact_id"]]["tests"]
        if tests is not None:
            tests[row["status"]] = tests.get(row["status"], 0) + row["n"]
            tests["total"] += row["n"]
    # 1b. Accepted failures: a failing result of a test accepted for this release (a signed record) counts as accepted,
    # neither failed nor passed.
    accepted = accepted_failure_facts(release)
    if accepted:
        keys = {(a["classname"], a["name"]) for a in accepted}
        for row in TestResult.objects.filter(
            evidence_id__in=counting_ids, status__in=(TestResult.Status.FAILED, TestResult.Status.ERROR)
        ).values("artifact_id", "classname", "name", "status"):
            tests = per[row["artifact_id"]]["tests"]
            if tests is not None and (row["classname"], row["name"]) in keys:
                tests[row["status"]] -= 1
                tests["accepted"] = tests.get("accepted", 0) + 1
    # 2. Coverage.
    for row in (
        CoverageFile.objects.filter(evidence_id__in=counting_ids)
        .values("artifact_id")
        .annotate(lv=Sum("lines_valid"), lc=Sum("lines_covered"), bv=Sum("branches_valid"), bc=Sum("branches_covered"))
    ):
        coverage = per[row["artifact_id"]]["coverage"]
        if coverage is not None:
            coverage.update(
                lines_valid=row["lv"] or 0,
                lines_covered=row["lc"] or 0,
                branches_valid=row["bv"] or 0,
                branches_covered=row["bc"] or 0,
            )
    # 3. Static findings (unsuppressed).
    for row in (
        StaticFinding.objects.filter(evidence_id__in=counting_ids, suppressed=False)
        .values("artifact_id", "severity")
        .annotate(n=Count("id"))
    ):
        static = per[row["artifact_id"]]["static"]
        if static is not None:
            static[row["severity"]] = static.get(row["severity"], 0) + row["n"]
    # 4. Vulnerabilities: VEX-suppressed ones do not count (the parser links suppressions only from signed VEX).
    for row in (
        Vulnerability.objects.filter(evidence_id__in=counting_ids, suppressed_by__isnull=True)
        .values("artifact_id", "severity", "vuln_id", "fix_state")
        .order_by("artifact_id", "severity", "vuln_id")
        .distinct()
    ):
        vulns = per[row["artifact_id"]]["vulns"]
        if vulns is None:
            continue
        severity = row["severity"]
        vulns["all"][severity] = vulns["all"].get(severity, 0) + 1
        if row["fix_state"] == "fixed":
            vulns["fixable"][severity] = vulns["fixable"].get(severity, 0) + 1
        examples = vulns["examples"].setdefault(severity, [])
        if len(examples) < 5 and row["vuln_id"] not in examples:
            examples.append(row["vuln_id"])
    # 5. SBOM components and licences, grouped by expression.
    licences: dict[int, dict[str, dict]] = defaultdict(dict)
    for row in SbomComponent.objects.filter(evidence_id__in=counting_ids).values(
        "artifact_id", "name", "license_expression", "license_declared"
    ):
        per[row["artifact_id"]]["sbom_components"] += 1
        group = licences[row["artifact_id"]].setdefault(
            row["license_expression"].strip(), {"count": 0, "components": [], "declared": []}
        )
        group["count"] += 1
        if len(group["components"]) < 3:
            group["components"].append(row["name"])
            group["declared"].append(row["license_declared"])
    for artifact_id, groups in licences.items():
        per[artifact_id]["licenses"] = [
            {"expression": expression, "count": g["count"], "components": g["components"]}
            # An unknown licence names what the SBOM declared, so a reviewer can judge it.
            | ({"declared": "; ".join(dict.fromkeys(d for d in g["declared"] if d))} if expression == "unknown" else {})
            for expression, g in sorted(groups.items())
        ]
    # 6. Provenance.
    for row in Provenance.objects.filter(evidence_id__in=counting_ids).values(
        "artifact_id", "builder_id", "source_repository", "source_commit", "evidence__verdict"
    ):
        per[row["artifact_id"]]["provenance"].append(
            {
                "builder_id": row["builder_id"],
                "source_repository": row["source_repository"],
                "source_commit": row["source_commit"],
                "verdict": row["evidence__verdict"],
            }
        )
    change_requests = [
        {
            "id": cr.human_id,
            "title": cr.title,
            "tier": cr.tier,
            "state": cr.state,
            "content_version": cr.content_version,
        }
        for cr in release.change_requests.order_by("id")
    ]
    facts: dict[str, Any] = {
        "product": {"key": release.product.key, "repository_url": release.product.repository_url},
        "release": {"version": release.version, "digests": [a.digest for a in artifacts]},
        "environment": environment_key,
        "artifacts": [per[a.pk] for a in artifacts],
        "change_requests": change_requests,
        "trace": trace_facts(release=release, artifact_ids=ids, scope=trace_scope),
    }
    if accepted:
        facts["accepted_failures"] = accepted
    if after:
        facts["previous_environment"] = {
            "key": after,
            "passed_digests": digests_passed(
                product_id=release.product_id, environment_key=after, digests=facts["release"]["digests"]
            ),
        }
    return facts


def accepted_failure_facts(release: Release) -> list[dict[str, Any]]:
    """The release's accepted failures as the gates read them (stored with each decision, so a replay sees them)."""
    acceptances = list(AcceptedFailure.objects.filter(release=release).select_related("accepted_by").order_by("pk"))
    if not acceptances:
        return []
    signatures = dict(
        Signature.objects.filter(
            subject_type=record_type(AcceptedFailure),
            subject_id__in=[a.pk for a in acceptances],
            meaning=Signature.Meaning.FAILURE_ACCEPTED,
        ).values_list("subject_id", "id")
    )
    return [
        {
            "id": a.human_id,
            "test": a.test,
            "classname": a.classname,
            "name": a.name,
            "accepted_by": a.accepted_by.printed_name,
            "signature": f"SIG-{signatures[a.pk]}" if a.pk in signatures else None,
        }
        for a in acceptances
    ]


def digests_passed(*, product_id: int, environment_key: str, digests: list[str]) -> list[str]:
    """Which of these digests belong to a release approved (or deployed) in that environment."""
    return sorted(
        set(
            Promotion.objects.filter(
                release__product_id=product_id,
                environment__key=environment_key,
                state__in=Promotion.PASSED_STATES,
                release__artifacts__digest__in=digests,
            ).values_list("release__artifacts__digest", flat=True)
        )
    )


def evidence_snapshot_sha256(facts: dict[str, Any]) -> str:
    """A hash of the evidence that counted (ids and content hashes): what a signer saw."""
    return canonical_sha256(
        sorted((e["id"], e["sha256"], e["verdict"]) for a in facts["artifacts"] for e in a["evidence"])
    )


def trace_facts(*, release: Release, artifact_ids: list[int], scope: str = "release") -> dict[str, Any]:
    """The trace matrix's verdicts for this release: its scope (or, when the policy asks for it, every requirement
    current now) against its own artifacts' results. A release not frozen yet has no scope: the current items."""
    try:
        frozen = release_scope(product=release.product, release_version=release.version) if scope == "release" else None
        matrix = trace_matrix(product=release.product, artifact_ids=artifact_ids, scope=frozen)
    except Exception as error:  # noqa: BLE001 - a gate reports "missing" with the reason rather than failing the API
        return {
            "available": False,
            "detail": f"the trace matrix could not be computed: {type(error).__name__}: {error}",
        }
    summary = summarise_trace(matrix)
    summary["basis"] = "release" if frozen is not None else ("current" if scope == "current" else "unfrozen")
    summary["scope_note"] = scope_note(matrix, frozen_scope=frozen is not None, policy_scope=scope)
    return summary


def scope_note(matrix: dict[str, Any], *, frozen_scope: bool, policy_scope: str) -> str:
    """What a release's trace was judged against, in a sentence the gate's detail ends with."""
    if policy_scope == "current":
        return "judged against every requirement current now (policy traceability.scope: current)"
    if not frozen_scope:
        return "judged against the current requirements (the release has not frozen yet)"
    basis = matrix["basis"]
    note = f"judged against the scope of release {basis['release']} ({basis['items']} item(s) when it froze)"
    outside = matrix.get("outside_scope") or []
    if outside:
        named = ", ".join(
            row["id"]
            if row["scoped_version"] is None
            else f"{row['id']} (v{row['version']}, frozen at v{row['scoped_version']})"
            for row in outside[:10]
        )
        more = f" and {len(outside) - 10} more" if len(outside) > 10 else ""
        note += f"; outside its scope, for a later release to pick up: {named}{more}"
    return note


def summarise_trace(matrix: Any) -> dict[str, Any]:
    """Turn a trace matrix ({coverage, counts, rows, risk_controls}) into the checks the traceability gate asks about.

    Only gaps the policy rates `error` fail a check; warnings are named in the detail, ignored gaps not at all.
    """
    rows = matrix.get("rows", []) if isinstance(matrix, dict) else []
    errors: dict[str, list[str]] = defaultdict(list)
    warnings: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        item = str(row.get("id") or "?")
        gaps = row.get("gaps")
        if gaps is None:
            gaps = [{"gap": row.get("status"), "severity": row.get("severity") or "error"}]
        for gap in gaps:
            name, severity = (
                (gap.get("gap") or gap.get("kind"), gap.get("severity", "error"))
                if isinstance(gap, dict)
                else (gap, "error")
            )
            if not name or name == "verified":
                continue
            if severity == "error":
                errors[str(name)].append(item)
            elif severity == "warning":
                warnings[str(name)].append(item)
    for control in matrix.get("risk_controls", []) if isinstance(matrix, dict) else []:
        if not control.get("verified") and control.get("severity") == "error":
            errors["risk_control_unverified"].append(str(control.get("id")))

    def check(kinds: tuple[str, ...], what: str) -> dict:
        bad = [f"{kind}: {', '.join(dict.fromkeys(errors[kind]))}" for kind in kinds if errors.get(kind)]
        noted = [
            f"{kind} (warning): {', '.join(dict.fromkeys(warnings[kind]))}" for kind in kinds if warnings.get(kind)
        ]
        if bad:
            return {"ok": False, "detail": f"{what}: " + "; ".join(bad + noted)}
        return {"ok": True, "detail": f"{what}: none" + (" — " + "; ".join(noted) if noted else "")}

    coverage = matrix.get("coverage") if isinstance(matrix, dict) else None
    return {
        "available": True,
        "summary": f"{len(rows)} requirement(s) traced; {coverage}% verified by passing tests",
        "coverage": coverage,
        "checks": {
            "requirements_tested": check(("missing_test", "failed", "not_executed"), "requirements not tested"),
            "risk_controls_verified": check(("risk_control_unverified",), "risk controls not verified"),
            "no_suspect_links": check(("suspect",), "suspect links"),
        },
    }


# ---------------------------------------------------------------- approvals


def promotion_signing_content(promotion: Promotion, *, policy: PolicyVersion | None = None) -> dict[str, Any]:
    """What a signature on a promotion is bound to and what its signer is shown (Part 11 §11.70): the release's
    digests and manifest, the policy version in force and the snapshot of the evidence that counts now.

    The signing service signs exactly this (computed under the promotion's lock) and the page and the API show its
    hash, so a report that arrives while a reviewer reads changes the hash and the signature is refused: the
    reviewer signs the evidence they saw or nothing. `policy` is the product's policy in force when the caller
    has already read it (the service, under its lock); otherwise it is read here."""
    release = promotion.release
    policy = policy or active_policy(release.product)
    document = policy.document
    facts = release_facts(
        release=release,
        environment_key=promotion.environment.key,
        after=document.environment(promotion.environment.key).after,
        trace_scope=document.traceability.scope,
    )
    return {
        "promotion": promotion.human_id,
        "product": release.product.key,
        "release": release.version,
        "environment": promotion.environment.key,
        "tier": promotion.tier,
        "digests": sorted(a["digest"] for a in (release.manifest or {}).get("artifacts", [])),
        "manifest_sha256": release.manifest_sha256,
        "policy_version": policy.version,
        "policy_sha256": policy.sha256,
        "evidence_sha256": evidence_snapshot_sha256(facts),
    }


def promotion_signatures(promotion: Promotion) -> QuerySet[Signature]:
    return (
        Signature.objects.filter(subject_type=record_type(Promotion), subject_id=promotion.pk)
        .select_related("signer")
        .order_by("signed_at", "id")
    )


def pending_approvals_for(user: User) -> list[Promotion]:
    """Promotions awaiting a signature this person could give (role held, not yet signed by them)."""
    roles = role_map(user)
    if not roles:
        return []
    candidates = (
        Promotion.objects.filter(state__in=Promotion.SIGNABLE_STATES, release__product_id__in=list(roles))
        .select_related("release", "release__product", "environment", "requester", "policy_version")
        .order_by("requested_at")
    )
    signed = set(
        Signature.objects.filter(
            subject_type=record_type(Promotion), signer=user, invalidated_at__isnull=True
        ).values_list("subject_id", flat=True)
    )
    result = []
    for promotion in candidates:
        if promotion.pk in signed or promotion.requester_id == user.pk:
            continue
        try:
            required = (
                promotion.policy_version.document.required_roles(promotion.environment.key, promotion.tier)
                if promotion.tier
                else ()
            )
        except LookupError:
            required = ()
        if set(required) & set(roles.get(promotion.release.product_id, ())):
            result.append(promotion)
    return result


def latest_decision(*, artifact_id: int, environment_id: int) -> Decision | None:
    return Decision.objects.filter(artifact_id=artifact_id, environment_id=environment_id).order_by("-id").first()


def environment_running(*, environment: Environment) -> Release | None:
    """The release last deployed to (or else approved for) an environment: what runs there now."""
    promotion = (
        Promotion.objects.filter(environment=environment, state=Promotion.State.DEPLOYED)
        .order_by("-deployed_at", "-id")
        .first()
        or Promotion.objects.filter(environment=environment, state=Promotion.State.APPROVED)
        .order_by("-decided_at", "-id")
        .first()
    )
    return promotion.release if promotion else None


# ---------------------------------------------------------------- the status API's cache key


@dataclass(frozen=True)
class StatusKey:
    """What the status API needs before it can answer from cache: the artifact, the environment, the inputs stamp."""

    artifact_id: int
    product_id: int
    product_key: str
    environment_id: int | None
    stamp: str
    # How many artifacts the digest matched among what the caller may see: products each register their own
    # artifact of a digest, so more than one means the caller must name the product.
    matches: int = 1


# The stamp: the product's latest audit event and the state of the evidence of every release holding the artifact.
# The event is named by its chained hash, not its id: ids repeat after a database is restored or recreated, and a
# cache that outlived the database must never answer from another history (the hash covers every earlier event).
# Every controlled write (signature, promotion, policy activation, CR change, requirement edit, evidence upload)
# appends an audit event for the product, so its head moves; evidence processing (parse and verify) changes the
# evidence rows themselves. Expiry is not in the stamp: the cached answer carries its own `valid_until`.
# `= ANY(ARRAY(...))` keeps every step on an index (artifact → its releases → their artifacts → their evidence)
# whatever the planner guesses: a join here was planned as a sequential scan of all evidence (3 ms at 10,000 rows).
_STATUS_KEY_TEMPLATE = """
SELECT
  a.id,
  a.product_id,
  p.key,
  (SELECT id FROM changecontrol_environment WHERE product_id = a.product_id AND key = %(environment)s),
  (SELECT hash FROM changecontrol_auditevent WHERE product_key = p.key ORDER BY at DESC, id DESC LIMIT 1),
  (SELECT md5(string_agg(e.id::text || ':' || e.state || ':' || e.verdict, ',' ORDER BY e.id))
     FROM evidence_evidence e
    WHERE e.artifact_id = ANY(ARRAY(
      SELECT mine.artifact_id FROM approvals_release_artifacts mine
       WHERE mine.release_id = ANY(ARRAY(
         SELECT asked.release_id FROM approvals_release_artifacts asked WHERE asked.artifact_id = a.id))) || a.id)),
  count(*) OVER ()
FROM evidence_artifact a
JOIN changecontrol_product p ON p.id = a.product_id
WHERE {where}
"""
_STATUS_KEY_WHERE = {
    # A service account's token sees exactly its products (access.visible_product_ids), so visibility is a join.
    "token": "a.digest = %(digest)s AND EXISTS (SELECT 1 FROM changecontrol_apitoken_products tp"
    " WHERE tp.apitoken_id = %(token_id)s AND tp.product_id = a.product_id)",
    "products": "a.digest = %(digest)s AND a.product_id = ANY(%(product_ids)s)",
    "artifact": "a.id = %(artifact_id)s",
}
STATUS_KEY_SQL = {name: _STATUS_KEY_TEMPLATE.format(where=where) for name, where in _STATUS_KEY_WHERE.items()}


def status_key(
    *,
    environment_key: str,
    digest: str | None = None,
    token_id: int | None = None,
    product_ids: set[int] | None = None,
    artifact_id: int | None = None,
) -> StatusKey | None:
    """Resolve a digest within what the caller may see (a service account's `token_id`, or the `product_ids` of
    access.visible_product_ids) — or an `artifact_id` already resolved — with its inputs stamp, in one query:
    this runs on every status call, cached or not (the CI gate's hot path). None when nothing visible matches."""
    from django.db import connection

    if artifact_id is not None:
        where, params = "artifact", {"artifact_id": artifact_id}
    elif token_id is not None:
        where, params = "token", {"digest": digest, "token_id": token_id}
    else:
        where, params = "products", {"digest": digest, "product_ids": sorted(product_ids or ())}
    if connection.vendor != "postgresql":
        return _status_key_orm(environment_key=environment_key, **params)
    # Prepared: PostgreSQL would otherwise spend twice as long planning this statement as running it.
    row = prepared_sql.fetchone(STATUS_KEY_SQL[where], {**params, "environment": environment_key})
    if row is None:
        return None
    artifact, product, product_key, environment, head, evidence, matches = row
    return StatusKey(artifact, product, product_key, environment, canonical_sha256([head, evidence]), matches)


def _status_key_orm(*, environment_key: str, **params) -> StatusKey | None:
    """The same answer as STATUS_KEY_SQL for other databases (the embedded SQLite default), in a few queries."""
    from changecontrol.models import AuditEvent
    from evidence.models import Artifact

    artifacts = Artifact.objects.select_related("product")
    if "artifact_id" in params:
        found = list(artifacts.filter(pk=params["artifact_id"]))
    elif "token_id" in params:
        found = list(artifacts.filter(digest=params["digest"], product__api_tokens=params["token_id"])[:2])
    else:
        found = list(artifacts.filter(digest=params["digest"], product_id__in=params["product_ids"])[:2])
    if not found:
        return None
    artifact = found[0]
    environment_id = (
        Environment.objects.filter(product_id=artifact.product_id, key=environment_key)
        .values_list("id", flat=True)
        .first()
    )
    head = (
        AuditEvent.objects.filter(product_key=artifact.product.key)
        .order_by("-at", "-id")
        .values_list("hash", flat=True)
        .first()
    )
    evidence = list(
        Evidence.objects.filter(Q(artifact__releases__artifacts=artifact) | Q(artifact=artifact))
        .order_by("id")
        .values_list("id", "state", "verdict")
        .distinct()
    )
    stamp = canonical_sha256([head, canonical_sha256(evidence)])
    return StatusKey(artifact.pk, artifact.product_id, artifact.product.key, environment_id, stamp, len(found))
