"""Custody's own keyring, built once per process from settings (DESIGN §6 "Custody's own signature")."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.signing import Keyring, load_or_create_key_file


@cache
def keyring() -> Keyring:
    key_file = Path(settings.CUSTODY_SIGNING_KEY_FILE)
    if settings.CUSTODY_SIGNING_KEY_AUTOCREATE or key_file.exists():
        # Development creates its key on first use; production must be given one (a lost key is a lost identity).
        private_pem = (
            load_or_create_key_file(key_file) if settings.CUSTODY_SIGNING_KEY_AUTOCREATE else key_file.read_bytes()
        )
    else:
        raise ImproperlyConfigured(
            f"Custody's signing key file {key_file} does not exist: create one with "
            "`manage.py create_signing_key` and set CUSTODY_SIGNING_KEY_FILE."
        )
    retired = [Path(path).read_bytes() for path in settings.CUSTODY_RETIRED_PUBLIC_KEY_FILES]
    return Keyring(active_private_key_pem=private_pem, retired_public_key_pems=retired)
