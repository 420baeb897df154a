"""Revoke an API token by its prefix or id (audited); it stops working at once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from changecontrol.api_auth import token_revoke
from changecontrol.models import ApiToken


class Command(BaseCommand):
    help = "Revoke an API token, named by the prefix shown when it was created (cst_…) or by its id."

    def add_arguments(self, parser):
        parser.add_argument("token", help="the token's prefix (first 10 characters), its full secret, or its id")
        parser.add_argument("--reason", default="", help="why it is revoked (kept in the audit trail)")

    def handle(self, *args, **options):
        needle = options["token"].strip()
        if needle.isdigit():
            matches = list(ApiToken.objects.filter(pk=int(needle)))
        elif len(needle) > 12:
            matches = list(ApiToken.objects.filter(token_sha256=ApiToken.hash_secret(needle)))
        else:
            matches = list(ApiToken.objects.filter(prefix=needle))
        if not matches:
            raise CommandError(f"no token matches {needle!r}")
        if len(matches) > 1:
            ids = ", ".join(str(token.pk) for token in matches)
            raise CommandError(f"{len(matches)} tokens share the prefix {needle!r}: revoke by id ({ids})")
        token = matches[0]
        if token.revoked_at is not None:
            self.stdout.write(f"Token {token} was already revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S} UTC.")
            return
        token_revoke(actor=None, token=token, reason=options["reason"])
        self.stdout.write(f"Revoked token {token} of {token.user.username}.")
