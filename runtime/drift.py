"""Environment snapshots and drift: what really runs, compared with what was approved there, in one SQL statement.

A snapshot is stored only when the running set changes (its sha256 differs from the latest one); every report is
compared all the same, because approvals and deployments move between reports. The comparison is set-based: one
statement joins the reported set (unnested arrays) against artifacts, promotions and deployments — never a query
per digest — and its result is reconciled with the open findings: new ones open, vanished ones resolve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from alerts.services import alert_raise
from changecontrol import audit
from changecontrol.models import Environment, User
from common.canonical import canonical_sha256
from common.digests import is_digest
from common.errors import ValidationFailed
from evidence.models import Artifact
from runtime.deployments import advisories_match_on_commit, deploys_to, not_a_deployer
from runtime.models import DriftFinding, EnvironmentSnapshot

MAX_RUNNING = 20_000

# The whole comparison in one plan. "approved here" = the digest is in a release whose promotion into this
# environment was decided (approved, deployed, or later expired / superseded — it was approved once), or it was
# deployed here authorised. "expected" = per artifact name, the latest deployment into this environment (a deployment
# of a digest no build registered has no name, is never authorised, and so never expects anything: the inner join
# leaves it out).
DRIFT_SQL = """
WITH running(digest, name) AS (
    SELECT DISTINCT * FROM unnest(%(digests)s::text[], %(names)s::text[])
),
known AS (
    SELECT r.digest, r.name, a.id AS artifact_id
      FROM running r LEFT JOIN evidence_artifact a ON a.digest = r.digest AND a.product_id = %(product)s
),
expected AS (
    -- The latest deployment of each artifact name here. Deployments into one environment are written under its
    -- row lock (runtime.deployments), so the highest id is the latest: a hash aggregate, no sort of the history.
    SELECT max(d.id) AS id
      FROM approvals_deployment d JOIN evidence_artifact a ON a.id = d.artifact_id
     WHERE d.environment_id = %(environment)s
     GROUP BY a.name
)
SELECT 'unknown_provenance', k.digest, k.name FROM known k WHERE k.artifact_id IS NULL
UNION ALL
SELECT 'unapproved', k.digest, k.name FROM known k
 WHERE k.artifact_id IS NOT NULL
   AND NOT EXISTS (
       SELECT 1 FROM approvals_release_artifacts ra
         JOIN approvals_promotion p ON p.release_id = ra.release_id
        WHERE ra.artifact_id = k.artifact_id AND p.environment_id = %(environment)s
          AND p.decided_at IS NOT NULL AND p.state <> 'rejected')
   AND NOT EXISTS (
       SELECT 1 FROM approvals_deployment d
        WHERE d.artifact_id = k.artifact_id AND d.environment_id = %(environment)s AND d.authorised)
UNION ALL
SELECT 'missing', a.digest, a.name FROM expected e
  JOIN approvals_deployment d ON d.id = e.id
  JOIN evidence_artifact a ON a.id = d.artifact_id
 WHERE d.authorised AND NOT EXISTS (SELECT 1 FROM running r WHERE r.digest = a.digest)
"""


@dataclass
class SnapshotResult:
    """What one report did: the snapshot it is (new or unchanged) and the findings it opened, resolved and left open."""

    snapshot: EnvironmentSnapshot
    changed: bool
    opened: list[DriftFinding] = field(default_factory=list)
    resolved: list[DriftFinding] = field(default_factory=list)
    open: list[DriftFinding] = field(default_factory=list)


def running_set(artifacts: list[dict]) -> list[dict]:
    """Validate and normalise [{name, digest}] → sorted, de-duplicated; every problem named at once."""
    if not isinstance(artifacts, list):
        raise ValidationFailed("artifacts must be a list of {name, digest}")
    if len(artifacts) > MAX_RUNNING:
        raise ValidationFailed(f"a snapshot may list at most {MAX_RUNNING} artifacts, not {len(artifacts)}")
    problems, seen = [], {}
    for index, item in enumerate(artifacts):
        if not isinstance(item, dict):
            problems.append(f"artifacts[{index}]: expected an object with name and digest")
            continue
        digest = str(item.get("digest") or "").strip().lower()
        name = str(item.get("name") or "").strip()[:300]
        if not is_digest(digest):
            problems.append(f"artifacts[{index}]: digest must be sha256:<64 lowercase hex>, not {digest[:80]!r}")
            continue
        seen.setdefault(digest, name)
    if problems:
        raise ValidationFailed(
            f"{len(problems)} artifact(s) are malformed: {'; '.join(problems[:10])}", errors=problems
        )
    return [{"digest": digest, "name": seen[digest]} for digest in sorted(seen)]


def set_sha256(running: list[dict]) -> str:
    return canonical_sha256(running)


def drift_compute(*, environment: Environment, running: list[dict]) -> set[tuple[str, str, str]]:
    """{(kind, digest, name)} for this running set: one statement, one plan, whatever the sizes."""
    if connection.vendor != "postgresql":
        return _drift_compute_portable(environment=environment, running=running)
    with connection.cursor() as cursor:
        cursor.execute(
            DRIFT_SQL,
            {
                "digests": [r["digest"] for r in running],
                "names": [r["name"] for r in running],
                "product": environment.product_id,
                "environment": environment.pk,
            },
        )
        return {(kind, digest, name or "") for kind, digest, name in cursor.fetchall()}


@transaction.atomic
def snapshot_record(*, environment: Environment, reporter: User, artifacts: list[dict]) -> SnapshotResult:
    """Record what runs in an environment (a new snapshot only if the set changed) and open / resolve drift."""
    if not deploys_to(reporter, environment.product):
        # What runs is reported by the CI or an agent, or by a person who deploys; auditors change nothing (§8).
        raise not_a_deployer(reporter, environment.product, action="reporting what runs", scope="snapshots:write")
    running = running_set(artifacts)
    # 1. One report at a time per environment: findings are reconciled against a stable open set.
    environment = Environment.objects.select_for_update().select_related("product").get(pk=environment.pk)
    product = environment.product
    now = timezone.now()
    digest = set_sha256(running)
    latest = EnvironmentSnapshot.objects.filter(environment=environment).order_by("-taken_at", "-id").first()
    changed = latest is None or latest.sha256 != digest
    if changed:
        snapshot = EnvironmentSnapshot.objects.create(
            product=product,
            environment=environment,
            taken_at=now,
            last_reported_at=now,
            reported_by=reporter,
            artifacts=running,
            sha256=digest,
        )
        audit.record(
            actor=reporter,
            action="snapshot.recorded",
            obj=snapshot,
            before={"snapshot": latest.human_id, "sha256": latest.sha256} if latest else None,
            after={"environment": environment.key, "sha256": digest, "artifacts": len(running)},
        )
        # What newly runs here is matched against the stored OSV advisories once this is committed.
        was_running = {item["digest"] for item in (latest.artifacts if latest else [])}
        started = [item["digest"] for item in running if item["digest"] not in was_running]
        if started:
            advisories_match_on_commit(
                list(Artifact.objects.filter(product=product, digest__in=started).values_list("id", flat=True))
            )
    else:
        snapshot = latest
        EnvironmentSnapshot.objects.filter(pk=snapshot.pk).update(last_reported_at=now)
    # 2. Compare in SQL, reconcile with the open findings.
    found = drift_compute(environment=environment, running=running)
    open_findings = list(
        DriftFinding.objects.select_for_update().filter(environment=environment, state=DriftFinding.State.OPEN)
    )
    open_keys = {(f.kind, f.digest): f for f in open_findings}
    found_keys = {(kind, digest): name for kind, digest, name in found}
    to_open = [
        DriftFinding(
            product=product,
            environment=environment,
            digest=digest,
            name=name,
            kind=kind,
            opened_at=now,
            opened_by=snapshot,
        )
        for (kind, digest), name in sorted(found_keys.items())
        if (kind, digest) not in open_keys
    ]
    opened = DriftFinding.objects.bulk_create(to_open)
    resolved = [finding for key, finding in open_keys.items() if key not in found_keys]
    if resolved:
        DriftFinding.objects.filter(pk__in=[f.pk for f in resolved]).update(
            state=DriftFinding.State.RESOLVED, resolved_at=now, resolved_by=snapshot
        )
        for finding in resolved:
            finding.state, finding.resolved_at, finding.resolved_by = DriftFinding.State.RESOLVED, now, snapshot
    # 3. Audit each finding's change; alert once per report that opened any.
    for finding in opened:
        audit.record(
            actor=reporter,
            action="drift.opened",
            obj=finding,
            after={"kind": finding.kind, "digest": finding.digest, "name": finding.name, "snapshot": snapshot.human_id},
        )
    for finding in resolved:
        audit.record(
            actor=reporter,
            action="drift.resolved",
            obj=finding,
            before={"state": "open"},
            after={"state": "resolved", "snapshot": snapshot.human_id},
        )
    if opened:
        counts: dict[str, int] = {}
        for finding in opened:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        alert_raise(
            product=product,
            event_kind="drift",
            subject=f"Drift in {product.key}/{environment.key}: "
            + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(counts.items())),
            body={
                "environment": environment.key,
                "snapshot": snapshot.human_id,
                **dict(sorted(counts.items())),
                "findings": ", ".join(f"{f.human_id} {f.kind} {f.name or f.digest[:19]}" for f in opened[:10]),
            },
            dedupe_key=f"drift:{environment.pk}:{opened[0].pk}",
        )
    still_open = [f for key, f in open_keys.items() if key in found_keys] + opened
    return SnapshotResult(snapshot=snapshot, changed=changed, opened=opened, resolved=resolved, open=still_open)


def _drift_compute_portable(*, environment: Environment, running: list[dict]) -> set[tuple[str, str, str]]:
    """The same comparison for the embedded SQLite default (no unnest / DISTINCT ON): a few set queries."""
    from approvals.models import Promotion
    from evidence.models import Artifact
    from runtime.models import Deployment

    names = {r["digest"]: r["name"] for r in running}
    known = dict(
        Artifact.objects.filter(product_id=environment.product_id, digest__in=list(names)).values_list("digest", "id")
    )
    approved = set(
        Promotion.objects.filter(
            environment=environment, decided_at__isnull=False, release__artifacts__id__in=list(known.values())
        )
        .exclude(state=Promotion.State.REJECTED)
        .values_list("release__artifacts__id", flat=True)
    ) | set(
        Deployment.objects.filter(
            environment=environment, authorised=True, artifact_id__in=list(known.values())
        ).values_list("artifact_id", flat=True)
    )
    found = {("unknown_provenance", d, n) for d, n in names.items() if d not in known}
    found |= {("unapproved", d, n) for d, n in names.items() if d in known and known[d] not in approved}
    latest: dict[str, tuple[str, bool]] = {}
    for name, digest, authorised in (
        Deployment.objects.filter(environment=environment, artifact__isnull=False)
        .order_by("-deployed_at", "-id")
        .values_list("artifact__name", "digest", "authorised")
    ):
        latest.setdefault(name, (digest, authorised))
    found |= {("missing", d, n) for n, (d, ok) in latest.items() if ok and d not in names}
    return found
