"""Seed the demo: products, policies, the cast, a CI token, change requests in every state (idempotent)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config import demo


class Command(BaseCommand):
    help = "Create the demo data (safe to run twice). Prints the demo logins and the CI token."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="seed even with CUSTODY_DEBUG off (the demo accounts share a published password: never in production)",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["allow_without_debug"]:
            raise CommandError(
                "seed_demo creates accounts with a published password; it runs only with CUSTODY_DEBUG=1 "
                "(or --allow-without-debug on a throwaway database)"
            )
        demo.seed(stdout=self.stdout)
