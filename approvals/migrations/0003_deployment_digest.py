"""A deployment names the digest it shipped, registered or not (DESIGN §4.6: facts are never refused).

`digest` is always filled; `artifact` only when a build of the product registered that digest. The database holds
three rules: the digest is a well-formed sha256, an unregistered digest is never an authorised deployment, and the
digest equals the artifact's when there is one. Django cannot declare the last (a composite foreign key
(artifact_id, digest) → evidence_artifact (id, digest)), so it is SQL here: PostgreSQL gets the foreign key, checked
at once rather than at commit, the embedded SQLite default gets triggers with the same effect (SQLite rebuilds a
table it alters, so a later migration of this table must create them again).
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

POSTGRES_FORWARD = """
ALTER TABLE evidence_artifact ADD CONSTRAINT evidence_artifact_id_digest_key UNIQUE (id, digest);
ALTER TABLE approvals_deployment ADD CONSTRAINT approvals_deployment_digest_matches_artifact
    FOREIGN KEY (artifact_id, digest) REFERENCES evidence_artifact (id, digest);
"""

POSTGRES_BACKWARD = """
ALTER TABLE approvals_deployment DROP CONSTRAINT IF EXISTS approvals_deployment_digest_matches_artifact;
ALTER TABLE evidence_artifact DROP CONSTRAINT IF EXISTS evidence_artifact_id_digest_key;
"""

SQLITE_MISMATCH = "NEW.artifact_id IS NOT NULL AND NEW.digest IS NOT (SELECT digest FROM evidence_artifact WHERE id = NEW.artifact_id)"
SQLITE_FORWARD = [
    f"""CREATE TRIGGER approvals_deployment_digest_matches_artifact_{operation.lower()}
        BEFORE {operation} ON approvals_deployment WHEN {SQLITE_MISMATCH}
        BEGIN SELECT RAISE(ABORT, 'a deployment''s digest must be its artifact''s digest'); END;"""
    for operation in ("INSERT", "UPDATE")
]


def fill_digests(apps, schema_editor):
    Artifact = apps.get_model("evidence", "Artifact")
    Deployment = apps.get_model("approvals", "Deployment")
    Deployment.objects.update(digest=Subquery(Artifact.objects.filter(pk=OuterRef("artifact_id")).values("digest")[:1]))


def digest_matches_artifact(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def digest_matches_artifact_undo(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif vendor == "sqlite":
        for operation in ("insert", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS approvals_deployment_digest_matches_artifact_{operation}")


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0002_deployment_breakglassreview_environmentsnapshot_and_more"),
        ("evidence", "0003_releaseexport"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="digest",
            field=models.CharField(
                max_length=71, null=True, help_text="What was deployed, registered or not: sha256:<64 hex>."
            ),
        ),
        migrations.RunPython(fill_digests, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="deployment",
            name="digest",
            field=models.CharField(max_length=71, help_text="What was deployed, registered or not: sha256:<64 hex>."),
        ),
        migrations.AlterField(
            model_name="deployment",
            name="artifact",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="deployments",
                to="evidence.artifact",
            ),
        ),
        migrations.AddConstraint(
            model_name="deployment",
            constraint=models.CheckConstraint(
                condition=models.Q(digest__regex="^sha256:[0-9a-f]{64}$"), name="approvals_deployment_digest_format"
            ),
        ),
        migrations.AddConstraint(
            model_name="deployment",
            constraint=models.CheckConstraint(
                condition=models.Q(artifact__isnull=False) | models.Q(authorised=False),
                name="approvals_deployment_unregistered_unauthorised",
            ),
        ),
        migrations.RunPython(digest_matches_artifact, digest_matches_artifact_undo),
    ]
