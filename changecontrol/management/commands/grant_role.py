"""Grant (or revoke) a person's role on a product, or globally; audited like every role change."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from changecontrol import roles
from changecontrol.management.commands._shared import products_named, user_named
from changecontrol.models import Role
from common.errors import ValidationFailed


class Command(BaseCommand):
    help = "Grant a role on a product (--product rsd) or on every product (--global). --revoke takes it away."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--product", help="product key(s), comma-separated")
        scope.add_argument("--global", dest="everywhere", action="store_true", help="a role on every product")
        parser.add_argument("--revoke", action="store_true")
        parser.add_argument("--reason", default="")

    def handle(self, *args, **options):
        user = user_named(options["user"])
        role = options["role"]
        try:
            if options["everywhere"]:
                if options["revoke"]:
                    raise CommandError("revoke a global role by removing the person from the group in the admin pages")
                roles.global_role_grant(actor=None, user=user, role=role)
                self.stdout.write(f"{user.username} now holds {role} on every product.")
                return
            for product in products_named(options["product"]):
                if options["revoke"]:
                    roles.role_revoke(actor=None, user=user, product=product, role=role, reason=options["reason"])
                    self.stdout.write(f"{user.username} no longer holds {role} on {product.key}.")
                else:
                    roles.role_grant(actor=None, user=user, product=product, role=role)
                    self.stdout.write(f"{user.username} holds {role} on {product.key}.")
        except ValidationFailed as refused:
            raise CommandError(refused.detail) from None
