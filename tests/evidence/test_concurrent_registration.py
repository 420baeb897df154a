"""Idempotent endpoints stay idempotent when CI retries or fans out: ten identical requests at once, one record."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from evidence.models import Artifact, Build

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 10
ROUNDS = 3


def post_at_once(url: str, token: str, body: dict) -> list[tuple[int, dict]]:
    """POST the same body from THREADS threads released together; every (status, json) answer."""
    barrier = threading.Barrier(THREADS)
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def send():
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the test's own server
                answer = (response.status, json.loads(response.read()))
        except urllib.error.HTTPError as error:
            answer = (error.code, json.loads(error.read() or b"{}"))
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_ten_identical_build_and_artifact_registrations_at_once_make_one_record_each(live_server, ci_token, product):
    for round_number in range(ROUNDS):
        build_body = {"commit": f"{round_number:x}" * 40, "pipeline_url": f"https://ci.example/acme/rsd/{round_number}"}
        builds = post_at_once(f"{live_server.url}/api/v1/products/rsd/builds", ci_token, build_body)
        assert all(status in (200, 201) for status, _ in builds), builds
        assert len({body["id"] for _, body in builds}) == 1
        assert sorted(status for status, _ in builds).count(201) == 1
        digest = "sha256:" + f"{round_number + 10:x}" * 64
        artifact_body = {"name": "rsd-api", "digest": digest, "build": builds[0][1]["id"], "kind": "container-image"}
        artifacts = post_at_once(f"{live_server.url}/api/v1/products/rsd/artifacts", ci_token, artifact_body)
        assert all(status in (200, 201) for status, _ in artifacts), artifacts
        assert sorted(status for status, _ in artifacts).count(201) == 1
        assert {(body["digest"], body["build"]) for _, body in artifacts} == {(digest, builds[0][1]["id"])}
        assert Artifact.objects.filter(digest=digest).count() == 1
    assert Build.objects.count() == ROUNDS
