"""Sealed records (DESIGN §6): PostgreSQL refuses rewrites of evidence and of the facts parsed from it, except the
steps of processing (evidence.processing) and the VEX suppression a later statement decides (evidence.vex)."""

from django.db import migrations

from common.table_guards import GuardTable

# The bookkeeping of processing may change at any time; what the evidence is and counts as only at these steps.
EVIDENCE_STEPS = """
    (NEW.state = OLD.state AND NEW.verdict = OLD.verdict AND NEW.verdict_detail = OLD.verdict_detail
        AND NEW.signer_key_id IS NOT DISTINCT FROM OLD.signer_key_id AND NEW.summary = OLD.summary
        AND NEW.processed_at IS NOT DISTINCT FROM OLD.processed_at
        AND (NEW.superseded_by_id IS NOT DISTINCT FROM OLD.superseded_by_id OR NEW.state = 'superseded'))
    OR (NEW.state = 'processing' AND NEW.verdict = OLD.verdict AND NEW.summary = OLD.summary)
    OR (OLD.state = 'processing' AND NEW.state IN ('parsed', 'rejected', 'failed'))
    OR (OLD.state IN ('parsed', 'rejected', 'failed', 'superseded') AND NEW.state = 'pending'
        AND NEW.verdict = OLD.verdict)
    OR (OLD.state IN ('parsed', 'superseded') AND NEW.state IN ('parsed', 'superseded') AND NEW.verdict = OLD.verdict
        AND NEW.summary = OLD.summary)
"""
BEING_PROCESSED = (
    "EXISTS (SELECT 1 FROM evidence_evidence AS e WHERE e.id = OLD.evidence_id AND e.state = 'processing')"
)
FACT_TABLES = (
    "evidence_testresult",
    "evidence_coveragefile",
    "evidence_staticfinding",
    "evidence_sbomcomponent",
    "evidence_vexstatement",
    "evidence_provenance",
)
FACTS_RULE = "facts are written once, and replaced only while their evidence is processed again"


class Migration(migrations.Migration):
    dependencies = [("evidence", "0005_release_exports_move_to_reports")]

    operations = [
        GuardTable(
            table="evidence_evidence",
            mutable=(
                "state",
                "verdict",
                "verdict_detail",
                "signer_key_id",
                "summary",
                "error",
                "progress",
                "attempts",
                "processed_at",
                "superseded_by_id",
            ),
            transition=EVIDENCE_STEPS,
            rule="evidence changes only by the steps of processing it",
        ),
        *(GuardTable(table=table, delete_when=BEING_PROCESSED, rule=FACTS_RULE) for table in FACT_TABLES),
        GuardTable(
            table="evidence_vulnerability",
            mutable=("suppressed_by_id",),
            delete_when=BEING_PROCESSED,
            rule=FACTS_RULE + "; a VEX statement may suppress one",
        ),
    ]
