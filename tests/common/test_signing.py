"""Custody's own Ed25519 keyring: key IDs, signing, retired keys, refusals, the development key file."""

import base64
import hashlib
import stat
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from common.signing import (
    Keyring,
    SignedBlob,
    SigningKeyError,
    generate_private_key_pem,
    key_id_for_public_pem,
    load_or_create_key_file,
)


def public_pem_of(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_key_id_is_sha256_of_der_subject_public_key_info():
    private_pem = generate_private_key_pem()
    public_key = serialization.load_pem_private_key(private_pem, password=None).public_key()
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    expected = hashlib.sha256(der).hexdigest()
    assert key_id_for_public_pem(public_pem_of(private_pem)) == expected
    assert Keyring(active_private_key_pem=private_pem).key_id == expected
    assert len(expected) == 64


def test_key_id_of_a_known_ed25519_key_is_stable():
    # RFC 8032 test vector 1: the public key bytes are fixed, so the SPKI DER and its SHA-256 are too.
    raw = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    pem = ed25519.Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = bytes.fromhex("302a300506032b6570032100") + raw  # the fixed SPKI prefix for Ed25519
    assert key_id_for_public_pem(pem) == hashlib.sha256(der).hexdigest()
    assert key_id_for_public_pem(pem.decode()) == hashlib.sha256(der).hexdigest()


def test_key_id_rule_applies_to_ecdsa_signer_keys_too():
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id_for_public_pem(pem) == hashlib.sha256(der).hexdigest()


def test_key_id_of_garbage_is_a_clear_error():
    with pytest.raises(SigningKeyError, match="not a readable PEM public key"):
        key_id_for_public_pem(b"hello")


def test_sign_then_verify_round_trip():
    keyring = Keyring(active_private_key_pem=generate_private_key_pem())
    blob = keyring.sign(b"manifest bytes")
    assert blob.key_id == keyring.key_id
    assert blob.algorithm == "ed25519"
    assert len(base64.b64decode(blob.signature_b64)) == 64
    assert keyring.verify(b"manifest bytes", blob) is True


def test_signature_is_checkable_with_plain_cryptography():
    private_pem = generate_private_key_pem()
    blob = Keyring(active_private_key_pem=private_pem).sign(b"checkpoint")
    public_key = serialization.load_pem_public_key(public_pem_of(private_pem))
    public_key.verify(base64.b64decode(blob.signature_b64), b"checkpoint")  # raises if wrong


def test_verify_refuses_other_bytes_other_keys_and_bad_fields():
    keyring = Keyring(active_private_key_pem=generate_private_key_pem())
    blob = keyring.sign(b"approved content")
    assert keyring.verify(b"approved content!", blob) is False
    assert keyring.verify(b"approved content", replace(blob, key_id="0" * 64)) is False
    assert keyring.verify(b"approved content", replace(blob, algorithm="rsa")) is False
    assert keyring.verify(b"approved content", replace(blob, signature_b64="not base64!")) is False
    assert (
        keyring.verify(b"approved content", replace(blob, signature_b64=base64.b64encode(b"x" * 64).decode())) is False
    )
    stranger = Keyring(active_private_key_pem=generate_private_key_pem())
    assert keyring.verify(b"approved content", stranger.sign(b"approved content")) is False


def test_retired_keys_still_verify_after_rotation():
    old_private = generate_private_key_pem()
    old_keyring = Keyring(active_private_key_pem=old_private)
    old_blob = old_keyring.sign(b"2024 audit checkpoint")

    new_keyring = Keyring(
        active_private_key_pem=generate_private_key_pem(), retired_public_key_pems=[public_pem_of(old_private)]
    )
    assert new_keyring.verify(b"2024 audit checkpoint", old_blob) is True
    assert new_keyring.sign(b"x").key_id == new_keyring.key_id != old_keyring.key_id

    listed = new_keyring.public_keys()
    assert [entry["status"] for entry in listed] == ["active", "retired"]
    assert [entry["key_id"] for entry in listed] == [new_keyring.key_id, old_keyring.key_id]
    assert listed[1]["public_key_pem"] == public_pem_of(old_private).decode()
    assert all(entry["algorithm"] == "ed25519" for entry in listed)
    assert key_id_for_public_pem(listed[0]["public_key_pem"]) == new_keyring.key_id


def test_retired_copy_of_the_active_key_is_listed_once_as_active():
    private_pem = generate_private_key_pem()
    keyring = Keyring(active_private_key_pem=private_pem, retired_public_key_pems=[public_pem_of(private_pem).decode()])
    assert [entry["status"] for entry in keyring.public_keys()] == ["active"]


def test_rsa_active_key_is_refused_clearly():
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SigningKeyError, match="is an RSA key; Custody signs with Ed25519 only"):
        Keyring(active_private_key_pem=rsa_pem)


def test_ecdsa_retired_key_is_refused_clearly():
    ecdsa_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SigningKeyError, match="retired public key #1 is an ECDSA key"):
        Keyring(active_private_key_pem=generate_private_key_pem(), retired_public_key_pems=[ecdsa_public])


def test_encrypted_public_and_garbage_active_keys_are_refused_clearly():
    key = ed25519.Ed25519PrivateKey.generate()
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(SigningKeyError, match="is encrypted"):
        Keyring(active_private_key_pem=encrypted)
    public_only = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SigningKeyError, match="not a readable PEM private key"):
        Keyring(active_private_key_pem=public_only)
    with pytest.raises(SigningKeyError, match="not a readable PEM private key"):
        Keyring(active_private_key_pem=b"-----BEGIN PRIVATE KEY-----\ntruncated")


def test_sign_detached_matches_the_bundle_signer_contract():
    keyring = Keyring(active_private_key_pem=generate_private_key_pem())
    key_id, signature, public_pem = keyring.sign_detached(b"manifest")
    assert key_id == keyring.key_id == key_id_for_public_pem(public_pem)
    assert keyring.verify(b"manifest", SignedBlob(key_id=key_id, signature_b64=base64.b64encode(signature).decode()))


def test_key_file_is_created_with_mode_0600_and_parents(tmp_path):
    path = tmp_path / "var" / "keys" / "custody-signing.pem"
    pem = load_or_create_key_file(path)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert path.read_bytes() == pem
    Keyring(active_private_key_pem=pem)  # a usable Ed25519 key


def test_key_file_is_reused_not_replaced(tmp_path):
    path = tmp_path / "custody-signing.pem"
    first = load_or_create_key_file(path)
    assert load_or_create_key_file(str(path)) == first


def test_existing_key_file_that_is_not_ed25519_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "custody-signing.pem"
    path.write_bytes(b"not a key")
    with pytest.raises(SigningKeyError, match="custody-signing.pem is not a readable PEM private key"):
        load_or_create_key_file(path)
