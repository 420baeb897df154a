"""Fixtures of the scenario tests: the one pipeline driver, a registered signing key, private evidence storage."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.scenarios.driver import Pipeline, register_signing_key


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Each test keeps its evidence bytes and renderings in its own folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def ci(api, ci_token, django_capture_on_commit_callbacks, cast):
    return Pipeline(api, ci_token, django_capture_on_commit_callbacks)


@pytest.fixture
def signing_key(api, cast) -> ed25519.Ed25519PrivateKey:
    return register_signing_key(api, cast["sasha"])
