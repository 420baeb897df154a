"""The database itself refuses to rewrite the audit trail (DESIGN §6): UPDATE, DELETE and TRUNCATE fail.

PostgreSQL only; the embedded SQLite default gets equivalent triggers for UPDATE and DELETE (SQLite has no
TRUNCATE). Nothing in Custody edits events, so a failure here is always an attempted rewrite.
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION custody_audit_refuse_rewrite() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on changecontrol_auditevent is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER custody_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON changecontrol_auditevent
    FOR EACH ROW EXECUTE FUNCTION custody_audit_refuse_rewrite();

CREATE TRIGGER custody_audit_no_truncate
    BEFORE TRUNCATE ON changecontrol_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION custody_audit_refuse_rewrite();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS custody_audit_no_truncate ON changecontrol_auditevent;
DROP TRIGGER IF EXISTS custody_audit_no_update_delete ON changecontrol_auditevent;
DROP FUNCTION IF EXISTS custody_audit_refuse_rewrite();
"""

SQLITE_FORWARD = [
    """CREATE TRIGGER custody_audit_no_update BEFORE UPDATE ON changecontrol_auditevent
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: UPDATE is refused'); END;""",
    """CREATE TRIGGER custody_audit_no_delete BEFORE DELETE ON changecontrol_auditevent
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: DELETE is refused'); END;""",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS custody_audit_no_update")
        schema_editor.execute("DROP TRIGGER IF EXISTS custody_audit_no_delete")


def create_chain_head(apps, schema_editor):
    AuditChainHead = apps.get_model("changecontrol", "AuditChainHead")
    AuditChainHead.objects.get_or_create(singleton=True, defaults={"last_hash": "0" * 64, "last_event_id": 0})


class Migration(migrations.Migration):
    dependencies = [("changecontrol", "0001_initial")]

    operations = [
        migrations.RunPython(forward, backward),
        migrations.RunPython(create_chain_head, migrations.RunPython.noop),
    ]
