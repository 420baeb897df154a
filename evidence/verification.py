"""Evidence authenticity: DSSE envelopes with in-toto Statements, SLSA provenance, cosign signatures.

Uses `cryptography` only. Keys are Ed25519 or ECDSA P-256 (DESIGN §6). Sigstore keyless bundles are read
far enough to take the leaf certificate's public key; Fulcio chains, Rekor inclusion proofs and signed
timestamps are NOT checked here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from common.digests import is_digest
from common.safe_formats import json_type_name

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey

STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")
SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
COSIGN_IMAGE_SIGNATURE_TYPE = "cosign container image signature"
_SIGSTORE_BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle"
_DIGEST = re.compile(r"^([a-z0-9]+):([0-9a-fA-F]+)$")
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/]+={0,2}$")


class SignatureError(ValueError):
    """A key, signature, envelope or statement cannot be read; the message says what and where."""


# --- keys -------------------------------------------------------------------------------------------------


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _checked_key(key: Any) -> tuple[PublicKey, str]:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key, "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return key, "ecdsa-p256"
        raise SignatureError(
            f"ECDSA keys on curve {key.curve.name} are not accepted; use an ECDSA P-256 (secp256r1) or Ed25519 key"
        )
    if isinstance(key, rsa.RSAPublicKey):
        raise SignatureError(
            f"RSA keys ({key.key_size} bits) are not accepted; register an Ed25519 or ECDSA P-256 public key"
        )
    raise SignatureError(f"{type(key).__name__} keys are not accepted; register an Ed25519 or ECDSA P-256 public key")


def load_public_key(pem: bytes | str) -> tuple[PublicKey, str]:
    """Read a PEM public key (or the key of a PEM certificate); returns the key and "ed25519" or "ecdsa-p256"."""
    data = _as_bytes(pem).strip()
    if b"-----BEGIN" not in data:
        raise SignatureError("the public key is not PEM text (expected a '-----BEGIN PUBLIC KEY-----' block)")
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"the PEM public key cannot be read: {exc}") from None
    except UnsupportedAlgorithm as exc:
        raise SignatureError(f"the PEM public key uses an unsupported algorithm: {exc}") from None
    return _checked_key(key)


def _public_key(key: PublicKey | bytes | str) -> tuple[PublicKey, str]:
    if isinstance(key, bytes | str):
        return load_public_key(key)
    return _checked_key(key)


def key_id_for(public_key_pem: bytes | str | PublicKey) -> str:
    """The key's id: hex SHA-256 of its DER SubjectPublicKeyInfo (a key object is accepted too)."""
    key, _ = _public_key(public_key_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


# --- signatures -------------------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a DSSE signature actually signs."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def verify_signature(*, public_key: PublicKey | bytes | str, signature: bytes, message: bytes) -> bool:
    """Ed25519, or ECDSA P-256 with SHA-256 (DER signature, or the raw 64-byte r||s form)."""
    key, algorithm = _public_key(public_key)
    try:
        if algorithm == "ed25519":
            key.verify(signature, message)
            return True
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            if len(signature) != 64:
                return False
            # WebCrypto and JOSE write r||s, 32 bytes each, instead of DER.
            raw = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(raw, message, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False


def _b64decode(value: Any, path: str) -> bytes:
    """Standard base64 with padding, as DSSE and Sigstore write it; anything else is refused."""
    if not isinstance(value, str):
        raise SignatureError(f"{path}: expected a base64 string, found {json_type_name(value)}")
    if not value:
        raise SignatureError(f"{path}: is empty")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{path}: not valid standard base64 (with '=' padding)") from None


def _json_document(data: bytes | str | dict, *, what: str) -> dict:
    """A JSON object from bytes: a whole document, or the first non-empty line of a JSON Lines file."""
    if isinstance(data, dict):
        return data
    raw = _as_bytes(data)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SignatureError(f"the {what} is not UTF-8 text (byte {exc.start})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as whole_error:
        # .intoto.jsonl: one envelope per line; the first one is the attestation.
        first_line = next((line for line in text.splitlines() if line.strip()), "")
        try:
            document = json.loads(first_line)
        except json.JSONDecodeError:
            raise SignatureError(
                f"the {what} is not valid JSON: {whole_error.msg} at line {whole_error.lineno} "
                f"column {whole_error.colno}"
            ) from None
    if not isinstance(document, dict):
        raise SignatureError(f"the {what} must be a JSON object, found {json_type_name(document)}")
    return document


# --- DSSE -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DsseEnvelope:
    """A DSSE envelope: the payload bytes and their signatures as (keyid, signature bytes)."""

    payload_type: str
    payload: bytes
    signatures: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class DsseVerdict:
    """The outcome of checking an envelope against the trusted keys."""

    verified: bool
    key_id: str = ""  # the trusted key that verified a signature
    signature_index: int | None = None
    detail: str = ""


def parse_dsse(data: bytes | str) -> DsseEnvelope:
    """Read a DSSE envelope: bare JSON, the first line of an .intoto.jsonl, or a Sigstore bundle's dsseEnvelope."""
    document = _json_document(data, what="DSSE envelope")
    prefix = ""
    media_type = document.get("mediaType")
    if isinstance(media_type, str) and media_type.startswith(_SIGSTORE_BUNDLE_MEDIA_TYPE):
        if "dsseEnvelope" not in document:
            if "messageSignature" in document:
                raise SignatureError(
                    "this Sigstore bundle signs a file (messageSignature), not an attestation; "
                    "upload it as a signature of the artifact instead of as a DSSE envelope"
                )
            raise SignatureError("dsseEnvelope: the Sigstore bundle has no DSSE envelope")
        document, prefix = document["dsseEnvelope"], "dsseEnvelope."
        if not isinstance(document, dict):
            raise SignatureError(f"dsseEnvelope: expected an object, found {json_type_name(document)}")
    elif "dsseEnvelope" in document:  # a bundle whose mediaType is missing or unknown
        document, prefix = document["dsseEnvelope"], "dsseEnvelope."
        if not isinstance(document, dict):
            raise SignatureError(f"dsseEnvelope: expected an object, found {json_type_name(document)}")

    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise SignatureError(
            f"{prefix}payloadType: expected a non-empty string, found {json_type_name(payload_type)} "
            "(is this a DSSE envelope? it needs payloadType, payload and signatures)"
        )
    payload = _b64decode(document.get("payload"), f"{prefix}payload")
    signatures_value = document.get("signatures")
    if not isinstance(signatures_value, list) or not signatures_value:
        raise SignatureError(
            f"{prefix}signatures: expected a non-empty array, found {json_type_name(signatures_value)}"
        )
    signatures = []
    for index, entry in enumerate(signatures_value):
        path = f"{prefix}signatures[{index}]"
        if not isinstance(entry, dict):
            raise SignatureError(f"{path}: expected an object, found {json_type_name(entry)}")
        keyid = entry.get("keyid") or ""
        if not isinstance(keyid, str):
            raise SignatureError(f"{path}.keyid: expected a string, found {json_type_name(keyid)}")
        signatures.append((keyid, _b64decode(entry.get("sig"), f"{path}.sig")))
    return DsseEnvelope(payload_type=payload_type, payload=payload, signatures=signatures)


def verify_dsse(*, envelope: DsseEnvelope, trusted_keys: list[tuple[str, PublicKey | bytes | str]]) -> DsseVerdict:
    """Does any signature verify over PAE(payloadType, payload) with a trusted key?

    A non-empty keyid picks the trusted key with that id first. The keyid is an unsigned hint and tools
    compute it differently (in-toto, cosign), so when no trusted key has that id every key is tried:
    only the cryptographic check decides.
    """
    if not trusted_keys:
        return DsseVerdict(verified=False, detail="no trusted keys are registered, so no signature can be verified")
    message = pae(envelope.payload_type, envelope.payload)
    keys = [(key_id, _public_key(key)[0]) for key_id, key in trusted_keys]
    for index, (keyid, signature) in enumerate(envelope.signatures):
        named = [(key_id, key) for key_id, key in keys if keyid and key_id == keyid]
        for key_id, key in named or keys:
            if verify_signature(public_key=key, signature=signature, message=message):
                return DsseVerdict(
                    verified=True,
                    key_id=key_id,
                    signature_index=index,
                    detail=f"signature {index} verified with trusted key {key_id}",
                )
    return DsseVerdict(
        verified=False,
        detail=(
            f"none of the {len(envelope.signatures)} signature(s) verified with any of the "
            f"{len(keys)} trusted key(s): the envelope was signed by another key or altered after signing"
        ),
    )


# --- in-toto ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InTotoStatement:
    """An in-toto Statement: which artifacts (by digest) the predicate is about."""

    statement_type: str
    predicate_type: str
    subjects: list[tuple[str, dict[str, str]]]
    predicate: dict = field(default_factory=dict)


def parse_statement(payload: bytes | str) -> InTotoStatement:
    """Read an in-toto Statement v0.1 or v1 (a DSSE payload)."""
    document = _json_document(payload, what="in-toto statement")
    statement_type = document.get("_type")
    if statement_type not in STATEMENT_TYPES:
        raise SignatureError(
            f"_type: {statement_type!r} is not an in-toto Statement type ({', '.join(STATEMENT_TYPES)})"
        )
    predicate_type = document.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise SignatureError(f"predicateType: expected a non-empty string, found {json_type_name(predicate_type)}")
    predicate = document.get("predicate", {})
    if predicate is None:
        predicate = {}
    if not isinstance(predicate, dict):
        raise SignatureError(f"predicate: expected an object, found {json_type_name(predicate)}")
    subject_value = document.get("subject")
    if not isinstance(subject_value, list) or not subject_value:
        raise SignatureError(f"subject: expected a non-empty array, found {json_type_name(subject_value)}")
    subjects = []
    for index, subject in enumerate(subject_value):
        path = f"subject[{index}]"
        if not isinstance(subject, dict):
            raise SignatureError(f"{path}: expected an object, found {json_type_name(subject)}")
        name = subject.get("name", "")
        if not isinstance(name, str):
            raise SignatureError(f"{path}.name: expected a string, found {json_type_name(name)}")
        digest = subject.get("digest")
        if not isinstance(digest, dict) or not digest:
            raise SignatureError(
                f"{path}.digest: expected an object of algorithm to hex value, found {json_type_name(digest)}"
            )
        for algorithm, value in digest.items():
            if not isinstance(value, str):
                raise SignatureError(f"{path}.digest.{algorithm}: expected a hex string, found {json_type_name(value)}")
        subjects.append((name.replace("\x00", ""), {alg: value.lower() for alg, value in digest.items()}))
    return InTotoStatement(
        statement_type=statement_type, predicate_type=predicate_type, subjects=subjects, predicate=predicate
    )


def subject_matches(*, statement: InTotoStatement, artifact_digest: str) -> bool:
    """Is the artifact (`sha256:<hex>`) one of the statement's subjects?"""
    match = _DIGEST.match(artifact_digest.strip())
    if not match:
        raise SignatureError(f"artifact digest {artifact_digest!r} is not of the form 'sha256:<hex>'")
    algorithm, value = match.group(1), match.group(2).lower()
    return any(digest.get(algorithm) == value for _, digest in statement.subjects)


# --- SLSA provenance --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who built the artifact, from which source commit, in which run."""

    builder_id: str
    build_type: str
    source_repository: str
    source_commit: str
    invocation_id: str
    predicate_type: str


def _get(document: Any, *keys: str | int) -> Any:
    """A nested value, or None where any step is missing or of the wrong shape (provenance fields are optional)."""
    for key in keys:
        if isinstance(key, int):
            document = document[key] if isinstance(document, list) and len(document) > key else None
        else:
            document = document.get(key) if isinstance(document, dict) else None
    return document


def _text(value: Any) -> str:
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""


def _repository_of(uri: str) -> str:
    """`git+https://github.com/o/r@refs/heads/main` → `https://github.com/o/r`."""
    uri = uri.removeprefix("git+")
    scheme, separator, rest = uri.partition("://")
    if separator and "@" in rest:
        rest = rest.split("@", 1)[0]
    return f"{scheme}{separator}{rest}" if separator else uri


def _commit_of(digest: Any) -> str:
    if not isinstance(digest, dict):
        return ""
    # SLSA v1 writes gitCommit; v0.2 configSource and older v1 builders write the commit's sha1.
    return _text(digest.get("gitCommit")) or _text(digest.get("sha1"))


def provenance_from_statement(statement: InTotoStatement) -> Provenance:
    """The builder, source and run of a SLSA provenance v0.2 or v1 statement."""
    predicate = statement.predicate
    if statement.predicate_type == SLSA_PROVENANCE_V02:
        config_source = _get(predicate, "invocation", "configSource")
        return Provenance(
            builder_id=_text(_get(predicate, "builder", "id")),
            build_type=_text(predicate.get("buildType")),
            source_repository=_repository_of(_text(_get(config_source, "uri"))),
            source_commit=_commit_of(_get(config_source, "digest")),
            invocation_id=_text(_get(predicate, "metadata", "buildInvocationID")),
            predicate_type=statement.predicate_type,
        )
    if statement.predicate_type == SLSA_PROVENANCE_V1:
        definition = _get(predicate, "buildDefinition")
        first_dependency = _get(definition, "resolvedDependencies", 0)
        repository = _text(_get(definition, "externalParameters", "workflow", "repository"))
        if not repository:
            repository = _repository_of(
                _text(_get(first_dependency, "uri")) or _text(_get(definition, "externalParameters", "source", "uri"))
            )
        return Provenance(
            builder_id=_text(_get(predicate, "runDetails", "builder", "id")),
            build_type=_text(_get(definition, "buildType")),
            source_repository=repository,
            source_commit=_commit_of(_get(first_dependency, "digest"))
            or _commit_of(_get(definition, "externalParameters", "source", "digest")),
            invocation_id=_text(_get(predicate, "runDetails", "metadata", "invocationId")),
            predicate_type=statement.predicate_type,
        )
    raise SignatureError(
        f"predicateType {statement.predicate_type!r} is not SLSA provenance "
        f"(expected {SLSA_PROVENANCE_V02} or {SLSA_PROVENANCE_V1})"
    )


# --- Sigstore bundles (optional keyless extra) ------------------------------------------------------------


def _certificate_key(der_or_pem: bytes, where: str) -> PublicKey:
    try:
        if b"-----BEGIN CERTIFICATE-----" in der_or_pem:
            certificate = x509.load_pem_x509_certificate(der_or_pem)
        else:
            certificate = x509.load_der_x509_certificate(der_or_pem)
    except ValueError as exc:
        raise SignatureError(f"{where}: the certificate cannot be read: {exc}") from None
    return _checked_key(certificate.public_key())[0]


def certificate_public_key_from_bundle(bundle_json: bytes | str | dict) -> PublicKey:
    """The public key of the leaf certificate in a Sigstore bundle, a DSSE envelope, or a cosign Rekor bundle.

    Reads `verificationMaterial.certificate` (bundle v0.3), `x509CertificateChain.certificates[0]`
    (v0.2), a PEM `cert` beside a DSSE signature (slsa-github-generator), or the certificate inside
    a cosign Rekor bundle's hashedrekord body. The certificate chain is NOT checked.
    """
    document = _json_document(bundle_json, what="Sigstore bundle")
    material = document.get("verificationMaterial")
    if isinstance(material, dict):
        raw = _get(material, "certificate", "rawBytes")
        if raw is not None:
            return _certificate_key(_b64decode(raw, "verificationMaterial.certificate.rawBytes"), "certificate")
        raw = _get(material, "x509CertificateChain", "certificates", 0, "rawBytes")
        if raw is not None:
            path = "verificationMaterial.x509CertificateChain.certificates[0].rawBytes"
            return _certificate_key(_b64decode(raw, path), path)
        if "publicKey" in material:
            raise SignatureError(
                "verificationMaterial.publicKey: this bundle was signed with a key, not a certificate; "
                "verify it against the registered public key instead"
            )
    envelope = document.get("dsseEnvelope", document)
    signatures = _get(envelope, "signatures")
    for index, signature in enumerate(signatures if isinstance(signatures, list) else []):
        cert = _get(signature, "cert")
        if isinstance(cert, str) and cert.strip():
            return _certificate_key(cert.encode("utf-8"), f"signatures[{index}].cert")
    body = _get(document, "Payload", "body")
    if body is not None:
        rekor_entry = _json_document(_b64decode(body, "Payload.body"), what="Rekor entry body")
        content = _get(rekor_entry, "spec", "signature", "publicKey", "content")
        if content is None:
            raise SignatureError("Payload.body: the Rekor entry has no spec.signature.publicKey.content")
        return _certificate_key(
            _b64decode(content, "Payload.body.spec.signature.publicKey.content"), "Rekor entry certificate"
        )
    raise SignatureError(
        "no certificate found: expected verificationMaterial.certificate, "
        "x509CertificateChain, a signature 'cert', or a Rekor Payload.body"
    )


# --- cosign -----------------------------------------------------------------------------------------------


class CosignImageClaim(NamedTuple):
    """What a cosign container-image signature payload vouches for."""

    docker_manifest_digest: str
    docker_reference: str
    annotations: dict


def parse_cosign_simplesigning(payload: bytes | str) -> CosignImageClaim:
    """Read the payload cosign signs for a container image (`critical.image.docker-manifest-digest`)."""
    document = _json_document(payload, what="cosign signature payload")
    critical = document.get("critical")
    if not isinstance(critical, dict):
        raise SignatureError(f"critical: expected an object, found {json_type_name(critical)}")
    payload_type = critical.get("type")
    if not isinstance(payload_type, str) or payload_type.lower() != COSIGN_IMAGE_SIGNATURE_TYPE:
        raise SignatureError(f"critical.type: {payload_type!r} is not {COSIGN_IMAGE_SIGNATURE_TYPE!r}")
    digest = _get(critical, "image", "docker-manifest-digest")
    if not is_digest(digest):
        raise SignatureError(f"critical.image.docker-manifest-digest: expected 'sha256:<64 hex>', found {digest!r}")
    reference = _get(critical, "identity", "docker-reference")
    if reference is not None and not isinstance(reference, str):
        raise SignatureError(
            f"critical.identity.docker-reference: expected a string, found {json_type_name(reference)}"
        )
    optional = document.get("optional")
    if optional is not None and not isinstance(optional, dict):
        raise SignatureError(f"optional: expected an object or null, found {json_type_name(optional)}")
    return CosignImageClaim(
        docker_manifest_digest=digest,
        docker_reference=_text(reference),
        annotations=dict(optional or {}),
    )


def _signature_bytes(signature_b64_or_raw: bytes | str) -> bytes:
    """cosign's .sig files are base64 text; raw DER (or r||s) bytes are accepted as they are.

    Raw signatures always contain non-printable bytes (DER's INTEGER tag is 0x02), so printable text is
    taken as base64 and must decode.
    """
    data = _as_bytes(signature_b64_or_raw)
    text = data.strip()
    if not text:
        raise SignatureError("the signature is empty")
    if all(0x20 <= byte < 0x7F for byte in text):
        if not _BASE64_TEXT.match(text):
            raise SignatureError("the signature text is not standard base64 (cosign writes base64 with '=' padding)")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("the signature looks like base64 but does not decode (check its padding)") from None
    return data


def verify_cosign_blob(*, public_key: PublicKey | bytes | str, signature_b64_or_raw: bytes | str, blob: bytes) -> bool:
    """Check a `cosign sign-blob` signature (ECDSA P-256 SHA-256 over the blob, or Ed25519)."""
    return verify_signature(public_key=public_key, signature=_signature_bytes(signature_b64_or_raw), message=blob)


__all__ = [
    "CosignImageClaim",
    "DsseEnvelope",
    "DsseVerdict",
    "InTotoStatement",
    "Provenance",
    "SignatureError",
    "certificate_public_key_from_bundle",
    "key_id_for",
    "load_public_key",
    "pae",
    "parse_cosign_simplesigning",
    "parse_dsse",
    "parse_statement",
    "provenance_from_statement",
    "subject_matches",
    "verify_cosign_blob",
    "verify_dsse",
    "verify_signature",
]
