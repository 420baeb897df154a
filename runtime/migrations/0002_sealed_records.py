"""Sealed records (DESIGN §6): PostgreSQL refuses rewrites of deployments, break-glass reviews, snapshots and drift
findings except their legal transitions."""

from django.db import migrations

from common.table_guards import GuardTable


class Migration(migrations.Migration):
    dependencies = [("runtime", "0001_initial"), ("approvals", "0005_sealed_records")]

    operations = [
        GuardTable(table="approvals_deployment", rule="a deployment is a fact"),
        GuardTable(
            table="approvals_breakglassreview",
            mutable=("state", "findings", "reviewer_id", "reviewed_at", "signature_id"),
            transition="OLD.state = 'due' AND NEW.state = 'reviewed'",
            rule="a break-glass review is due, then reviewed once",
        ),
        GuardTable(
            table="approvals_environmentsnapshot",
            mutable=("last_reported_at",),
            transition="NEW.last_reported_at >= OLD.last_reported_at",
            rule="a snapshot only records a later report of the same running set",
        ),
        GuardTable(
            table="approvals_driftfinding",
            mutable=("state", "resolved_at", "resolved_by_id"),
            transition="OLD.state = 'open' AND NEW.state = 'resolved'",
            rule="a drift finding is open, then resolved once",
        ),
    ]
