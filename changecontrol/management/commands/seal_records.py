"""Seal the records written before this version sealed them (once, after upgrading; audited)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from changecontrol import audit, verification

BATCH = 500


class Command(BaseCommand):
    help = (
        "Write a seal for every sealed kind of record that carries none yet (records written before Custody sealed "
        "them). Records whose row no longer matches their seal are never re-sealed: verify_audit names them."
    )

    def handle(self, *args, **options):
        unsealed = verification.unsealed_records()
        total = 0
        for model, pks in unsealed.items():
            for start in range(0, len(pks), BATCH):
                batch = list(model._base_manager.filter(pk__in=pks[start : start + BATCH]).order_by("pk"))
                with transaction.atomic():
                    audit.record(
                        actor=None,
                        action="records.sealed",
                        after={"type": model._meta.label_lower, "count": len(batch)},
                        reason="written before this version of Custody sealed records; sealed as found",
                        seal=batch,
                    )
                total += len(batch)
        kinds = ", ".join(f"{model._meta.verbose_name_plural} {len(pks)}" for model, pks in unsealed.items())
        self.stdout.write(f"Sealed {total} record(s)" + (f": {kinds}." if kinds else ": every record had its seal."))
