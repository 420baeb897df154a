"""Walk the audit chain; exit 0 when intact, 1 naming the first broken event (DESIGN §6)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from changecontrol import audit


class Command(BaseCommand):
    help = "Verify the hash chain of the audit trail and Custody's latest signed checkpoint. Exit 1 if broken."

    def handle(self, *args, **options):
        report = audit.verify_chain()
        if report.intact:
            self.stdout.write(f"Audit trail intact: {report.count} events verified.")
            return
        self.stdout.write(f"{report.count} events verified before the break.")
        raise CommandError(f"Audit trail BROKEN at event #{report.first_broken_id}: {report.problem}", returncode=1)
