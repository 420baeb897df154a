"""A database made by the old layout (three apps) migrates to the new one with every row and every guard intact.

The old layout's last migrations are changecontrol 0003, evidence 0004, approvals 0003 and alerts 0001. The models
that moved (traceability, the runtime record, release exports) keep their tables, so migrating must change no row:
it renames what carried the old app label (constraint and index names), moves content types, and leaves every
trigger where it was. Each step runs `manage.py` in a process of its own against a database of its own, as an
operator upgrading an installation would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
OLD_LAYOUT = [
    ("changecontrol", "0003_traceability"),
    ("evidence", "0004_evidence_copies_with_signatures"),
    ("approvals", "0003_deployment_digest"),
    ("alerts", "0001_initial"),
]

# Rows of every moved model, written through the historical models of the old layout (what the old code wrote).
SEED_OLD_LAYOUT = """
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

loader = MigrationLoader(connection)
apps = loader.project_state(nodes={old_layout!r}, at_end=True).apps
model = apps.get_model
now = timezone.now()
user = model("changecontrol", "User").objects.create(username="olga", password="!")
product = model("changecontrol", "Product").objects.create(key="rsd", name="RSD", safety_class="B", safety_rationale="r")
production = model("changecontrol", "Environment").objects.create(product=product, key="production", name="P", order=3)
policy = model("changecontrol", "PolicyVersion").objects.create(
    product=product, version=1, source="policy: rsd", sha256="0" * 64, state="active", author=user, reason="r"
)
change = model("changecontrol", "ChangeRequest").objects.create(product=product, title="t", requester=user)
requirement = model("changecontrol", "TraceItem").objects.create(
    product=product, kind="requirement", identifier="REQ-1", title="t", fingerprint="1" * 64
)
control = model("changecontrol", "TraceItem").objects.create(
    product=product, kind="risk_control", identifier="RC-1", title="t", fingerprint="2" * 64
)
model("changecontrol", "TraceItemVersion").objects.create(item=requirement, version=1, title="t", fingerprint="1" * 64, created_by=user)
model("changecontrol", "TraceLink").objects.create(
    product=product, kind="implements", source=control, target=requirement, created_by=user
)
model("changecontrol", "ChangeRequestItem").objects.create(change_request=change, item=requirement, created_by=user)
model("changecontrol", "TraceBaseline").objects.create(
    product=product, release_version="1.0", taken_by=user, content={{"items": []}}, sha256="3" * 64
)
build = model("evidence", "Build").objects.create(
    product=product, number=1, pipeline_url="https://ci.example/1", commit="a" * 40, registered_by=user
)
artifact = model("evidence", "Artifact").objects.create(
    product=product, build=build, name="rsd", kind="container", digest="sha256:" + "b" * 64, registered_by=user
)
release = model("approvals", "Release").objects.create(product=product, version="1.0", created_by=user)
release.artifacts.add(artifact)
decision = model("approvals", "Decision").objects.create(
    artifact=artifact, environment=production, decision="allowed", inputs_sha256="4" * 64, answer_sha256="5" * 64
)
deployment = model("approvals", "Deployment").objects.create(
    product=product, environment=production, artifact=artifact, digest=artifact.digest, release=release,
    deployer=user, kind="break_glass", justification="outage", decision=decision, authorised=False,
)
snapshot = model("approvals", "EnvironmentSnapshot").objects.create(
    product=product, environment=production, reported_by=user, artifacts=[], sha256="6" * 64
)
model("approvals", "DriftFinding").objects.create(
    product=product, environment=production, digest="sha256:" + "c" * 64, kind="unapproved", opened_by=snapshot
)
model("approvals", "BreakGlassReview").objects.create(deployment=deployment, product=product, due_at=now)
model("evidence", "ReleaseExport").objects.create(
    release=release, kind="packet", release_state_sha256="7" * 64, requested_by=user
)
print("seeded")
"""

# After the upgrade, through today's models: every row is there, and the database still refuses what it refused.
CHECK_NEW_LAYOUT = """
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction

from reports.models import ReleaseExport
from runtime.models import BreakGlassReview, Deployment, DriftFinding, EnvironmentSnapshot
from traceability.models import ChangeRequestItem, TraceBaseline, TraceItem, TraceItemVersion, TraceLink

counts = {{m.__name__: m.objects.count() for m in (
    TraceItem, TraceItemVersion, TraceLink, ChangeRequestItem, TraceBaseline,
    Deployment, EnvironmentSnapshot, DriftFinding, BreakGlassReview, ReleaseExport,
)}}
assert counts == {{"TraceItem": 2, "TraceItemVersion": 1, "TraceLink": 1, "ChangeRequestItem": 1, "TraceBaseline": 1,
    "Deployment": 1, "EnvironmentSnapshot": 1, "DriftFinding": 1, "BreakGlassReview": 1, "ReleaseExport": 1}}, counts
assert BreakGlassReview.objects.get().deployment.release.version == "1.0"
assert TraceLink.objects.get().source.identifier == "RC-1"
for label, model in (("traceability", "traceitem"), ("runtime", "deployment"), ("reports", "releaseexport")):
    assert ContentType.objects.filter(app_label=label, model=model).count() == 1, (label, model)
assert not ContentType.objects.filter(app_label="changecontrol", model="traceitem").exists()

def refused(sql):
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    except Exception:  # IntegrityError, or the trigger's own error
        return True
    return False

finding = DriftFinding.objects.get()
# The partial unique index, under its new name: one open finding per environment, digest and kind.
assert refused(
    "INSERT INTO approvals_driftfinding (product_id, environment_id, digest, name, kind, state, opened_at, opened_by_id)"
    f" SELECT product_id, environment_id, digest, name, kind, state, opened_at, opened_by_id FROM approvals_driftfinding"
)
# A check constraint, renamed: a deployment kind outside the list.
assert refused("UPDATE approvals_deployment SET kind = 'sideways'")
# The triggers stayed on their tables: a baseline is frozen, a deployment's digest is its artifact's.
assert refused("UPDATE changecontrol_tracebaseline SET sha256 = '" + "9" * 64 + "'")
assert refused("UPDATE approvals_deployment SET digest = 'sha256:" + "d" * 64 + "'")
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE conname LIKE 'traceability_%' OR conname LIKE 'runtime_%'"
                       " OR conname LIKE 'reports_%'")
        renamed = {{row[0] for row in cursor.fetchall()}}
        cursor.execute("SELECT conname FROM pg_constraint WHERE conname IN ('changecontrol_traceitem_kind_valid',"
                       " 'approvals_deployment_kind_valid', 'evidence_releaseexport_kind_valid')")
        left = cursor.fetchall()
    assert {{"traceability_traceitem_kind_valid", "runtime_deployment_kind_valid", "reports_releaseexport_kind_valid"}} <= renamed
    assert left == []
print("checked")
"""


def manage(database_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old-layout.sqlite3'}"
        return
    name = f"custody_layout_{uuid.uuid4().hex[:12]}"
    admin = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_of_the_old_layout_migrates_with_every_row_and_guard_intact(database_url):
    for app, migration in OLD_LAYOUT:
        manage(database_url, "migrate", app, migration, "--noinput")
    assert "seeded" in manage(database_url, "shell", "-c", SEED_OLD_LAYOUT.format(old_layout=OLD_LAYOUT))
    manage(database_url, "migrate", "--noinput")
    assert "checked" in manage(database_url, "shell", "-c", textwrap.dedent(CHECK_NEW_LAYOUT.format()))
    # The new state and the database agree: nothing left for makemigrations to write.
    manage(database_url, "makemigrations", "--check", "--dry-run")
