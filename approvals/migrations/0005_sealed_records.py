"""Sealed records (DESIGN §6): PostgreSQL refuses rewrites of frozen releases (and what they hold) and of decisions."""

from django.db import migrations

from common.table_guards import GuardMembership, GuardTable

FROZEN = "a frozen release is its signed manifest"


class Migration(migrations.Migration):
    dependencies = [("approvals", "0004_runtime_moves_to_its_own_app")]

    operations = [
        GuardTable(table="approvals_release", sealed_when="OLD.frozen_at IS NOT NULL", rule=FROZEN),
        GuardMembership(
            table="approvals_release_artifacts",
            owner_table="approvals_release",
            owner_column="release_id",
            sealed_when="owner.frozen_at IS NOT NULL",
            rule=FROZEN,
        ),
        GuardMembership(
            table="approvals_release_change_requests",
            owner_table="approvals_release",
            owner_column="release_id",
            sealed_when="owner.frozen_at IS NOT NULL",
            rule=FROZEN,
        ),
        GuardTable(table="approvals_decision", rule="a decision is what was decided"),
    ]
