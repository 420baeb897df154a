"""A digest is unique within a product, not across products (docs/security.md, "Existence across products").

SQLite rebuilds a table it alters, and refuses to while a trigger of another table names it (the deployments' digest
check of approvals 0003): those triggers are set aside for the rebuild and created again exactly as they were.
"""

from django.db import migrations, models

SET_ASIDE = "sqlite_set_aside_triggers"


def set_triggers_aside(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name <> 'evidence_artifact'"
            " AND sql LIKE '%evidence_artifact%'"
        )
        triggers = cursor.fetchall()
    for name, _sql in triggers:
        schema_editor.execute(f'DROP TRIGGER "{name}"')
    setattr(connection, SET_ASIDE, [sql for _name, sql in triggers])


def restore_triggers(apps, schema_editor):
    connection = schema_editor.connection
    for sql in getattr(connection, SET_ASIDE, []):
        schema_editor.execute(sql)
    if hasattr(connection, SET_ASIDE):
        delattr(connection, SET_ASIDE)


class Migration(migrations.Migration):
    dependencies = [
        ("evidence", "0008_sbom_component_license_declared"),
    ]

    operations = [
        migrations.RunPython(set_triggers_aside, restore_triggers),
        migrations.AlterField(
            model_name="artifact",
            name="digest",
            field=models.CharField(db_index=True, max_length=71),
        ),
        migrations.AddConstraint(
            model_name="artifact",
            constraint=models.UniqueConstraint(fields=("product", "digest"), name="evidence_artifact_digest_per_product"),
        ),
        migrations.RunPython(restore_triggers, set_triggers_aside),
    ]
