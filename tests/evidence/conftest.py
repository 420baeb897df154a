"""Fixtures of the evidence tests: a build and artifact of `rsd`, signer keys, an upload helper, private storage."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from evidence import services
from evidence.models import Evidence

COMMITS = [
    {
        "sha": "a" * 40,
        "author_email": "alice@example.test",
        "author_name": "Alice Author",
        "message": "CR-1: raise amber threshold (REQ-017)",
    },
    {
        "sha": "b" * 40,
        "author_email": "alice@example.test",
        "author_name": "Alice Author",
        "message": "REQ-018 add audit log",
    },
]
DATA = Path(__file__).resolve().parent / "data"  # real files of issue 16's formats; provenance in its README


def data_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


DIGEST = "sha256:" + hashlib.sha256(b"rsd scoring-service image").hexdigest()
OTHER_DIGEST = "sha256:" + hashlib.sha256(b"something else entirely").hexdigest()


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    """Each test stores evidence bytes in its own folder, so 'nothing was stored' can be asserted."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def build(product, ci_account):
    build, _ = services.build_register(
        product=product,
        actor=ci_account,
        commit="c" * 40,
        branch="main",
        pipeline_url="https://github.com/acme/rsd/actions/runs/42",
        ci_system="github-actions",
        build_number="42",
        builder_identity="https://github.com/acme/rsd/.github/workflows/release.yml@refs/heads/main",
        commits=COMMITS,
    )
    return build


@pytest.fixture
def artifact(product, build, ci_account):
    artifact, _ = services.artifact_register(
        product=product, actor=ci_account, build=build, name="scoring-service", digest=DIGEST, kind="container-image"
    )
    return artifact


@dataclass
class KeyPair:
    """A signing key made in the test, with its PEM public key."""

    private: object
    public_pem: str
    algorithm: str

    def sign(self, message: bytes) -> bytes:
        if self.algorithm == "ed25519":
            return self.private.sign(message)
        return self.private.sign(message, ec.ECDSA(hashes.SHA256()))

    def sign_b64(self, message: bytes) -> bytes:
        return base64.b64encode(self.sign(message))


def _pem(private) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def ed25519_key() -> KeyPair:
    private = ed25519.Ed25519PrivateKey.generate()
    return KeyPair(private, _pem(private), "ed25519")


@pytest.fixture
def p256_key() -> KeyPair:
    private = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(private, _pem(private), "ecdsa-p256")


@pytest.fixture
def registered_key(product, admin_user, ed25519_key):
    services.signer_key_register(
        product=product, name="release signer", public_key_pem=ed25519_key.public_pem, actor=admin_user
    )
    return ed25519_key


def dsse_envelope(key: KeyPair, statement: dict, payload_type: str = "application/vnd.in-toto+json") -> bytes:
    from evidence.verification import pae

    payload = json.dumps(statement).encode()
    signature = key.sign(pae(payload_type, payload))
    return json.dumps(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
        }
    ).encode()


def slsa_statement(digest: str = DIGEST) -> dict:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "scoring-service", "digest": {"sha256": digest.split(":", 1)[1]}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {
                    "workflow": {
                        "ref": "refs/heads/main",
                        "repository": "https://github.com/acme/rsd",
                        "path": ".github/workflows/release.yml",
                    }
                },
                "resolvedDependencies": [
                    {"uri": "git+https://github.com/acme/rsd@refs/heads/main", "digest": {"gitCommit": "c" * 40}}
                ],
            },
            "runDetails": {
                "builder": {"id": "https://ci.example/acme/rsd/release.yml@refs/heads/main"},
                "metadata": {"invocationId": "https://github.com/acme/rsd/actions/runs/42/attempts/1"},
            },
        },
    }


@pytest.fixture
def upload(api, ci_token, django_capture_on_commit_callbacks):
    """POST evidence like CI does and run the queued processing (eager Celery) as the commit would."""

    def do_upload(
        digest: str,
        evidence_type: str,
        content: bytes,
        *,
        name: str = "",
        signature: bytes | None = None,
        token: str | None = None,
    ):
        from django.core.files.uploadedfile import SimpleUploadedFile

        data = {"type": evidence_type, "file": SimpleUploadedFile(name or f"report.{evidence_type}", content)}
        if signature is not None:
            data["signature"] = SimpleUploadedFile("report.sig", signature)
        if name:
            data["name"] = name
        with django_capture_on_commit_callbacks(execute=True):
            response = api(token=token or ci_token).post(
                f"/api/v1/artifacts/{digest}/evidence", data, format="multipart"
            )
        return response

    return do_upload


def evidence_of(response) -> Evidence:
    return Evidence.objects.get(pk=int(response.json()["id"].removeprefix("EV-")))
