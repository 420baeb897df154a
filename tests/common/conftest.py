"""Fixtures of the input tests: a CI client, an artifact to upload evidence to, a real gunicorn."""

from __future__ import annotations

import pytest

from tests.common.helpers import DIGEST, build_body
from tests.gunicorn_server import gunicorn_url  # noqa: F401 - a fixture, offered to these tests


@pytest.fixture
def ci(api, ci_token):
    return api(token=ci_token)


@pytest.fixture
def artifact_digest(ci):
    build = ci.post("/api/v1/products/rsd/builds", build_body(), format="json")
    assert build.status_code == 201, build.content
    artifact = ci.post(
        "/api/v1/products/rsd/artifacts",
        {"name": "scoring-service", "digest": DIGEST, "build": build.json()["id"], "kind": "container-image"},
        format="json",
    )
    assert artifact.status_code == 201, artifact.content
    return DIGEST
