"""Sign the audit chain head now (Celery beat also does this periodically)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from changecontrol import audit


class Command(BaseCommand):
    help = "Sign a checkpoint of the audit chain head with Custody's key."

    def handle(self, *args, **options):
        checkpoint = audit.checkpoint_create()
        if checkpoint is None:
            self.stdout.write("The audit trail is empty: nothing to checkpoint.")
            return
        self.stdout.write(
            f"Checkpoint {checkpoint.pk} signed: event #{checkpoint.event_id} hash {checkpoint.event_hash} "
            f"key {checkpoint.key_id}"
        )
