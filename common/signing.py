"""Custody's own Ed25519 signing keys: sign manifests and checkpoints, verify with active or retired keys.

Pure Python (no Django): the settings module hands this module PEM bytes; `load_or_create_key_file` is for
the development setup only, production supplies its key as a secret.

A key ID is the lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo, the same rule Custody uses for
the signer keys that products register, so one ID names one public key everywhere (API, bundles, audit).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

ALGORITHM = "ed25519"


class SigningKeyError(ValueError):
    """A signing or public key cannot be used; the message says which key and what to supply instead."""


@dataclass(frozen=True, kw_only=True)
class SignedBlob:
    """A detached Ed25519 signature and the ID of the key that made it."""

    key_id: str
    algorithm: str = ALGORITHM
    signature_b64: str


class PublicKeyRecord(TypedDict):
    """One entry of the public key list served at /api/v1/keys."""

    key_id: str
    algorithm: str
    public_key_pem: str
    status: Literal["active", "retired"]


def _as_bytes(pem: bytes | str) -> bytes:
    return pem.encode("ascii", errors="replace") if isinstance(pem, str) else bytes(pem)


def _key_kind(key: object) -> str:
    """A human name for a key type, for error messages."""
    kinds = (
        ((rsa.RSAPrivateKey, rsa.RSAPublicKey), "an RSA key"),
        ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "an ECDSA key"),
        ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "a DSA key"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "an Ed448 key"),
    )
    for types, kind in kinds:
        if isinstance(key, types):
            return kind
    return f"a {type(key).__name__} key"


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _public_pem(public_key) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(
        "ascii"
    )


def key_id_for_public_key(public_key) -> str:
    """The key ID: hex SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(_public_der(public_key)).hexdigest()


def _load_public_key(pem: bytes | str, *, label: str):
    try:
        return serialization.load_pem_public_key(_as_bytes(pem))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(
            f"{label} is not a readable PEM public key (expected '-----BEGIN PUBLIC KEY-----'): {exc}"
        ) from None


def key_id_for_public_pem(pem: bytes | str) -> str:
    """The key ID of any PEM public key (Ed25519 or ECDSA, as products register them)."""
    return key_id_for_public_key(_load_public_key(pem, label="the public key"))


def _load_ed25519_private_key(pem: bytes | str, *, label: str) -> ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_as_bytes(pem), password=None)
    except TypeError:
        # cryptography raises TypeError when the PEM is encrypted and no password was given.
        raise SigningKeyError(
            f"{label} is encrypted; supply an unencrypted PKCS#8 PEM Ed25519 key (keep it in a secret store)"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(
            f"{label} is not a readable PEM private key (expected '-----BEGIN PRIVATE KEY-----'): {exc}"
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SigningKeyError(
            f"{label} is {_key_kind(key)}; Custody signs with Ed25519 only "
            "(make one with `openssl genpkey -algorithm ed25519`)"
        )
    return key


def generate_private_key_pem() -> bytes:
    """A new Ed25519 private key as unencrypted PKCS#8 PEM."""
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_or_create_key_file(path: str | os.PathLike[str]) -> bytes:
    """The PEM in `path`, creating a new Ed25519 key there (mode 0600, parent dirs 0700) if it is missing."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = generate_private_key_pem()
        try:
            # O_EXCL: two processes starting together must not overwrite each other's fresh key.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)  # the umask may only narrow it, but be explicit
                handle.write(pem)
            return pem
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key file {path}: {exc.strerror}") from None
    _load_ed25519_private_key(pem, label=f"the signing key file {path}")
    return pem


class Keyring:
    """Custody's active Ed25519 signing key plus the retired public keys that still verify old signatures."""

    def __init__(self, *, active_private_key_pem: bytes | str, retired_public_key_pems: Iterable[bytes | str] = ()):
        self._private_key = _load_ed25519_private_key(active_private_key_pem, label="the active signing key")
        active_public = self._private_key.public_key()
        self.key_id = key_id_for_public_key(active_public)
        self._public_keys: dict[str, tuple[ed25519.Ed25519PublicKey, str]] = {self.key_id: (active_public, "active")}
        for index, pem in enumerate(retired_public_key_pems):
            label = f"retired public key #{index + 1}"
            public_key = _load_public_key(pem, label=label)
            if not isinstance(public_key, ed25519.Ed25519PublicKey):
                raise SigningKeyError(f"{label} is {_key_kind(public_key)}; Custody's keys are Ed25519 only")
            # A retired copy of the active key stays active: rotation lists may overlap for a while.
            self._public_keys.setdefault(key_id_for_public_key(public_key), (public_key, "retired"))

    def sign(self, data: bytes) -> SignedBlob:
        """Sign `data` with the active key."""
        signature = self._private_key.sign(bytes(data))
        return SignedBlob(key_id=self.key_id, signature_b64=base64.b64encode(signature).decode("ascii"))

    def sign_detached(self, data: bytes) -> tuple[str, bytes, bytes]:
        """Sign for `custody_cli.bundle.build_bundle`: (key ID, raw signature, active public key PEM)."""
        return self.key_id, self._private_key.sign(bytes(data)), self.active_public_key_pem.encode("ascii")

    @property
    def active_public_key_pem(self) -> str:
        return _public_pem(self._private_key.public_key())

    def verify(self, data: bytes, signed_blob: SignedBlob) -> bool:
        """True when the signature is valid under the named active or retired key; False for anything else."""
        if signed_blob.algorithm != ALGORITHM:
            return False
        known = self._public_keys.get(signed_blob.key_id)
        if known is None:
            return False
        try:
            signature = base64.b64decode(signed_blob.signature_b64, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return False
        try:
            known[0].verify(signature, bytes(data))
        except InvalidSignature:
            return False
        return True

    def public_keys(self) -> list[PublicKeyRecord]:
        """Every public key, active first, as served at /api/v1/keys."""
        return [
            PublicKeyRecord(key_id=key_id, algorithm=ALGORITHM, public_key_pem=_public_pem(public_key), status=status)
            for key_id, (public_key, status) in self._public_keys.items()
        ]


__all__ = [
    "ALGORITHM",
    "Keyring",
    "PublicKeyRecord",
    "SignedBlob",
    "SigningKeyError",
    "generate_private_key_pem",
    "key_id_for_public_key",
    "key_id_for_public_pem",
    "load_or_create_key_file",
]
