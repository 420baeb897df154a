"""The reports tests render packets and bundles of releases built from the evidence fixtures."""

from tests.evidence.conftest import (  # noqa: F401 - fixtures, found by pytest through this module
    artifact,
    build,
    ed25519_key,
    p256_key,
    private_media,
    registered_key,
    upload,
)
