"""Create an API token for a service account (or a person) and print the secret once, as the last line."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from changecontrol.api_auth import token_create, token_request_check
from changecontrol.management.commands._shared import account_ensure, products_named
from changecontrol.models import ApiToken
from common.errors import ValidationFailed


class Command(BaseCommand):
    help = (
        "Create a bearer token scoped to products and actions. The secret is shown once, on the last line; "
        "Custody keeps only its hash. Scopes: " + ", ".join(ApiToken.SCOPES)
    )

    def add_arguments(self, parser):
        parser.add_argument("--product", required=True, help="product key(s), comma-separated: rsd or rsd,lab")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. ci")
        parser.add_argument("--scopes", required=True, help="comma-separated, e.g. evidence:write,status:read")
        parser.add_argument(
            "--user", default="", help="the account that owns the token (default: service account <name>-<product>)"
        )

    def handle(self, *args, **options):
        # 1. Validate everything first: an unknown product or scope creates no account and no token.
        products = products_named(options["product"])
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        try:
            token_request_check(scopes=scopes, products=products)
        except ValidationFailed as refused:
            raise CommandError(refused.detail) from None
        username = options["user"] or f"{options['name']}-{products[0].key}"
        # 2. The account and its token are written together, or neither is.
        with transaction.atomic():
            user, created = account_ensure(
                actor=None,
                username=username,
                full_name=f"{options['name'].upper()} ({', '.join(p.key for p in products)})",
                is_service_account=True,
            )
            token, secret = token_create(actor=None, name=options["name"], user=user, products=products, scopes=scopes)
        if created:
            self.stderr.write(f"Created service account {username}.")
        elif not user.is_service_account:
            self.stderr.write(
                f"{username} is a person: this is a personal token, limited to the products they hold roles on."
            )
        self.stderr.write(
            f"Token {token.name} ({token.prefix}…) for {username} on {', '.join(p.key for p in products)} "
            f"with scopes {', '.join(token.scopes)}. Store it now: it cannot be shown again."
        )
        # The secret alone on the last line of stdout, so scripts can take it with `tail -n1`.
        self.stdout.write(secret)
