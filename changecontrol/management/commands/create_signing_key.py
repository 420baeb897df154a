"""Write a new Ed25519 signing key file for Custody (production); never overwrites an existing one."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from common.signing import Keyring, generate_private_key_pem


class Command(BaseCommand):
    help = (
        "Create Custody's Ed25519 signing key (PKCS#8 PEM, mode 0600). Refuses to overwrite: a lost key is a "
        "lost identity. For rotation, write the new key to a new path (see docs/operations.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", default="", help="where to write it (default: CUSTODY_SIGNING_KEY_FILE)")

    def handle(self, *args, **options):
        path = Path(options["file"] or settings.CUSTODY_SIGNING_KEY_FILE)
        if path.exists():
            raise CommandError(f"{path} already exists; Custody never overwrites a signing key. Choose another --file.")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = generate_private_key_pem()
        try:
            # O_EXCL: a file that appears between the check and the write is still never overwritten.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{path} already exists; Custody never overwrites a signing key.") from None
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        keyring = Keyring(active_private_key_pem=pem)
        self.stdout.write(f"Wrote a new Ed25519 signing key to {path} (mode 0600).")
        self.stdout.write(f"Key ID: {keyring.key_id}")
        self.stdout.write("Public key (publish it; keep it in CUSTODY_RETIRED_PUBLIC_KEY_FILES after rotation):")
        self.stdout.write(keyring.active_public_key_pem.rstrip())
