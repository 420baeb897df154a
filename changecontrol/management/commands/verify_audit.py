"""Verify the audit trail and every sealed record (DESIGN §6): exit 0 intact, 1 tampered, 2 not fully covered."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from changecontrol import verification, witnesses

EXIT_TAMPERED = 1
EXIT_NOT_COVERED = 2


class Command(BaseCommand):
    help = (
        "Verify the audit chain, every signed checkpoint and every sealed record, and compare the checkpoints with "
        "the witnesses. Exit 0 when intact, 1 naming what was tampered with, 2 when nothing was tampered with but "
        "part of the trail is not covered by a signed checkpoint (or a witness could not be read)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="Start from the checkpoint the last intact verification reached (recorded in the trail).",
        )
        parser.add_argument(
            "--witness",
            action="append",
            default=None,
            metavar="URI",
            help="Compare with this witness (file:/path, git:/path or an http(s) URL); repeatable. "
            "Default: the witnesses in CUSTODY_AUDIT_WITNESSES.",
        )
        parser.add_argument(
            "--record",
            action="store_true",
            help="Record the outcome in the audit trail (an intact outcome is where --incremental starts next).",
        )

    def handle(self, *args, **options):
        try:
            chosen = [witnesses.witness_for(uri) for uri in options["witness"] or []] or witnesses.configured()
        except ValueError as error:
            raise CommandError(str(error)) from None
        report = verification.verify(incremental=options["incremental"], witnesses=chosen)
        if options["record"]:
            verification.outcome_record(report)
        self.stdout.write(
            f"{report.kind.capitalize()} verification: {report.events} events (#{report.first_event}–"
            f"#{report.last_event}), {report.checkpoints} checkpoints, {report.records} sealed records"
            + (f", {len(chosen)} witness(es)" if chosen else ", no witness configured")
            + "."
        )
        for note in report.notes:
            self.stdout.write(f"Note: {note}")
        if report.tampered:
            for finding in report.findings:
                self.stdout.write(f"TAMPERED {finding.kind}: {finding}")
            for why in report.uncovered:
                self.stdout.write(f"NOT COVERED: {why}")
            raise CommandError(
                f"Audit trail BROKEN: {len(report.findings)} finding(s); the first: {report.findings[0]}",
                returncode=EXIT_TAMPERED,
            )
        if report.uncovered:
            for why in report.uncovered:
                self.stdout.write(f"NOT COVERED: {why}")
            raise CommandError(
                "Nothing was found tampered with, but the trail is not intact until everything is covered: "
                + report.uncovered[0],
                returncode=EXIT_NOT_COVERED,
            )
        self.stdout.write(
            f"Audit trail intact: every event, checkpoint and sealed record verified; covered through event "
            f"#{report.covered_through} by checkpoint {report.checkpoint_id}."
        )
