"""Sealed records (DESIGN §6): audit events carry the seals of the records they change, and PostgreSQL refuses
rewrites of signatures, policy versions and checkpoints except their legal transitions (common.table_guards)."""

from django.db import migrations, models

from common.table_guards import GuardTable


class Migration(migrations.Migration):
    dependencies = [("changecontrol", "0004_traceability_moves_to_its_own_app")]

    operations = [
        migrations.AddField(model_name="auditevent", name="seals", field=models.JSONField(blank=True, null=True)),
        GuardTable(
            table="changecontrol_signature",
            mutable=("invalidated_at", "invalidated_reason"),
            transition="OLD.invalidated_at IS NULL AND NEW.invalidated_at IS NOT NULL AND NEW.invalidated_reason <> ''",
            rule="a signature is only ever invalidated, once, with a reason",
        ),
        GuardTable(
            table="changecontrol_policyversion",
            mutable=("state", "activated_at"),
            transition=(
                "(OLD.state = 'proposed' AND NEW.state IN ('active', 'rejected')) "
                "OR (OLD.state = 'active' AND NEW.state = 'superseded' "
                "AND NEW.activated_at IS NOT DISTINCT FROM OLD.activated_at)"
            ),
            rule="a policy version is proposed, then active or rejected, then superseded",
        ),
        GuardTable(table="changecontrol_auditcheckpoint", rule="a signed checkpoint is never changed or removed"),
    ]
