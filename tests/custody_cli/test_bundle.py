"""Evidence bundles: build, verify offline, and every way a bundle can be tampered with or weaponised."""

import base64
import hashlib
import io
import json
import struct
import time
import zipfile
import zlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from common.signing import Keyring, generate_private_key_pem
from custody_cli.bundle import (
    FORMAT,
    BundleError,
    build_bundle,
    canonical_json,
    key_id_for_public_key,
    split_pem_public_keys,
    verify_bundle,
)
from custody_cli.main import main

FILES = {
    "junit/TEST-calc.xml": b'<?xml version="1.0"?><testsuite tests="3" failures="0"/>\n',
    "sbom/bom.cdx.json": b'{"bomFormat": "CycloneDX", "specVersion": "1.6"}',
    "release.json": b'{"version": "7.2.4"}',
}
SUBJECT = {"product": "rsd", "version": "7.2.4"}
CREATED_AT = "2025-03-04T05:06:07Z"


class Signer:
    """A Custody-like Ed25519 signer for tests."""

    def __init__(self):
        self.private_key = ed25519.Ed25519PrivateKey.generate()
        self.public_pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = key_id_for_public_key(self.private_key.public_key())

    def __call__(self, data: bytes):
        return self.key_id, self.private_key.sign(data), self.public_pem


@pytest.fixture
def custody_key():
    return Signer()


@pytest.fixture
def bundle(custody_key):
    return build_bundle(files=FILES, subject=SUBJECT, created_at=CREATED_AT, sign=custody_key)


@pytest.fixture
def key_file(tmp_path, custody_key):
    path = tmp_path / "custody.pub"
    path.write_bytes(custody_key.public_pem)
    return path


def entries_of(zip_bytes: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rewrite(zip_bytes: bytes, *, replace=None, drop=(), add=None) -> bytes:
    """The same bundle with entries replaced, dropped or added (what an attacker with a zip tool can do)."""
    entries = entries_of(zip_bytes)
    entries.update(replace or {})
    for name in drop:
        del entries[name]
    entries.update(add or {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def resign(zip_bytes: bytes, *, manifest: bytes, signer: Signer, signed_bytes: bytes | None = None) -> bytes:
    key_id, signature, pem = signer(manifest if signed_bytes is None else signed_bytes)
    signature_file = canonical_json(
        {
            "algorithm": "ed25519",
            "key_id": key_id,
            "public_key_pem": pem.decode(),
            "signature": base64.b64encode(signature).decode(),
        }
    )
    return rewrite(zip_bytes, replace={"manifest.json": manifest, "manifest.sig.json": signature_file})


def run_verify(tmp_path, zip_bytes: bytes, *extra: str) -> int:
    path = tmp_path / "bundle.zip"
    path.write_bytes(zip_bytes)
    return main(["verify-bundle", str(path), *extra])


# Building ---------------------------------------------------------------------------------------------------


def test_manifest_is_canonical_json_listing_every_file_sorted(bundle, custody_key):
    entries = entries_of(bundle)
    manifest_bytes = entries["manifest.json"]
    manifest = json.loads(manifest_bytes)
    assert manifest_bytes == json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert manifest["format"] == FORMAT == "custody-evidence-bundle/1"
    assert manifest["subject"] == SUBJECT
    assert manifest["created_at"] == CREATED_AT
    assert [item["path"] for item in manifest["files"]] == ["junit/TEST-calc.xml", "release.json", "sbom/bom.cdx.json"]
    release = manifest["files"][1]
    assert release == {
        "path": "release.json",
        "sha256": hashlib.sha256(b'{"version": "7.2.4"}').hexdigest(),
        "size": 20,
    }

    signature_file = json.loads(entries["manifest.sig.json"])
    assert signature_file["algorithm"] == "ed25519"
    assert signature_file["key_id"] == custody_key.key_id
    assert signature_file["public_key_pem"] == custody_key.public_pem.decode()
    custody_key.private_key.public_key().verify(base64.b64decode(signature_file["signature"]), manifest_bytes)


def test_zip_is_deterministic_sorted_deflated_with_fixed_timestamps(custody_key):
    reversed_files = dict(reversed(list(FILES.items())))
    first = build_bundle(files=FILES, subject=SUBJECT, created_at=CREATED_AT, sign=custody_key)
    second = build_bundle(files=reversed_files, subject=SUBJECT, created_at=CREATED_AT, sign=custody_key)
    assert first == second  # Ed25519 signatures are deterministic too
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {"manifest.json", "manifest.sig.json", *FILES} == set(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "evidence/../../x",
        "/etc/passwd",
        "C:/Windows/x",
        "junit\\TEST.xml",
        "a//b",
        "./a",
        "",
        "manifest.json",
        "manifest.sig.json",
    ],
)
def test_build_refuses_unsafe_or_reserved_paths(custody_key, path):
    with pytest.raises(BundleError, match="cannot go into a bundle"):
        build_bundle(files={path: b"x"}, subject=SUBJECT, created_at=CREATED_AT, sign=custody_key)


def test_build_refuses_bad_created_at_subject_and_signer(custody_key):
    with pytest.raises(BundleError, match="created_at must be an ISO 8601 timestamp"):
        build_bundle(files=FILES, subject=SUBJECT, created_at="yesterday", sign=custody_key)
    with pytest.raises(BundleError, match="subject must hold JSON values"):
        build_bundle(files=FILES, subject={"when": object()}, created_at=CREATED_AT, sign=custody_key)
    with pytest.raises(BundleError, match="does not verify with its own public key"):
        build_bundle(
            files=FILES,
            subject=SUBJECT,
            created_at=CREATED_AT,
            sign=lambda data: (custody_key.key_id, b"\x00" * 64, custody_key.public_pem),
        )
    with pytest.raises(BundleError, match="not the SHA-256 of its public key"):
        build_bundle(
            files=FILES,
            subject=SUBJECT,
            created_at=CREATED_AT,
            sign=lambda data: ("0" * 64, custody_key.private_key.sign(data), custody_key.public_pem),
        )


def test_nul_characters_are_stripped_from_the_subject(custody_key):
    zip_bytes = build_bundle(files=FILES, subject={"version": "7.2\x00.4"}, created_at=CREATED_AT, sign=custody_key)
    assert verify_bundle(zip_bytes, trusted_public_keys=None).subject == {"version": "7.2.4"}


def test_keyring_sign_detached_is_a_valid_bundle_signer():
    keyring = Keyring(active_private_key_pem=generate_private_key_pem())
    zip_bytes = build_bundle(files=FILES, subject=SUBJECT, created_at=CREATED_AT, sign=keyring.sign_detached)
    trusted = [entry["public_key_pem"].encode() for entry in keyring.public_keys()]
    report = verify_bundle(zip_bytes, trusted_public_keys=trusted)
    assert (report.exit_code, report.key_id, report.key_trusted) == (0, keyring.key_id, True)


# Verifying --------------------------------------------------------------------------------------------------


def test_untouched_bundle_verifies_with_trusted_key(tmp_path, bundle, key_file, custody_key, capsys):
    assert run_verify(tmp_path, bundle, "--key", str(key_file)) == 0
    out = capsys.readouterr().out
    assert "bundle.zip: VERIFIED\n" in out
    assert f"signing key: {custody_key.key_id} (trusted)" in out
    assert "files checked: 3" in out
    assert "product=rsd, version=7.2.4" in out

    report = verify_bundle(tmp_path / "bundle.zip", trusted_public_keys=[custody_key.public_pem])
    assert report.exit_code == 0
    assert report.signature_valid is True
    assert report.key_trusted is True
    assert (report.changed, report.added, report.removed, report.errors) == ([], [], [], [])
    assert report.created_at.isoformat() == "2025-03-04T05:06:07+00:00"


def test_without_a_key_the_embedded_key_is_used_and_the_report_says_so(tmp_path, bundle, custody_key, capsys):
    assert run_verify(tmp_path, bundle) == 0
    out = capsys.readouterr().out
    assert "VERIFIED WITH THE KEY INSIDE THE BUNDLE" in out
    assert "not checked against a trusted key" in out
    assert "NOT checked against a trusted copy" in out
    report = verify_bundle(bundle, trusted_public_keys=None)
    assert (report.exit_code, report.key_trusted, report.key_id) == (0, None, custody_key.key_id)


def test_one_byte_changed_exits_1_naming_the_file(tmp_path, bundle, key_file, capsys):
    tampered_xml = FILES["junit/TEST-calc.xml"].replace(b'failures="0"', b'failures="1"')
    assert len(tampered_xml) == len(FILES["junit/TEST-calc.xml"])
    tampered = rewrite(bundle, replace={"junit/TEST-calc.xml": tampered_xml})
    assert run_verify(tmp_path, tampered, "--key", str(key_file)) == 1
    assert "changed: junit/TEST-calc.xml" in capsys.readouterr().out
    report = verify_bundle(tampered, trusted_public_keys=None)
    assert (report.changed, report.added, report.removed) == (["junit/TEST-calc.xml"], [], [])


def test_file_added_exits_1_naming_the_file(tmp_path, bundle, key_file, capsys):
    tampered = rewrite(bundle, add={"junit/TEST-extra.xml": b"<testsuite/>"})
    assert run_verify(tmp_path, tampered, "--key", str(key_file)) == 1
    assert "added: junit/TEST-extra.xml" in capsys.readouterr().out
    assert verify_bundle(tampered, trusted_public_keys=None).added == ["junit/TEST-extra.xml"]


def test_file_removed_exits_1_naming_the_file(tmp_path, bundle, key_file, capsys):
    tampered = rewrite(bundle, drop=["sbom/bom.cdx.json"])
    assert run_verify(tmp_path, tampered, "--key", str(key_file)) == 1
    assert "removed: sbom/bom.cdx.json" in capsys.readouterr().out
    report = verify_bundle(tampered, trusted_public_keys=None)
    assert (report.changed, report.added, report.removed) == ([], [], ["sbom/bom.cdx.json"])


def test_manifest_edited_exits_2(tmp_path, bundle, key_file, capsys):
    manifest = entries_of(bundle)["manifest.json"].replace(b'"7.2.4"', b'"7.2.5"')
    tampered = rewrite(bundle, replace={"manifest.json": manifest})
    assert run_verify(tmp_path, tampered, "--key", str(key_file)) == 2
    out = capsys.readouterr().out
    assert "SIGNATURE INVALID" in out
    assert "does not match the bytes of manifest.json" in out
    assert verify_bundle(tampered, trusted_public_keys=None).exit_code == 2  # the embedded key catches it too


def test_manifest_edited_to_hide_a_changed_file_still_exits_2(tmp_path, bundle, key_file):
    manifest = json.loads(entries_of(bundle)["manifest.json"])
    manifest["files"][1]["sha256"] = hashlib.sha256(b'{"version": "6.6.6"}').hexdigest()
    tampered = rewrite(
        bundle, replace={"manifest.json": canonical_json(manifest), "release.json": b'{"version": "6.6.6"}'}
    )
    assert run_verify(tmp_path, tampered, "--key", str(key_file)) == 2


def test_resigned_with_another_key_exits_3_when_the_trusted_key_is_given(tmp_path, bundle, key_file, custody_key):
    attacker = Signer()
    manifest = json.loads(entries_of(bundle)["manifest.json"])
    manifest["subject"]["version"] = "9.9.9"
    tampered = resign(bundle, manifest=canonical_json(manifest), signer=attacker)

    assert run_verify(tmp_path, tampered, "--key", str(key_file)) == 3
    report = verify_bundle(tampered, trusted_public_keys=[custody_key.public_pem])
    assert report.signature_valid is True  # valid under the attacker's own key...
    assert report.key_trusted is False  # ...which is not Custody's
    assert report.key_id == attacker.key_id
    assert any(f"signed by key {attacker.key_id}, which is not among the 1 trusted" in e for e in report.errors)
    # Without --key the re-signed bundle passes, which is why the report warns loudly in that case.
    assert verify_bundle(tampered, trusted_public_keys=None).exit_code == 0


def test_signature_over_other_bytes_exits_2(tmp_path, bundle, key_file, custody_key):
    manifest = entries_of(bundle)["manifest.json"]
    tampered = resign(bundle, manifest=manifest, signer=custody_key, signed_bytes=manifest + b" ")
    assert run_verify(tmp_path, tampered, "--key", str(key_file)) == 2
    report = verify_bundle(tampered, trusted_public_keys=[custody_key.public_pem])
    assert (report.signature_valid, report.key_trusted) == (False, True)


def test_signature_file_whose_key_id_lies_about_its_key_exits_2(bundle, custody_key):
    signature_file = json.loads(entries_of(bundle)["manifest.sig.json"])
    signature_file["key_id"] = "a" * 64
    tampered = rewrite(bundle, replace={"manifest.sig.json": canonical_json(signature_file)})
    report = verify_bundle(tampered, trusted_public_keys=None)
    assert report.exit_code == 2
    assert "key_id is not the SHA-256 of public_key_pem" in report.errors[0]


def test_missing_signature_exits_2(tmp_path, bundle, key_file):
    tampered = rewrite(bundle, drop=["manifest.sig.json"])
    assert run_verify(tmp_path, tampered, "--key", str(key_file)) == 2
    report = verify_bundle(tampered, trusted_public_keys=None)
    assert report.errors == ["manifest.sig.json: missing: the bundle is not signed"]


@pytest.mark.parametrize(
    ("signature_file", "message"),
    [
        (b"{", "is not valid UTF-8 JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"algorithm": "rsa"}', "algorithm is 'rsa'"),
        (b'{"algorithm": "ed25519", "key_id": 7}', "key_id must be 64 lowercase hex"),
        (b'{"algorithm": "ed25519", "key_id": "' + b"a" * 64 + b'"}', "signature must be base64"),
        (b'{"algorithm": "ed25519", "key_id": "' + b"a" * 64 + b'", "signature": "!!"}', "signature must be base64"),
    ],
)
def test_wrong_shape_signature_file_exits_2_naming_the_field(bundle, signature_file, message):
    report = verify_bundle(rewrite(bundle, replace={"manifest.sig.json": signature_file}), trusted_public_keys=None)
    assert report.exit_code == 2
    assert message in report.errors[0]
    assert report.errors[0].startswith("manifest.sig.json: ")


def test_trusted_key_file_may_hold_several_keys(tmp_path, bundle, custody_key):
    other = Signer()
    path = tmp_path / "custody.pub"
    path.write_bytes(b"# key ids on stderr\n" + other.public_pem + custody_key.public_pem)
    assert split_pem_public_keys(path.read_bytes()) == [other.public_pem.strip(), custody_key.public_pem.strip()]
    assert run_verify(tmp_path, bundle, "--key", str(path)) == 0


def test_unusable_key_file_is_a_usage_error(tmp_path, bundle, capsys):
    missing = tmp_path / "nope.pub"
    assert run_verify(tmp_path, bundle, "--key", str(missing)) == 3
    assert "cannot read it" in capsys.readouterr().err
    not_a_key = tmp_path / "readme.txt"
    not_a_key.write_text("hello")
    assert run_verify(tmp_path, bundle, "--key", str(not_a_key)) == 3
    assert "no '-----BEGIN PUBLIC KEY-----' block" in capsys.readouterr().err
    ecdsa = tmp_path / "ecdsa.pub"
    ecdsa.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert run_verify(tmp_path, bundle, "--key", str(ecdsa)) == 3
    assert "not an Ed25519 key" in capsys.readouterr().err


def test_json_output(tmp_path, bundle, key_file, capsys):
    tampered = rewrite(bundle, drop=["release.json"])
    assert run_verify(tmp_path, tampered, "--key", str(key_file), "--json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 1
    assert document["removed"] == ["release.json"]
    assert document["key_trusted"] is True
    assert document["subject"] == SUBJECT


# Unreadable and hostile bundles -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello, not a zip", b"PK\x03\x04truncated"])
def test_not_a_zip_exits_4(tmp_path, data, capsys):
    assert run_verify(tmp_path, data) == 4
    assert "NOT A READABLE BUNDLE" in capsys.readouterr().out


def test_truncated_bundle_exits_4(bundle):
    report = verify_bundle(bundle[: len(bundle) // 2], trusted_public_keys=None)
    assert report.exit_code == 4
    assert "not a zip file" in report.errors[0]


def test_missing_bundle_file_exits_4(tmp_path):
    report = verify_bundle(tmp_path / "absent.zip", trusted_public_keys=None)
    assert report.exit_code == 4
    assert "does not exist" in report.errors[0]


def test_missing_manifest_exits_4(bundle):
    report = verify_bundle(rewrite(bundle, drop=["manifest.json"]), trusted_public_keys=None)
    assert report.exit_code == 4
    assert "has no manifest.json" in report.errors[0]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format="something/2"), "format is 'something/2'"),
        (lambda m: m.pop("files"), "files must be a list"),
        (lambda m: m["files"][2].update(sha256="XYZ"), "files[2].sha256 must be 64 lowercase hex"),
        (lambda m: m["files"][0].pop("size"), "files[0].size must be a non-negative integer"),
        (lambda m: m["files"][1].update(path="../escape"), "files[1].path '../escape' is not allowed"),
        (lambda m: m["files"].append("junk"), "files[3] must be an object"),
        (lambda m: m["files"].append(dict(m["files"][0])), "files[3].path 'junit/TEST-calc.xml' is listed twice"),
    ],
)
def test_validly_signed_but_malformed_manifest_exits_4_naming_the_json_path(bundle, custody_key, edit, message):
    manifest = json.loads(entries_of(bundle)["manifest.json"])
    edit(manifest)
    report = verify_bundle(
        resign(bundle, manifest=canonical_json(manifest), signer=custody_key),
        trusted_public_keys=[custody_key.public_pem],
    )
    assert report.exit_code == 4
    assert message in report.errors[-1]


def test_manifest_that_is_not_json_exits_4(bundle):
    report = verify_bundle(rewrite(bundle, replace={"manifest.json": b'{"format": '}), trusted_public_keys=None)
    assert report.exit_code == 4
    assert "manifest.json is not valid JSON" in report.errors[-1]


@pytest.mark.parametrize("name", ["../../etc/cron.d/evil", "/etc/passwd", "..\\..\\evil.bat", "evidence/../../x"])
def test_zip_slip_entry_names_exit_4(tmp_path, bundle, name, capsys):
    tampered = rewrite(bundle, add={name: b"payload"})
    assert run_verify(tmp_path, tampered) == 4
    out = capsys.readouterr().out
    assert "is unsafe" in out
    assert repr(name) in out


def test_duplicate_entry_names_exit_4(bundle):
    buffer = io.BytesIO(bundle)
    with zipfile.ZipFile(buffer, "a") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("release.json", b'{"version": "6.6.6"}')
    report = verify_bundle(buffer.getvalue(), trusted_public_keys=None)
    assert report.exit_code == 4
    assert "appears twice" in report.errors[0]


def test_too_many_entries_exit_4(bundle):
    buffer = io.BytesIO(bundle)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_STORED) as archive:
        for index in range(10_000):
            archive.writestr(f"spam/{index}.txt", b"")
    report = verify_bundle(buffer.getvalue(), trusted_public_keys=None)
    assert report.exit_code == 4
    assert "10005 entries; bundles may hold at most 10000" in report.errors[0]


# Zip bombs, crafted by hand so the test never compresses (or writes) a gigabyte.


def _raw_zip(entries: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of deflated entries given as (name, raw deflate data, crc32, uncompressed size)."""
    body, central = b"", b""
    for name, raw, crc, size in entries:
        encoded = name.encode()
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(raw), size, len(encoded), 0)
        body += encoded + raw
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            8,
            0,
            0x21,
            crc,
            len(raw),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(body), 0)
    return body + central + end


def _deflated(data: bytes) -> tuple[bytes, int, int]:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data)


def _gigabyte_of_zeros() -> tuple[bytes, int, int]:
    # After a full flush deflate starts afresh, so each 1 MiB of zeros compresses to the same bytes.
    chunk = bytes(1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    raw = block * 1024 + compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(chunk, crc)
    return raw, crc, 1024 * len(chunk)


def test_gigabyte_of_zeros_zip_bomb_is_refused_quickly(custody_key):
    started = time.monotonic()
    bomb = _gigabyte_of_zeros()
    good = entries_of(build_bundle(files={"zeros.bin": b""}, subject=SUBJECT, created_at=CREATED_AT, sign=custody_key))
    zip_bytes = _raw_zip(
        [
            ("manifest.json", *_deflated(good["manifest.json"])),
            ("manifest.sig.json", *_deflated(good["manifest.sig.json"])),
            ("zeros.bin", *bomb),
        ]
    )
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:  # the crafted zip is well-formed
        assert archive.getinfo("zeros.bin").file_size == 1024**3
        assert archive.getinfo("zeros.bin").compress_size < 1024**3 // 900
    report = verify_bundle(zip_bytes, trusted_public_keys=[custody_key.public_pem])
    assert report.exit_code == 4
    assert "'zeros.bin' declares 1073741824 bytes" in report.errors[0]
    assert "ratio over 200:1 (a zip bomb)" in report.errors[0]
    assert time.monotonic() - started < 2


def test_total_uncompressed_size_over_two_gibibytes_is_refused():
    # Three 1 GiB entries at a harmless-looking ratio; the data is never read, so it need not be present.
    size, compressed = 1024**3, 16 * 1024**2
    entries = [(f"part{index}.bin", b"", 0, size) for index in range(3)]
    zip_bytes = bytearray(_raw_zip(entries))
    # Patch each central directory record's compressed size to 16 MiB (ratio 64:1).
    position = 0
    while (position := zip_bytes.find(b"PK\x01\x02", position)) != -1:
        struct.pack_into("<I", zip_bytes, position + 20, compressed)
        position += 4
    report = verify_bundle(bytes(zip_bytes), trusted_public_keys=None)
    assert report.exit_code == 4
    assert "more than 2147483648 bytes uncompressed (2 GiB)" in report.errors[0]


def test_small_highly_compressible_files_are_not_mistaken_for_bombs(custody_key):
    files = {"logs/blank.log": b"\n" * 500_000, "empty.txt": b""}
    zip_bytes = build_bundle(files=files, subject=SUBJECT, created_at=CREATED_AT, sign=custody_key)
    assert verify_bundle(zip_bytes, trusted_public_keys=[custody_key.public_pem]).exit_code == 0


# Real evidence files --------------------------------------------------------------------------------------


def test_real_sample_evidence_round_trips_byte_for_byte(custody_key):
    from tests.samples import sample_bytes, sample_names

    names = [name for folder in ("junit", "coverage", "vulns", "attestations") for name in sample_names(folder)]
    if not names:
        pytest.skip("the shared samples folder is not beside the repository")
    files = {name: sample_bytes(name) for name in names}
    zip_bytes = build_bundle(files=files, subject=SUBJECT, created_at=CREATED_AT, sign=custody_key)
    assert entries_of(zip_bytes)["coverage/cobertura-simplecov.xml"] == files["coverage/cobertura-simplecov.xml"]
    assert b"\r\n" in entries_of(zip_bytes)["coverage/cobertura-simplecov.xml"]  # CRLF kept: hashes cover bytes
    listed = {item["path"]: item for item in json.loads(entries_of(zip_bytes)["manifest.json"])["files"]}
    assert listed["attestations/bundle_v3.txt"]["size"] == 109
    assert (
        listed["vulns/grype-0.75-nul-chars-in-version.json"]["sha256"]
        == hashlib.sha256(files["vulns/grype-0.75-nul-chars-in-version.json"]).hexdigest()
    )
    report = verify_bundle(zip_bytes, trusted_public_keys=[custody_key.public_pem])
    assert (report.exit_code, report.files_checked) == (0, len(names))


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ("2025-03-04T05:06:07Z", "2025-03-04T05:06:07+00:00"),
        ("2025-03-04T06:06:07.123456789+01:00", "2025-03-04T05:06:07.123456+00:00"),
        ("2025-03-04T05:06:07 UTC", "2025-03-04T05:06:07+00:00"),
        ("2025-03-04T05:06:07", "2025-03-04T05:06:07+00:00"),  # naive: taken as UTC
    ],
)
def test_created_at_is_reported_in_utc(custody_key, created_at, expected):
    zip_bytes = build_bundle(files=FILES, subject=SUBJECT, created_at=created_at, sign=custody_key)
    assert json.loads(entries_of(zip_bytes)["manifest.json"])["created_at"] == created_at  # signed as given
    assert verify_bundle(zip_bytes, trusted_public_keys=None).created_at.isoformat() == expected
