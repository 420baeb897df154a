"""Benchmark: an environment snapshot of 500 running artifacts against 10,000 deployments (issue 6, item 8).

Measured: the whole `runtime.drift.snapshot_record` service — lock, hash the set, store a new snapshot, the
one-statement drift comparison, reconcile with the open findings, audit and alert. Each timed call reports a set
that differs from the previous one by one digest, so every call writes a new snapshot and opens or resolves a
finding (the honest, changed-set path). Floor, in the same run: a single indexed SQL anti-join of the 500 running
digests against the environment's authorised deployments — the least any drift check must read.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta

from benchmarks import Result, timed

NAMES = 500
DEPLOYMENTS_PER_NAME = 20  # 10,000 deployments
TARGET_RATIO = 1 / 3  # issue 6 item 8: the comparison within 3x of the anti-join floor
# The whole service also appends ~3 hash-chained audit events (serialised on the chain head), inserts the snapshot
# and reconciles findings: writes no anti-join pays for. It is held to 6x so a regression there still shows.
SERVICE_TARGET_RATIO = 1 / 6
FLOOR_SQL = """
SELECT r.digest FROM unnest(%s::text[]) AS r(digest)
 WHERE NOT EXISTS (
     SELECT 1 FROM approvals_deployment d JOIN evidence_artifact a ON a.id = d.artifact_id
      WHERE a.digest = r.digest AND d.environment_id = %s AND d.authorised)
"""


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _populate():
    from django.utils import timezone

    from changecontrol.models import Environment, Product, User
    from evidence.models import Artifact, Build
    from runtime.models import Deployment

    start = timezone.now() - timedelta(days=30)
    # The CI agent that reports what runs (only service accounts and deployers may report snapshots).
    user = User.objects.create(username="bench-drift", full_name="Benchmark CI", is_service_account=True)
    product = Product.objects.create(key="drift", name="drift", safety_class="B", safety_rationale="benchmark")
    environment = Environment.objects.create(product=product, key="production", name="Production", order=3)
    build = Build.objects.create(
        product=product, number=1, pipeline_url="https://ci.example/b/1", commit="0" * 40, registered_by=user
    )
    artifacts = Artifact.objects.bulk_create(
        [
            Artifact(product=product, build=build, name=f"svc-{n}", digest=_digest(f"{n}-{v}"), registered_by=user)
            for v in range(DEPLOYMENTS_PER_NAME)
            for n in range(NAMES)
        ],
        batch_size=2000,
    )
    Deployment.objects.bulk_create(
        [
            Deployment(
                product=product,
                environment=environment,
                artifact=artifact,
                digest=artifact.digest,
                deployer=user,
                deployed_at=start + timedelta(minutes=i),
                kind="normal",
                authorised=True,
                decision_snapshot={"decision": "allowed"},
            )
            for i, artifact in enumerate(artifacts)
        ],
        batch_size=2000,
    )
    # What runs: the latest version of every service, but 5 replaced by unapproved builds and 5 by unknown digests.
    latest = {a.name: a.digest for a in artifacts}
    unapproved = Artifact.objects.bulk_create(
        [
            Artifact(product=product, build=build, name=f"svc-{n}", digest=_digest(f"stray-{n}"), registered_by=user)
            for n in range(5)
        ]
    )
    running = [{"name": name, "digest": digest} for name, digest in latest.items()]
    for n, artifact in enumerate(unapproved):
        running[n] = {"name": artifact.name, "digest": artifact.digest}
    for n in range(5, 10):
        running[n] = {"name": f"svc-{n}", "digest": _digest(f"unknown-{n}")}
    return user, environment, running


def run() -> list[Result]:
    _django()
    from django.db import connection

    from runtime import drift

    user, environment, running = _populate()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    variants = [running, [*running[:-1], {"name": "svc-extra", "digest": _digest("extra")}]]
    calls = iter(range(10**6))

    def measured():
        return drift.snapshot_record(environment=environment, reporter=user, artifacts=variants[next(calls) % 2])

    measured()  # the first report opens the initial findings; the timed ones change one digest each
    measured_seconds, result = timed(measured)
    assert result.changed and len(result.open) >= 20, (result.changed, len(result.open))
    digests = [r["digest"] for r in running]

    def floor():
        with connection.cursor() as cursor:
            cursor.execute(FLOOR_SQL, [digests, environment.pk])
            return cursor.fetchall()

    floor_seconds, rows = timed(floor)
    assert len(rows) == 10, len(rows)
    sql_seconds, found = timed(lambda: drift.drift_compute(environment=environment, running=variants[0]))
    size = f"{len(running)} running vs {NAMES * DEPLOYMENTS_PER_NAME:,} deployments"
    return [
        Result(
            name="snapshot drift: snapshot_record (write, compare, reconcile, audit, alert)",
            size=size,
            measured_seconds=measured_seconds,
            floor_seconds=floor_seconds,
            target_ratio=SERVICE_TARGET_RATIO,
            note=f"target 6x, not 3x: each call also writes a snapshot and ~3 hash-chained audit events; "
            f"floor = one indexed anti-join of the running digests against authorised deployments; "
            f"{len(result.open)} findings open; the comparison alone takes {sql_seconds * 1000:.1f} ms "
            f"({len(found)} findings) in one statement",
        ),
        Result(
            name="snapshot drift: the one-statement comparison alone",
            size=size,
            measured_seconds=sql_seconds,
            floor_seconds=floor_seconds,
            target_ratio=TARGET_RATIO,
            note="unapproved + unknown provenance + missing in one plan, against the same floor",
        ),
    ]
