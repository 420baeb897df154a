"""Custody evidence bundles: build a signed, reproducible zip, and verify one offline (no server, no database).

A bundle is a zip holding:

- ``manifest.json``: canonical JSON (UTF-8, sorted keys, no spaces) ``{"format": "custody-evidence-bundle/1",
  "subject": {...}, "created_at": "...", "files": [{"path", "sha256", "size"}, ...]}``, files sorted by path,
  listing every entry except the two manifest files;
- ``manifest.sig.json``: ``{"key_id", "algorithm": "ed25519", "signature", "public_key_pem"}``, where
  ``signature`` is base64 of the Ed25519 signature over the exact bytes of ``manifest.json`` and ``key_id``
  is the hex SHA-256 of the signer's DER SubjectPublicKeyInfo;
- every evidence file, at the path the manifest names.

Exit codes of ``verify_bundle`` (``BundleReport.exit_code``) and of ``custody verify-bundle``, worst first:

- 4 not a readable bundle (not a zip, unsafe entry names, zip bomb, missing or malformed manifest.json);
- 2 the manifest signature is invalid or missing;
- 3 the signature is valid but made by a key that is not among the trusted keys given (``--key``);
- 1 files were changed, added or removed after signing;
- 0 verified (and, when trusted keys were given, signed by one of them).

With no trusted keys, the public key embedded in manifest.sig.json is used and the report says plainly that
the key was not checked against a trusted copy: anyone can re-sign an edited bundle with a key of their own.

Standard library and `cryptography` only, so auditors can run it anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from common.canonical import canonical_json
from common.times import parse_timestamp

FORMAT = "custody-evidence-bundle/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig.json"
ALGORITHM = "ed25519"

EXIT_VERIFIED = 0
EXIT_FILES_DIFFER = 1
EXIT_SIGNATURE_INVALID = 2
EXIT_KEY_UNTRUSTED = 3
EXIT_UNREADABLE = 4

MAX_ENTRIES = 10_000
MAX_TOTAL_UNCOMPRESSED_BYTES = 2 * 1024**3
MAX_COMPRESSION_RATIO = 200
# Below this an entry cannot hurt anyone, and tiny repetitive files (an empty JSON array padded with
# newlines) legitimately compress past 200:1.
RATIO_CHECK_FLOOR_BYTES = 1024 * 1024
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_SIGNATURE_FILE_BYTES = 1024 * 1024
_READ_CHUNK_BYTES = 1024 * 1024
# 1980-01-01 is the earliest date a zip can hold: fixed so the same inputs give the same bytes.
_FIXED_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_DRIVE_LETTER = re.compile(r"[A-Za-z]:")
_PEM_PUBLIC_KEY = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)

Signer = Callable[[bytes], tuple[str, bytes, bytes | str]]


class BundleError(ValueError):
    """A bundle cannot be built, or a trusted key given for verifying one cannot be used; the message says why."""


class _Unreadable(Exception):
    """Internal: the bundle is not a readable Custody bundle (exit code 4)."""


@dataclass(kw_only=True)
class BundleReport:
    """What verifying a bundle found; `exit_code` is the verdict (see the module docstring)."""

    exit_code: int = EXIT_UNREADABLE
    signature_valid: bool = False
    key_id: str = ""
    key_trusted: bool | None = None
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    subject: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    files_checked: int = 0

    @property
    def verified(self) -> bool:
        return self.exit_code == EXIT_VERIFIED

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (for `--json` and the web app)."""
        return {
            "exit_code": self.exit_code,
            "verified": self.verified,
            "signature_valid": self.signature_valid,
            "key_id": self.key_id,
            "key_trusted": self.key_trusted,
            "changed": list(self.changed),
            "added": list(self.added),
            "removed": list(self.removed),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "subject": self.subject,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "files_checked": self.files_checked,
        }


# Shared helpers -------------------------------------------------------------------------------------------


def _strip_nul(value: Any) -> Any:
    """The same value with U+0000 removed from every string (PostgreSQL text columns refuse it)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(key): _strip_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strip_nul(item) for item in value]
    return value


def key_id_for_public_key(public_key) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo (the rule Custody uses for every public key)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def split_pem_public_keys(text: bytes | str) -> list[bytes]:
    """Every PEM public key block in a file (as `custody keys` writes several into one file)."""
    data = text.encode("ascii", errors="replace") if isinstance(text, str) else bytes(text)
    return _PEM_PUBLIC_KEY.findall(data)


def _path_problem(path: str) -> str | None:
    """Why `path` is unsafe as a bundle member name, or None when it is fine."""
    if not path:
        return "the name is empty"
    if "\x00" in path:
        return "the name contains a NUL character"
    if "\\" in path:
        return "the name contains a backslash (use '/' between folders)"
    if path.startswith("/") or _DRIVE_LETTER.match(path):
        return "the name is an absolute path"
    parts = path.split("/")
    if ".." in parts:
        return "the name contains '..' (it would escape the folder it is extracted into)"
    if any(part in ("", ".") for part in parts):
        return "the name has an empty or '.' folder component"
    return None


# Building -------------------------------------------------------------------------------------------------


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever machine builds it, so the bytes do not depend on the host
    info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
    return info


def build_bundle(*, files: dict[str, bytes], subject: dict, created_at: str, sign: Signer) -> bytes:
    """A signed, reproducible evidence bundle (zip bytes); `sign(manifest_bytes)` gives (key_id, signature, pem)."""
    if not isinstance(files, dict):
        raise BundleError(f"files must be a dict of path -> bytes, not {type(files).__name__}")
    if not isinstance(subject, dict):
        raise BundleError(f"subject must be a dict (e.g. product and version), not {type(subject).__name__}")
    if not isinstance(created_at, str) or parse_timestamp(created_at) is None:
        raise BundleError(f"created_at must be an ISO 8601 timestamp such as 2025-01-31T12:00:00Z, not {created_at!r}")

    listed = []
    for path, data in files.items():
        if not isinstance(path, str):
            raise BundleError(f"file name {path!r} must be a string")
        problem = _path_problem(path)
        if problem:
            raise BundleError(f"file {path!r} cannot go into a bundle: {problem}")
        if path in (MANIFEST_NAME, SIGNATURE_NAME):
            raise BundleError(f"file {path!r} cannot go into a bundle: the name is reserved for the bundle's manifest")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise BundleError(f"file {path!r} must be bytes, not {type(data).__name__}")
        data = bytes(data)
        listed.append({"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    listed.sort(key=lambda item: item["path"])

    manifest = {"format": FORMAT, "subject": _strip_nul(subject), "created_at": created_at, "files": listed}
    try:
        manifest_bytes = canonical_json(manifest)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"subject must hold JSON values only (strings, numbers, lists, dicts): {exc}") from None

    signature_file = _signature_file(manifest_bytes=manifest_bytes, signed=sign(manifest_bytes))
    entries = {MANIFEST_NAME: manifest_bytes, SIGNATURE_NAME: signature_file}
    entries.update((path, bytes(data)) for path, data in files.items())

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            archive.writestr(_zip_info(name), entries[name], compresslevel=9)
    return buffer.getvalue()


def _signature_file(*, manifest_bytes: bytes, signed: Any) -> bytes:
    """manifest.sig.json, after checking the signer's answer so a misconfigured key fails here, not at an auditor."""
    try:
        key_id, signature, public_key_pem = signed
    except (TypeError, ValueError):
        raise BundleError("sign() must return (key_id, signature_bytes, public_key_pem)") from None
    pem_bytes = public_key_pem.encode("ascii") if isinstance(public_key_pem, str) else bytes(public_key_pem)
    try:
        public_key = serialization.load_pem_public_key(pem_bytes)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BundleError(f"sign() returned a public key that is not a readable PEM public key: {exc}") from None
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise BundleError("sign() returned a public key that is not Ed25519; bundles are signed with Ed25519")
    if key_id != key_id_for_public_key(public_key):
        raise BundleError(f"sign() returned key_id {key_id!r}, which is not the SHA-256 of its public key")
    try:
        public_key.verify(bytes(signature), manifest_bytes)
    except (InvalidSignature, TypeError):
        raise BundleError("sign() returned a signature that does not verify with its own public key") from None
    return canonical_json(
        {
            "algorithm": ALGORITHM,
            "key_id": key_id,
            "public_key_pem": pem_bytes.decode("ascii"),
            "signature": base64.b64encode(bytes(signature)).decode("ascii"),
        }
    )


# Verifying ------------------------------------------------------------------------------------------------


def load_trusted_keys(pems: Iterable[bytes | str]) -> dict[str, ed25519.Ed25519PublicKey]:
    trusted = {}
    for index, pem in enumerate(pems):
        data = pem.encode("ascii", errors="replace") if isinstance(pem, str) else bytes(pem)
        try:
            public_key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise BundleError(f"trusted key #{index + 1} is not a readable PEM public key: {exc}") from None
        if not isinstance(public_key, ed25519.Ed25519PublicKey):
            raise BundleError(f"trusted key #{index + 1} is not an Ed25519 key; Custody signs bundles with Ed25519")
        trusted[key_id_for_public_key(public_key)] = public_key
    return trusted


def _check_entries(entries: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """The member files by name, after refusing unsafe names, encryption and zip-bomb shapes up front."""
    if len(entries) > MAX_ENTRIES:
        raise _Unreadable(f"the zip has {len(entries)} entries; bundles may hold at most {MAX_ENTRIES}")
    declared_total = 0
    members: dict[str, zipfile.ZipInfo] = {}
    for info in entries:
        name = info.filename
        if name.endswith("/") and info.file_size == 0:
            name = name.rstrip("/")  # a folder entry, as some zip tools add: check its name, keep no content
            is_folder = True
        else:
            is_folder = False
        problem = _path_problem(name)
        if problem:
            raise _Unreadable(f"zip entry {_strip_nul(info.filename)!r} is unsafe: {problem}")
        if is_folder:
            continue
        if name in members:
            raise _Unreadable(f"zip entry {name!r} appears twice; a bundle names each file once")
        if info.flag_bits & 0x1:
            raise _Unreadable(f"zip entry {name!r} is encrypted; bundles are never encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Unreadable(f"zip entry {name!r} uses compression method {info.compress_type}; expected deflate")
        _check_ratio(name=name, produced=info.file_size, compressed=info.compress_size, declared=True)
        declared_total += info.file_size
        if declared_total > MAX_TOTAL_UNCOMPRESSED_BYTES:
            raise _Unreadable(
                f"the zip declares more than {MAX_TOTAL_UNCOMPRESSED_BYTES} bytes uncompressed (2 GiB); refused"
            )
        members[name] = info
    return members


def _check_ratio(*, name: str, produced: int, compressed: int, declared: bool) -> None:
    if produced <= RATIO_CHECK_FLOOR_BYTES:
        return
    if produced > MAX_COMPRESSION_RATIO * max(compressed, 1):
        how = "declares" if declared else "expands to"
        raise _Unreadable(
            f"zip entry {name!r} {how} {produced} bytes from {compressed} compressed, a ratio over "
            f"{MAX_COMPRESSION_RATIO}:1 (a zip bomb); refused"
        )


class _Budget:
    """Uncompressed bytes read so far across the whole bundle, counted as they stream (headers can lie)."""

    def __init__(self):
        self.used = 0

    def take(self, count: int) -> None:
        self.used += count
        if self.used > MAX_TOTAL_UNCOMPRESSED_BYTES:
            raise _Unreadable(f"the zip expands to more than {MAX_TOTAL_UNCOMPRESSED_BYTES} bytes (2 GiB); refused")


def _stream(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, budget: _Budget, limit: int | None = None):
    """Yield the entry's bytes in chunks, enforcing the ratio, total and optional size limits as they grow."""
    produced = 0
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(_READ_CHUNK_BYTES):
                produced += len(chunk)
                if limit is not None and produced > limit:
                    raise _Unreadable(f"{info.filename} is larger than {limit} bytes; refused")
                budget.take(len(chunk))
                _check_ratio(name=info.filename, produced=produced, compressed=info.compress_size, declared=False)
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise _Unreadable(f"zip entry {info.filename!r} cannot be read: {exc}") from None


def _read_small(archive, info, *, budget: _Budget, limit: int) -> bytes:
    return b"".join(_stream(archive, info, budget=budget, limit=limit))


def _digest(archive, info, *, budget: _Budget) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    for chunk in _stream(archive, info, budget=budget):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def _parse_manifest(data: bytes) -> dict[str, Any]:
    """The manifest, with each problem named by its JSON path."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"{MANIFEST_NAME} is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise _Unreadable(f"{MANIFEST_NAME} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    if not isinstance(manifest, dict):
        raise _Unreadable(f"{MANIFEST_NAME} must be a JSON object, not {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        raise _Unreadable(f"{MANIFEST_NAME}: format is {manifest.get('format')!r}; expected {FORMAT!r}")
    if not isinstance(manifest.get("subject"), dict):
        raise _Unreadable(f"{MANIFEST_NAME}: subject must be an object")
    if not isinstance(manifest.get("created_at"), str):
        raise _Unreadable(f"{MANIFEST_NAME}: created_at must be a string")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise _Unreadable(f"{MANIFEST_NAME}: files must be a list")
    seen = set()
    for index, item in enumerate(files):
        where = f"{MANIFEST_NAME}: files[{index}]"
        if not isinstance(item, dict):
            raise _Unreadable(f"{where} must be an object with path, sha256 and size")
        path, sha256, size = item.get("path"), item.get("sha256"), item.get("size")
        if not isinstance(path, str):
            raise _Unreadable(f"{where}.path must be a string")
        problem = _path_problem(path)
        if problem or path in (MANIFEST_NAME, SIGNATURE_NAME):
            raise _Unreadable(f"{where}.path {_strip_nul(path)!r} is not allowed: {problem or 'reserved name'}")
        if path in seen:
            raise _Unreadable(f"{where}.path {path!r} is listed twice")
        seen.add(path)
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
            raise _Unreadable(f"{where}.sha256 must be 64 lowercase hex characters")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _Unreadable(f"{where}.size must be a non-negative integer")
    return manifest


def _check_signature(
    *, report: BundleReport, manifest_bytes: bytes, signature_bytes: bytes | None, trusted: dict | None
) -> None:
    """Fill signature_valid, key_id and key_trusted; every reason for a bad signature goes into errors."""

    def invalid(message: str) -> None:
        report.errors.append(f"{SIGNATURE_NAME}: {message}")

    if signature_bytes is None:
        invalid("missing: the bundle is not signed")
        return
    try:
        document = json.loads(signature_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        invalid("is not valid UTF-8 JSON")
        return
    if not isinstance(document, dict):
        invalid("must be a JSON object")
        return
    if document.get("algorithm") != ALGORITHM:
        invalid(f"algorithm is {document.get('algorithm')!r}; expected {ALGORITHM!r}")
        return
    claimed_key_id = document.get("key_id")
    if not isinstance(claimed_key_id, str) or not _SHA256_HEX.fullmatch(claimed_key_id):
        invalid("key_id must be 64 lowercase hex characters")
        return
    report.key_id = claimed_key_id
    encoded = document.get("signature")
    try:
        signature = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
    except (binascii.Error, ValueError):
        signature = None
    if not signature:
        invalid("signature must be base64 text")
        return

    embedded = None
    pem = document.get("public_key_pem")
    if pem is not None:
        try:
            embedded = serialization.load_pem_public_key(pem.encode("ascii")) if isinstance(pem, str) else None
        except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
            embedded = None
        if not isinstance(embedded, ed25519.Ed25519PublicKey):
            invalid("public_key_pem is not a PEM Ed25519 public key")
            return
        if key_id_for_public_key(embedded) != claimed_key_id:
            invalid("key_id is not the SHA-256 of public_key_pem (the signature file was tampered with)")
            return

    if trusted is None:
        report.warnings.append(
            "the signing key was NOT checked against a trusted copy: the key embedded in the bundle was used, "
            "and anyone can re-sign an edited bundle with a key of their own; pass --key with Custody's public "
            "key (from `custody keys` or /api/v1/keys) to check it"
        )
        verifier = embedded
    else:
        report.key_trusted = claimed_key_id in trusted
        verifier = trusted.get(claimed_key_id, embedded)
        if not report.key_trusted:
            report.errors.append(
                f"signed by key {claimed_key_id}, which is not among the {len(trusted)} trusted key(s) given"
            )
    if verifier is None:
        invalid("has no public_key_pem and its key_id matches no trusted key, so the signature cannot be checked")
        return
    try:
        verifier.verify(signature, manifest_bytes)
    except InvalidSignature:
        invalid(f"the signature does not match the bytes of {MANIFEST_NAME} (the manifest or signature was altered)")
        return
    report.signature_valid = True


def _open(bundle) -> zipfile.ZipFile:
    if isinstance(bundle, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(bundle))
    elif isinstance(bundle, str | os.PathLike):
        source = os.fspath(bundle)
    else:
        source = bundle  # an open binary file
    try:
        return zipfile.ZipFile(source)
    except FileNotFoundError:
        raise _Unreadable(f"{bundle} does not exist") from None
    except IsADirectoryError:
        raise _Unreadable(f"{bundle} is a folder, not a bundle zip") from None
    except OSError as exc:
        raise _Unreadable(f"cannot open the bundle: {exc.strerror or exc}") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise _Unreadable(f"not a zip file ({exc})") from None


def verify_bundle(bundle, *, trusted_public_keys: list[bytes] | None) -> BundleReport:
    """Check a bundle (zip bytes, a path or a binary file) offline; see the module docstring for exit codes.

    `trusted_public_keys=None` means "not checked against a trusted copy"; an empty list trusts no key.
    Raises BundleError only when a trusted key itself is unusable.
    """
    trusted = None if trusted_public_keys is None else load_trusted_keys(trusted_public_keys)
    report = BundleReport()
    try:
        with _open(bundle) as archive:
            _verify_archive(archive=archive, report=report, trusted=trusted)
    except _Unreadable as exc:
        report.errors.append(_strip_nul(str(exc)))
        report.exit_code = EXIT_UNREADABLE
        return report
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        report.errors.append(f"not a readable zip: {exc}")
        report.exit_code = EXIT_UNREADABLE
        return report

    if not report.signature_valid:
        report.exit_code = EXIT_SIGNATURE_INVALID
    elif report.key_trusted is False:
        report.exit_code = EXIT_KEY_UNTRUSTED
    elif report.changed or report.added or report.removed:
        report.exit_code = EXIT_FILES_DIFFER
    else:
        report.exit_code = EXIT_VERIFIED
    return report


def _verify_archive(*, archive: zipfile.ZipFile, report: BundleReport, trusted: dict | None) -> None:
    # 1. Refuse unsafe shapes before decompressing anything.
    members = _check_entries(archive.infolist())
    budget = _Budget()
    # 2. Read the manifest and its signature (both small), and check the signature over the exact bytes.
    if MANIFEST_NAME not in members:
        raise _Unreadable(f"the zip has no {MANIFEST_NAME}; it is not a Custody evidence bundle")
    manifest_bytes = _read_small(archive, members.pop(MANIFEST_NAME), budget=budget, limit=MAX_MANIFEST_BYTES)
    signature_info = members.pop(SIGNATURE_NAME, None)
    signature_bytes = (
        None
        if signature_info is None
        else _read_small(archive, signature_info, budget=budget, limit=MAX_SIGNATURE_FILE_BYTES)
    )
    _check_signature(report=report, manifest_bytes=manifest_bytes, signature_bytes=signature_bytes, trusted=trusted)
    # 3. Parse the manifest; a malformed one makes the bundle unreadable whatever its signature says.
    manifest = _parse_manifest(manifest_bytes)
    report.subject = _strip_nul(manifest["subject"])
    report.created_at = parse_timestamp(manifest["created_at"])
    # 4. Hash every member as it streams and compare with the manifest.
    expected = {item["path"]: (item["sha256"], item["size"]) for item in manifest["files"]}
    for name in sorted(members):
        if name not in expected:
            report.added.append(name)
            continue
        digest, size = _digest(archive, members[name], budget=budget)
        report.files_checked += 1
        if (digest, size) != expected[name]:
            report.changed.append(name)
    report.removed = sorted(path for path in expected if path not in members)


__all__ = [
    "EXIT_FILES_DIFFER",
    "EXIT_KEY_UNTRUSTED",
    "EXIT_SIGNATURE_INVALID",
    "EXIT_UNREADABLE",
    "EXIT_VERIFIED",
    "FORMAT",
    "BundleError",
    "BundleReport",
    "build_bundle",
    "canonical_json",
    "key_id_for_public_key",
    "split_pem_public_keys",
    "verify_bundle",
]
