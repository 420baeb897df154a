"""Propose a new policy version from a YAML file kept in git (DESIGN §5); a quality reviewer signs it."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from changecontrol import services
from changecontrol.management.commands._shared import products_named, user_named
from common.errors import DomainError


class Command(BaseCommand):
    help = "Propose a product's policy from a YAML file. Invalid files are refused with every error by line."

    def add_arguments(self, parser):
        parser.add_argument("--product", required=True)
        parser.add_argument("--file", required=True, help="the policy YAML")
        parser.add_argument("--reason", required=True, help="why the policy changes (kept with the version)")
        parser.add_argument("--author", required=True, help="username of the person proposing it")

    def handle(self, *args, **options):
        [product] = products_named(options["product"])
        author = user_named(options["author"])
        path = Path(options["file"])
        try:
            source = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        latest = product.policy_versions.order_by("-version").first()
        try:
            version = services.policy_version_propose(
                product=product, author=author, source=source, reason=options["reason"]
            )
        except DomainError as refused:
            errors = refused.extra.get("errors")
            if not errors:
                raise CommandError(refused.detail) from None
            self.stderr.write(f"{path} is not a valid policy ({len(errors)} problem(s)):")
            for error in errors:
                where = f"{error['path']}: " if error.get("path") else ""
                self.stderr.write(f"  {path}:{error['line']}: {where}{error['message']}")
            raise CommandError("policy refused; nothing was stored", returncode=1) from None
        if latest is not None and version.pk == latest.pk:
            self.stdout.write(
                f"{version} already holds this exact document ({version.get_state_display()}); nothing new stored."
            )
            return
        self.stdout.write(f"Proposed {version} (sha256 {version.sha256}).")
        self.stdout.write(
            f"It takes effect only when a quality reviewer of {product.key} other than {author.username} signs it:"
            f" the Sign to activate button on /products/{product.key}/policy, or"
            f" POST /api/v1/products/{product.key}/policy-versions/{version.version}/signatures with the"
            f" content_sha256 that GET /api/v1/products/{product.key}/policy-versions/{version.version} answers."
        )
