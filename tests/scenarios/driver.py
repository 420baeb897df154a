"""The one driver of the scenario tests (test_contract.py, test_policy.py): a CI pipeline and people talking to
Custody only through the public API (DESIGN §7), the pipeline's identities, the error shape, and evidence written as
the real tools write it, built here independently of Custody's own code (the DSSE envelope computes its own PAE) so
the scenarios check Custody against the formats, not against itself."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import PASSWORD

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


# ---------------------------------------------------------------- the one driver: a CI pipeline and people


class Pipeline:
    """A CI pipeline of `rsd` talking to Custody only through the public API."""

    def __init__(self, api, token, capture, product="rsd"):
        self.client = api(token=token)
        self.capture = capture
        self.product = product

    def build(self, run: str, *, commits=(), builder_identity: str = BUILDER_ID, expect: int | None = 201) -> dict:
        response = self.client.post(
            f"/api/v1/products/{self.product}/builds",
            {
                "commit": commit_of(run),
                "branch": "main",
                "pipeline_url": f"https://github.com/acme/rsd/actions/runs/{run}",
                "ci_system": "github-actions",
                "build_number": run,
                "builder_identity": builder_identity,
                "commits": list(commits),
            },
            format="json",
        )
        if expect is not None:
            assert response.status_code == expect, response.content
        return response.json()

    def artifact(self, digest: str, build_id: str, *, name: str = "scoring-service", expect: int | None = 201):
        response = self.client.post(
            f"/api/v1/products/{self.product}/artifacts",
            {"name": name, "digest": digest, "build": build_id, "kind": "container-image"},
            format="json",
        )
        if expect is not None:
            assert response.status_code == expect, response.content
        return response

    def upload(
        self, digest: str, evidence_type: str, content: bytes, *, filename: str = "", name: str = "", signature=None
    ):
        data = {"type": evidence_type, "file": SimpleUploadedFile(filename or f"report.{evidence_type}", content)}
        if name:
            data["name"] = name
        if signature is not None:
            data["signature"] = SimpleUploadedFile("report.sig", signature)
        # The upload queues processing for after the commit; tasks run eagerly in tests, as a worker would.
        with self.capture(execute=True):
            return self.client.post(f"/api/v1/artifacts/{digest}/evidence", data, format="multipart")

    def evidence(self, response) -> dict:
        """Poll GET /api/v1/evidence/{id} (via the status_url the upload gave) until it is processed."""
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["id"] and body["status_url"], body
        for _ in range(5):
            polled = self.client.get(body["status_url"])
            assert polled.status_code == 200, polled.content
            if polled.json()["state"] not in ("pending", "processing"):
                return polled.json()
        return polled.json()

    def release(self, version: str, digests: list[str], change_requests: list[str], *, expect: int | None = 201):
        response = self.client.post(
            f"/api/v1/products/{self.product}/releases",
            {"version": version, "artifacts": digests, "change_requests": change_requests},
            format="json",
        )
        if expect is not None:
            assert response.status_code == expect, response.content
        return response

    def promote(self, version: str, environment: str, *, client=None):
        return (client or self.client).post(
            f"/api/v1/releases/{self.product}/{version}/promotions", {"environment": environment}, format="json"
        )

    def status(self, digest: str, environment: str):
        return self.client.get("/api/v1/status", {"artifact": digest, "environment": environment})

    def answer(self, digest: str, environment: str) -> dict:
        """The status answer, which must be a 200."""
        response = self.status(digest, environment)
        assert response.status_code == 200, response.content
        return response.json()

    def history(self, digest: str, environment: str) -> list[dict]:
        response = self.client.get("/api/v1/status/history", {"artifact": digest, "environment": environment})
        assert response.status_code == 200, response.content
        return response.json()

    def built_artifact(self, run: str, *, builder_identity: str = BUILDER_ID) -> str:
        """Register a build and its one artifact; returns the digest."""
        build = self.build(run, builder_identity=builder_identity)
        digest = digest_of(f"scoring-service-{run}")
        self.artifact(digest, build["id"])
        return digest

    def processed(self, digest: str, evidence_type: str, content: bytes, **options) -> dict:
        """Upload and follow the evidence to its processed state."""
        return self.evidence(self.upload(digest, evidence_type, content, **options))

    def deploy(self, digest: str, environment: str, *, kind: str = "normal", client=None, **extra):
        return (client or self.client).post(
            "/api/v1/deployments",
            {
                "artifact": digest,
                "environment": environment,
                "pipeline_url": "https://github.com/acme/rsd/actions/runs/deploy",
                "kind": kind,
                **extra,
            },
            format="json",
        )


def open_change_request(api, person, answers, *, submit=True, **fields) -> dict:
    body = {
        "title": "Recalibrate the sepsis risk score thresholds",
        "why": "Clinical review found the amber threshold flags too many low-risk patients.",
        "what_changes": "Amber threshold 0.35 -> 0.42 in the scoring service configuration.",
        "affected_items": "scoring-service",
        "kind": "configuration",
        "type": "normal",
        "verification_plan": "Replay last quarter's anonymised cases against the clinical panel's labels.",
        "rollback_plan": "Revert the configuration commit and redeploy the previous image digest.",
        "risk_answers": answers,
        **fields,
    }
    client = api(person)
    response = client.post("/api/v1/products/rsd/change-requests", body, format="json")
    assert response.status_code == 201, response.content
    change_request = response.json()
    if submit:
        response = client.post(f"/api/v1/change-requests/{change_request['id']}/submit", format="json")
        assert response.status_code == 200, response.content
        change_request = response.json()
    return change_request


def content_sha256_of(client, record_path: str) -> str:
    """What a reviewer reads before signing: the record's GET answer, and the content_sha256 it carries."""
    response = client.get(record_path)
    assert response.status_code == 200, response.content[:500]
    return response.json()["content_sha256"]


def sign_change_request(api, person, change_request_id, *, password=PASSWORD, meaning="approved"):
    client = api(person)
    seen = content_sha256_of(client, f"/api/v1/change-requests/{change_request_id}")
    return client.post(
        f"/api/v1/change-requests/{change_request_id}/signatures",
        {
            "meaning": meaning,
            "comment": "Reviewed the plan.",
            "username": person.username,
            "password": password,
            "content_sha256": seen,
        },
        format="json",
    )


def sign_promotion(api, person, promotion_id, *, password=PASSWORD, meaning="approved", comment="Evidence reviewed."):
    client = api(person)
    seen = content_sha256_of(client, f"/api/v1/promotions/{promotion_id}")
    return client.post(
        f"/api/v1/promotions/{promotion_id}/signatures",
        {
            "meaning": meaning,
            "comment": comment,
            "username": person.username,
            "password": password,
            "content_sha256": seen,
        },
        format="json",
    )
