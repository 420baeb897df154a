"""Import OSV advisories from files and open findings for the running releases they affect (runtime.osv)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from common.errors import DomainError
from runtime.osv import osv_import, records_from


class Command(BaseCommand):
    help = (
        "Import OSV advisories from a directory, a .zip, a .tar.gz or a .json file (no network needed), match them "
        "against the SBOMs of releases running in any environment, open findings, alert, close what signed VEX covers."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="a directory of OSV JSON files (searched recursively), a .zip or a .tar.gz")

    def handle(self, *args, **options):
        try:
            result = osv_import(records=records_from(options["path"]))
        except DomainError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Read {result.read} OSV record(s): {result.created} new, {result.updated} updated, "
            f"{result.unchanged} unchanged; {len(result.findings_opened)} finding(s) opened, "
            f"{result.findings_closed} closed by VEX."
        )
        for finding in result.findings_opened:
            self.stdout.write(
                f"  {finding.human_id} {finding.advisory.osv_id}: {finding.product.key} {finding.release.version} "
                f"({', '.join(c['name'] + ' ' + c['version'] for c in finding.components)})"
            )
