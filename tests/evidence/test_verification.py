"""DSSE, in-toto, SLSA provenance and cosign verification: our own signed envelopes and the real samples."""

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from evidence.verification import (
    DsseEnvelope,
    SignatureError,
    certificate_public_key_from_bundle,
    key_id_for,
    load_public_key,
    pae,
    parse_cosign_simplesigning,
    parse_dsse,
    parse_statement,
    provenance_from_statement,
    subject_matches,
    verify_cosign_blob,
    verify_dsse,
    verify_signature,
)
from tests.samples import sample_bytes

IN_TOTO = "application/vnd.in-toto+json"
ARTIFACT_SHA256 = hashlib.sha256(b"the release artifact").hexdigest()
EMPTY_FILE_SHA256 = hashlib.sha256(b"").hexdigest()

DSSE_SAMPLES = [
    "attestations/dsse-rekor-v2-staging.sigstore.json",
    "attestations/publish-to-bcr-MODULE.bazel.intoto.jsonl",
    "attestations/slsa-container-based-v2.1.0.build.slsa",
    "attestations/slsa-github-generator-generic-v1.10.0.intoto.jsonl",
]


def pem_of(private_key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def ed25519_key():
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def p256_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def stranger_key():
    return ec.generate_private_key(ec.SECP256R1())


def sign(private_key, message: bytes) -> bytes:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(message)
    return private_key.sign(message, ec.ECDSA(hashes.SHA256()))


def statement_bytes(*, digest: str = ARTIFACT_SHA256) -> bytes:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app.tar", "digest": {"sha256": digest}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {"workflow": {"repository": "https://github.com/acme/app"}},
                "resolvedDependencies": [
                    {"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": {"gitCommit": "a" * 40}}
                ],
            },
            "runDetails": {
                "builder": {"id": "https://github.com/acme/builder"},
                "metadata": {"invocationId": "run-17"},
            },
        },
    }
    return json.dumps(statement).encode()


def envelope_json(*, private_key, payload: bytes, keyid: str = "", payload_type: str = IN_TOTO) -> bytes:
    signature = sign(private_key, pae(payload_type, payload))
    return json.dumps(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}],
        }
    ).encode()


def trusted(*private_keys) -> list:
    return [(key_id_for(pem_of(k)), k.public_key()) for k in private_keys]


# --- keys ---------------------------------------------------------------------------------------------------


def test_key_id_is_the_sha256_of_the_der_subject_public_key_info(ed25519_key, p256_key):
    der = ed25519_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_id_for(pem_of(ed25519_key)) == hashlib.sha256(der).hexdigest()
    assert key_id_for(pem_of(ed25519_key).decode()) == key_id_for(ed25519_key.public_key())
    assert key_id_for(pem_of(p256_key)) != key_id_for(pem_of(ed25519_key))
    assert len(key_id_for(pem_of(p256_key))) == 64


def test_load_public_key_names_the_algorithm(ed25519_key, p256_key):
    assert load_public_key(pem_of(ed25519_key))[1] == "ed25519"
    assert load_public_key(pem_of(p256_key))[1] == "ecdsa-p256"


def test_rsa_keys_are_refused_with_a_clear_message():
    rsa_pem = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(SignatureError, match=r"RSA keys \(2048 bits\) are not accepted.*Ed25519 or ECDSA P-256"):
        load_public_key(rsa_pem)


def test_other_curves_are_refused_with_a_clear_message():
    with pytest.raises(SignatureError, match="secp384r1 are not accepted"):
        load_public_key(pem_of(ec.generate_private_key(ec.SECP384R1())))


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"not a key", "not PEM text"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "cannot be read"),
    ],
)
def test_bad_pem_is_refused(pem, message):
    with pytest.raises(SignatureError, match=message):
        load_public_key(pem)


# --- signatures ---------------------------------------------------------------------------------------------


def test_pae_matches_the_dsse_specification_example():
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_ed25519_and_ecdsa_signatures_verify_and_forgeries_do_not(ed25519_key, p256_key):
    for private_key in (ed25519_key, p256_key):
        signature = sign(private_key, b"message")
        assert verify_signature(public_key=private_key.public_key(), signature=signature, message=b"message")
        assert not verify_signature(public_key=private_key.public_key(), signature=signature, message=b"messagE")
        assert not verify_signature(
            public_key=private_key.public_key(), signature=b"\x30\x01garbage", message=b"message"
        )


def test_ecdsa_raw_r_s_signatures_are_accepted(p256_key):
    r, s = decode_dss_signature(sign(p256_key, b"message"))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")

    assert verify_signature(public_key=pem_of(p256_key), signature=raw, message=b"message")
    assert not verify_signature(public_key=pem_of(p256_key), signature=raw, message=b"other")


# --- our own DSSE envelopes ---------------------------------------------------------------------------------


def test_valid_envelope_verifies_with_the_key_its_keyid_names(ed25519_key, p256_key):
    key_id = key_id_for(pem_of(ed25519_key))
    envelope = parse_dsse(envelope_json(private_key=ed25519_key, payload=statement_bytes(), keyid=key_id))

    verdict = verify_dsse(envelope=envelope, trusted_keys=trusted(p256_key, ed25519_key))

    assert verdict.verified
    assert (verdict.key_id, verdict.signature_index) == (key_id, 0)


def test_empty_keyid_tries_every_trusted_key(ed25519_key, p256_key):
    envelope = parse_dsse(envelope_json(private_key=p256_key, payload=statement_bytes(), keyid=""))

    verdict = verify_dsse(envelope=envelope, trusted_keys=trusted(ed25519_key, p256_key))

    assert verdict.verified and verdict.key_id == key_id_for(pem_of(p256_key))


def test_trusted_keys_may_be_given_as_pem(p256_key):
    envelope = parse_dsse(envelope_json(private_key=p256_key, payload=statement_bytes()))

    assert verify_dsse(envelope=envelope, trusted_keys=[("ci-key", pem_of(p256_key))]).verified


def test_one_changed_payload_byte_is_a_forgery(p256_key):
    envelope = parse_dsse(envelope_json(private_key=p256_key, payload=statement_bytes()))
    forged = DsseEnvelope(
        payload_type=envelope.payload_type,
        payload=envelope.payload.replace(b"acme/app", b"acme/apq", 1),
        signatures=envelope.signatures,
    )

    verdict = verify_dsse(envelope=forged, trusted_keys=trusted(p256_key))

    assert not verdict.verified
    assert "altered after signing" in verdict.detail


def test_changed_payload_type_is_a_forgery(p256_key):
    envelope = parse_dsse(envelope_json(private_key=p256_key, payload=statement_bytes()))
    retyped = DsseEnvelope(payload_type="text/plain", payload=envelope.payload, signatures=envelope.signatures)

    assert not verify_dsse(envelope=retyped, trusted_keys=trusted(p256_key)).verified


def test_envelope_signed_by_an_untrusted_key_is_not_verified(p256_key, ed25519_key, stranger_key):
    keyid = key_id_for(pem_of(stranger_key))
    envelope = parse_dsse(envelope_json(private_key=stranger_key, payload=statement_bytes(), keyid=keyid))

    verdict = verify_dsse(envelope=envelope, trusted_keys=trusted(p256_key, ed25519_key))

    assert not verdict.verified and verdict.key_id == ""
    assert "none of the 1 signature(s) verified with any of the 2 trusted key(s)" in verdict.detail


def test_no_trusted_keys_says_so(p256_key):
    envelope = parse_dsse(envelope_json(private_key=p256_key, payload=statement_bytes()))

    verdict = verify_dsse(envelope=envelope, trusted_keys=[])

    assert not verdict.verified and "no trusted keys" in verdict.detail


def test_jsonl_uses_the_first_non_empty_line_and_bundles_unwrap_the_envelope(p256_key):
    line = envelope_json(private_key=p256_key, payload=statement_bytes())
    other = envelope_json(private_key=p256_key, payload=statement_bytes(digest="b" * 64))
    bundle = json.dumps(
        {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": json.loads(line)}
    ).encode()

    for data in (b"\n" + line + b"\n" + other + b"\n", bundle):
        envelope = parse_dsse(data)
        assert envelope.payload == statement_bytes()
        assert verify_dsse(envelope=envelope, trusted_keys=trusted(p256_key)).verified


def test_subject_matches_only_the_attested_digest(p256_key):
    statement = parse_statement(parse_dsse(envelope_json(private_key=p256_key, payload=statement_bytes())).payload)

    assert subject_matches(statement=statement, artifact_digest=f"sha256:{ARTIFACT_SHA256}")
    assert subject_matches(statement=statement, artifact_digest=f"sha256:{ARTIFACT_SHA256.upper()}")
    assert not subject_matches(statement=statement, artifact_digest=f"sha256:{EMPTY_FILE_SHA256}")
    assert not subject_matches(statement=statement, artifact_digest=f"sha512:{ARTIFACT_SHA256}")
    with pytest.raises(SignatureError, match="not of the form 'sha256:<hex>'"):
        subject_matches(statement=statement, artifact_digest=ARTIFACT_SHA256)


def test_provenance_of_our_own_statement():
    provenance = provenance_from_statement(parse_statement(statement_bytes()))

    assert provenance.builder_id == "https://github.com/acme/builder"
    assert provenance.source_repository == "https://github.com/acme/app"
    assert provenance.source_commit == "a" * 40
    assert provenance.invocation_id == "run-17"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "must be a JSON object"),
        (b'{"payload": "e30=", "signatures": [{"sig": "AAAA"}]}', "payloadType: expected a non-empty string"),
        (
            b'{"payloadType": "x", "payload": "e30", "signatures": [{"sig": "AAAA"}]}',
            "payload: not valid standard base64",
        ),
        (b'{"payloadType": "x", "payload": "e30=", "signatures": []}', "signatures: expected a non-empty array"),
        (
            b'{"payloadType": "x", "payload": "e30=", "signatures": [{"sig": "A_A-"}]}',
            r"signatures\[0\].sig: not valid",
        ),
        (
            b'{"payloadType": "x", "payload": "e30=", "signatures": [{"keyid": 3, "sig": "AAAA"}]}',
            r"signatures\[0\].keyid",
        ),
        (b'{"payloadType": "x", "payload": "e30=", "signatures": ["AAAA"]}', r"signatures\[0\]: expected an object"),
        (
            b'{"dsseEnvelope": {"payloadType": "x", "payload": null, "signatures": []}}',
            "dsseEnvelope.payload: expected a base64",
        ),
    ],
)
def test_malformed_envelopes_are_refused_with_the_path(data, message):
    with pytest.raises(SignatureError, match=message):
        parse_dsse(data)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            {"_type": "https://in-toto.io/Statement/v2", "subject": [], "predicateType": "x"},
            "_type: .* is not an in-toto",
        ),
        ({"_type": "https://in-toto.io/Statement/v1", "predicateType": "x"}, "subject: expected a non-empty array"),
        (
            {"_type": "https://in-toto.io/Statement/v1", "predicateType": "x", "subject": [{"name": "a"}]},
            r"subject\[0\].digest",
        ),
        ({"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {"sha256": "ab"}}]}, "predicateType"),
        (
            {
                "_type": "https://in-toto.io/Statement/v1",
                "predicateType": "x",
                "subject": [{"digest": {"sha256": "ab"}}],
                "predicate": [],
            },
            "predicate: expected an object",
        ),
        (
            {"_type": "https://in-toto.io/Statement/v1", "predicateType": "x", "subject": [{"digest": {"sha256": 1}}]},
            r"subject\[0\].digest.sha256",
        ),
    ],
)
def test_malformed_statements_are_refused_with_the_path(statement, message):
    with pytest.raises(SignatureError, match=message):
        parse_statement(json.dumps(statement).encode())


def test_provenance_of_a_non_provenance_statement_is_refused():
    statement = parse_statement(
        json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "a", "digest": {"sha256": "ab"}}],
                "predicateType": "https://cyclonedx.org/bom",
            }
        ).encode()
    )
    with pytest.raises(SignatureError, match="is not SLSA provenance"):
        provenance_from_statement(statement)


# --- the real DSSE samples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DSSE_SAMPLES)
def test_sample_dsse_signatures_verify_with_their_own_certificate_key(name):
    data = sample_bytes(name)
    envelope = parse_dsse(data)
    key = certificate_public_key_from_bundle(data)

    verdict = verify_dsse(envelope=envelope, trusted_keys=[(key_id_for(key), key)])

    assert envelope.payload_type == IN_TOTO
    assert verdict.verified and verdict.key_id == key_id_for(key)
    forged = DsseEnvelope(
        payload_type=envelope.payload_type,
        payload=envelope.payload[:-2] + b" }",
        signatures=envelope.signatures,
    )
    assert not verify_dsse(envelope=forged, trusted_keys=[(key_id_for(key), key)]).verified


@pytest.mark.parametrize("name", DSSE_SAMPLES)
def test_sample_dsse_is_not_verified_by_an_unrelated_key(name, p256_key):
    assert not verify_dsse(envelope=parse_dsse(sample_bytes(name)), trusted_keys=trusted(p256_key)).verified


def test_publish_to_bcr_bundle_v0_3_statement_v1_provenance_v1():
    envelope = parse_dsse(sample_bytes("attestations/publish-to-bcr-MODULE.bazel.intoto.jsonl"))
    assert envelope.payload == sample_bytes("attestations/publish-to-bcr-MODULE.bazel.statement.json")

    statement = parse_statement(envelope.payload)
    assert statement.statement_type == "https://in-toto.io/Statement/v1"
    assert statement.subjects == [
        ("MODULE.bazel", {"sha256": "06ce330900a7d6403bc8d88e5dfad6aeeb8ae40179f66bb89e69c8bf6f6b1a0b"})
    ]
    assert subject_matches(
        statement=statement, artifact_digest="sha256:06ce330900a7d6403bc8d88e5dfad6aeeb8ae40179f66bb89e69c8bf6f6b1a0b"
    )
    provenance = provenance_from_statement(statement)
    assert (
        provenance.builder_id
        == "https://github.com/bazel-contrib/publish-to-bcr/.github/workflows/publish.yaml@refs/tags/v0.0.1"
    )
    assert provenance.build_type == "https://actions.github.io/buildtypes/workflow/v1"
    assert provenance.source_repository == "https://github.com/aspect-build/rules_lint"
    assert provenance.source_commit == "8f70009fde0c94ade6ce2a054b94718c819126ec"
    assert provenance.invocation_id == "https://github.com/aspect-build/rules_lint/actions/runs/14095611671/attempts/1"


def test_container_based_bundle_v0_2_statement_v0_1_with_empty_file_subject():
    statement = parse_statement(parse_dsse(sample_bytes("attestations/slsa-container-based-v2.1.0.build.slsa")).payload)

    assert statement.statement_type == "https://in-toto.io/Statement/v0.1"
    assert subject_matches(statement=statement, artifact_digest=f"sha256:{EMPTY_FILE_SHA256}")
    provenance = provenance_from_statement(statement)
    assert provenance.predicate_type == "https://slsa.dev/provenance/v1"
    assert provenance.builder_id.endswith("/builder_container-based_slsa3.yml@refs/tags/v2.1.0")
    assert provenance.build_type == "https://slsa.dev/container-based-build/v0.1?draft"
    assert provenance.source_repository == "https://github.com/slsa-framework/example-package"
    assert provenance.source_commit == "4d329c75e7ec1725f7c9ce917a8799d408d06be3"
    assert (
        provenance.invocation_id
        == "https://github.com/slsa-framework/example-package/actions/runs/13531731005/attempts/1"
    )


def test_generic_generator_envelope_with_empty_keyid_and_provenance_v0_2():
    envelope = parse_dsse(sample_bytes("attestations/slsa-github-generator-generic-v1.10.0.intoto.jsonl"))
    assert [keyid for keyid, _ in envelope.signatures] == [""]

    statement = parse_statement(envelope.payload)
    assert statement.subjects[0] == (
        "gha_generic-binary-linux-amd64-workflow_dispatch",
        {"sha256": "2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd"},
    )
    provenance = provenance_from_statement(statement)
    assert provenance.predicate_type == "https://slsa.dev/provenance/v0.2"
    assert provenance.builder_id == (
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml"
        "@refs/tags/v1.10.0"
    )
    assert provenance.build_type == "https://github.com/slsa-framework/slsa-github-generator/generic@v1"
    assert provenance.source_repository == "https://github.com/slsa-framework/example-package"
    assert provenance.source_commit == "d37a7f740ee7404914456f24dcd90e865a0509e8"
    assert provenance.invocation_id == "8373482618-1"


def test_staging_bundle_subject_does_not_match_some_other_file():
    statement = parse_statement(parse_dsse(sample_bytes("attestations/dsse-rekor-v2-staging.sigstore.json")).payload)

    assert statement.subjects[0][0] == "a.txt"
    assert subject_matches(
        statement=statement, artifact_digest="sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
    )
    assert not subject_matches(statement=statement, artifact_digest=f"sha256:{EMPTY_FILE_SHA256}")
    provenance = provenance_from_statement(statement)
    assert provenance.builder_id == "https://github.com/sigstore-conformance/rekor2-dsse-hashedrekord-regen"
    assert (provenance.source_repository, provenance.source_commit) == ("", "")


def test_message_signature_bundle_verifies_over_its_file_and_is_not_a_dsse_envelope():
    bundle = sample_bytes("attestations/bundle_v3.txt.sigstore.json")
    artifact = sample_bytes("attestations/bundle_v3.txt")
    message_signature = json.loads(bundle)["messageSignature"]
    key = certificate_public_key_from_bundle(bundle)

    assert base64.b64decode(message_signature["messageDigest"]["digest"]) == hashlib.sha256(artifact).digest()
    signature = base64.b64decode(message_signature["signature"])
    assert verify_signature(public_key=key, signature=signature, message=artifact)
    assert not verify_signature(public_key=key, signature=signature, message=artifact + b"\n")
    with pytest.raises(SignatureError, match="messageSignature"):
        parse_dsse(bundle)


def test_bundle_without_a_certificate_is_refused_clearly():
    with pytest.raises(SignatureError, match="signed with a key, not a certificate"):
        certificate_public_key_from_bundle({"verificationMaterial": {"publicKey": {"hint": "abc"}}})
    with pytest.raises(SignatureError, match="no certificate found"):
        certificate_public_key_from_bundle(b"{}")
    with pytest.raises(SignatureError, match="certificate cannot be read"):
        certificate_public_key_from_bundle({"verificationMaterial": {"certificate": {"rawBytes": "AAAA"}}})


# --- cosign -------------------------------------------------------------------------------------------------


def test_cosign_simplesigning_payload_names_the_image_digest():
    claim = parse_cosign_simplesigning(sample_bytes("attestations/cosign-simplesigning-payload.json"))

    assert claim.docker_manifest_digest == "sha256:fa93b01658e3a5a1686dc3ae55f170d8de487006fb53a28efcd12ab0710a2e5f"
    assert claim.docker_reference == "192.168.64.2:5000/test-repo-2100826901021538654/alpine"
    assert claim.annotations == {}
    digest, reference, annotations = claim  # a plain tuple too
    assert digest.startswith("sha256:")


def test_cosign_sample_signature_verifies_with_the_certificate_in_the_rekor_body():
    payload = sample_bytes("attestations/cosign-simplesigning-payload.json")
    signature = sample_bytes("attestations/cosign-simplesigning-payload.sig")
    rekor = sample_bytes("attestations/cosign-rekor-bundle-annotation.json")
    key = certificate_public_key_from_bundle(rekor)

    assert verify_cosign_blob(public_key=key, signature_b64_or_raw=signature, blob=payload)
    assert not verify_cosign_blob(
        public_key=key, signature_b64_or_raw=signature, blob=payload.replace(b"alpine", b"alpinf")
    )
    body = json.loads(base64.b64decode(json.loads(rekor)["Payload"]["body"]))
    assert body["spec"]["data"]["hash"]["value"] == hashlib.sha256(payload).hexdigest()


def test_cosign_blob_signature_as_base64_text_or_raw_bytes(p256_key, stranger_key):
    blob = b"release-7.2.4.tar.gz contents"
    raw_signature = sign(p256_key, blob)
    signature_file = base64.b64encode(raw_signature) + b"\n"

    assert verify_cosign_blob(public_key=pem_of(p256_key), signature_b64_or_raw=signature_file, blob=blob)
    assert verify_cosign_blob(public_key=pem_of(p256_key), signature_b64_or_raw=raw_signature, blob=blob)
    assert not verify_cosign_blob(public_key=pem_of(stranger_key), signature_b64_or_raw=signature_file, blob=blob)
    assert not verify_cosign_blob(public_key=pem_of(p256_key), signature_b64_or_raw=signature_file, blob=blob + b"!")


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"MEQCIEJc96e041VAhKA0=3Svf", "not standard base64"),
        (b"MEQCIEJc9", "does not decode"),
    ],
)
def test_malformed_cosign_signatures_are_refused(p256_key, signature, message):
    with pytest.raises(SignatureError, match=message):
        verify_cosign_blob(public_key=pem_of(p256_key), signature_b64_or_raw=signature, blob=b"x")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"optional": None}, "critical: expected an object"),
        ({"critical": {"type": "atomic container signature", "image": {}}}, "critical.type"),
        (
            {
                "critical": {
                    "type": "cosign container image signature",
                    "image": {"docker-manifest-digest": "sha256:ab"},
                }
            },
            "docker-manifest-digest",
        ),
        (
            {
                "critical": {
                    "type": "cosign container image signature",
                    "image": {"docker-manifest-digest": "sha256:" + "a" * 64},
                },
                "optional": "x",
            },
            "optional",
        ),
    ],
)
def test_malformed_simplesigning_payloads_are_refused(payload, message):
    with pytest.raises(SignatureError, match=message):
        parse_cosign_simplesigning(json.dumps(payload).encode())


def test_envelope_with_signatures_of_the_wrong_type_has_no_certificate():
    with pytest.raises(SignatureError, match="no certificate found"):
        certificate_public_key_from_bundle({"payloadType": IN_TOTO, "signatures": 5})
