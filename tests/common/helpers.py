"""What the input tests share: a build body, nested JSON, and the check that an answer is the §7 400."""

from __future__ import annotations

import hashlib

DIGEST = "sha256:" + hashlib.sha256(b"odd input").hexdigest()


def build_body(**extra) -> dict:
    return {"commit": "a" * 40, "pipeline_url": "https://ci.example/runs/1", **extra}


def nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"1" + b"}" * (depth - 1)


def assert_invalid_input(response, *words: str) -> str:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "invalid_input", body
    for word in words:
        assert word in body["detail"], body
    return body["detail"]
