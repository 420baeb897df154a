"""What the scenario tests (test_contract_scenarios.py, test_policy_scenarios.py) share: the pipeline's
identities, the error shape of DESIGN §7, and evidence written as the real tools write it, built here
independently of Custody's own code (the DSSE envelope computes its own PAE) so the scenarios check Custody
against the formats, not against itself."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

BUILDER_ID = "https://ci.example/acme/rsd/release.yml@refs/heads/main"
REPOSITORY = "https://github.com/acme/rsd"


def digest_of(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def commit_of(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()  # noqa: S324 - a git commit id, not security


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The §7 error shape: JSON with `error` and a human `detail` sentence, and the right status."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("detail"), str) and len(body["detail"]) > 10, body
    if code is not None:
        assert body["error"] == code, body
    return body


def register_signing_key(api, security_reviewer) -> ed25519.Ed25519PrivateKey:
    """A release signer's key, registered by the security reviewer through the API."""
    private = ed25519.Ed25519PrivateKey.generate()
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    response = api(security_reviewer).post(
        "/api/v1/products/rsd/signer-keys", {"name": "release signer", "public_key_pem": pem}, format="json"
    )
    assert response.status_code == 201, response.content
    return private


def junit_passing(*cases: tuple[str, str | None]) -> bytes:
    """A pytest JUnit report where every test passed; a case may name the requirement it verifies."""
    # Run just now: a result older than a requirement's current version does not verify it (docs/traceability.md).
    ran_at = datetime.now(UTC).isoformat()
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="{len(cases)}"'
        f' time="0.1" timestamp="{ran_at}">',
    ]
    for name, requirement in cases:
        lines.append(f'<testcase classname="tests.test_score" name="{name}" time="0.01">')
        if requirement:
            lines.append(f'<properties><property name="requirement" value="{requirement}"/></properties>')
        lines.append("</testcase>")
    lines.append("</testsuite></testsuites>")
    return "\n".join(lines).encode()


def slsa_statement(digest: str, builder_id: str = BUILDER_ID) -> dict:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "scoring-service", "digest": {"sha256": digest.split(":", 1)[1]}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {
                    "workflow": {"ref": "refs/heads/main", "repository": REPOSITORY, "path": "release.yml"}
                },
                "resolvedDependencies": [
                    {"uri": f"git+{REPOSITORY}@refs/heads/main", "digest": {"gitCommit": "c" * 40}}
                ],
            },
            "runDetails": {"builder": {"id": builder_id}, "metadata": {"invocationId": "run-42"}},
        },
    }


def dsse_envelope(private_key: ed25519.Ed25519PrivateKey, statement: dict) -> bytes:
    """An in-toto DSSE envelope signed over PAE(payloadType, payload), as cosign attest writes it."""
    payload_type = "application/vnd.in-toto+json"
    payload = json.dumps(statement).encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)
    signature = private_key.sign(pae)
    return json.dumps(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
        }
    ).encode()
