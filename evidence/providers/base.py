"""The CI provider interface, and the safe HTTP and archive handling every adapter shares.

A Jenkins or Azure DevOps adapter is one file: a class with `name` and `fetch(build, credential)`.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Protocol

import requests

# Zip-bomb limits: an artifact archive of CI reports is small; anything beyond these is refused.
MAX_ARCHIVE_BYTES = 100 * 1024 * 1024
MAX_MEMBERS = 500
MAX_MEMBER_BYTES = 50 * 1024 * 1024
MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed per member
TIMEOUT = (10, 60)
REPORT_SUFFIXES = (".xml", ".json", ".info", ".lcov", ".sarif")


class ProviderError(Exception):
    """The provider refused or answered nonsense; retrying will not help. The message says what to fix."""


class TransientProviderError(ProviderError):
    """A timeout, connection error, 429 or 5xx: worth retrying later."""


@dataclass(frozen=True)
class FetchedFile:
    """One report fetched from CI, with the evidence type it was recognised as."""

    name: str
    type: str
    content: bytes


class Provider(Protocol):
    name: str

    def fetch(self, build, credential, secret: str) -> list[FetchedFile]:
        """Every recognised report of the build's pipeline run."""
        ...


def http_get(url: str, *, headers: dict[str, str], stream: bool = False, limit: int = MAX_ARCHIVE_BYTES) -> bytes:
    """GET with timeouts; 5xx/429/network problems are transient, other errors are not. Body capped at `limit`."""
    try:
        response = requests.get(url, headers=headers, timeout=TIMEOUT, stream=True, allow_redirects=True)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientProviderError(f"could not reach {url}: {type(exc).__name__}") from None
    with response:
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientProviderError(f"{url} answered {response.status_code}; will retry")
        if response.status_code in (401, 403):
            raise ProviderError(
                f"{url} answered {response.status_code}: check the stored credential and its permissions"
            )
        if response.status_code == 404:
            raise ProviderError(f"{url} answered 404: the pipeline or its artifacts are gone (expired?) or not visible")
        if response.status_code >= 400:
            raise ProviderError(f"{url} answered {response.status_code}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ProviderError(f"{url} is {declared} bytes, over the {limit}-byte limit")
        body = io.BytesIO()
        for chunk in response.iter_content(64 * 1024):
            body.write(chunk)
            if body.tell() > limit:
                raise ProviderError(f"{url} sent more than {limit} bytes; refused")
        return body.getvalue()


def http_json(url: str, *, headers: dict[str, str]):
    data = http_get(url, headers=headers, limit=10 * 1024 * 1024)
    try:
        return json.loads(data)
    except ValueError:
        raise ProviderError(f"{url} did not answer JSON") from None


def extract_reports(archive: bytes, *, source: str) -> list[FetchedFile]:
    """The recognised reports inside a zip, refusing zip bombs and odd paths before inflating anything."""
    try:
        bundle = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile:
        raise ProviderError(f"{source} is not a zip archive") from None
    members = [m for m in bundle.infolist() if not m.is_dir()]
    if len(members) > MAX_MEMBERS:
        raise ProviderError(f"{source} holds {len(members)} files, more than the {MAX_MEMBERS} allowed")
    declared_total = sum(m.file_size for m in members)
    if declared_total > MAX_TOTAL_BYTES:
        raise ProviderError(
            f"{source} would inflate to {declared_total} bytes, over {MAX_TOTAL_BYTES}: refused as a zip bomb"
        )
    found = []
    total = 0
    for member in members:
        if member.file_size > MAX_MEMBER_BYTES or member.file_size > MAX_RATIO * max(member.compress_size, 1) + 4096:
            raise ProviderError(
                f"{source}: {member.filename} inflates suspiciously ({member.file_size} bytes): refused as a zip bomb"
            )
        if not member.filename.lower().endswith(REPORT_SUFFIXES):
            continue  # binaries, logs, screenshots: not evidence Custody parses
        # Read at most the declared size + 1: headers can lie, the stream cannot exceed what we read.
        with bundle.open(member) as handle:
            content = handle.read(member.file_size + 1)
        if len(content) > member.file_size:
            raise ProviderError(f"{source}: {member.filename} is larger than its header says: refused")
        total += len(content)
        if total > MAX_TOTAL_BYTES:
            raise ProviderError(f"{source} inflates past {MAX_TOTAL_BYTES} bytes: refused as a zip bomb")
        evidence_type = guess_type(member.filename, content)
        if evidence_type:
            found.append(FetchedFile(name=f"{source}/{member.filename}"[:300], type=evidence_type, content=content))
    return found


def guess_type(name: str, content: bytes) -> str | None:
    """Recognise a CI report by its name and first bytes; None for anything else (binaries, logs)."""
    lower = name.lower()
    head = content[:4096]
    if lower.endswith(".sarif") or (b'"$schema"' in head and b"sarif" in head):
        return "sarif"
    if lower.endswith((".info", ".lcov")) or head.startswith((b"TN:", b"SF:")):
        return "lcov"
    if lower.endswith(".xml") or head.lstrip().startswith(b"<"):
        if b"<testsuite" in head:
            return "junit"
        if b"<report" in head and b"jacoco" in head.lower():
            return "jacoco"
        if b"<coverage" in head:
            return "cobertura"
        if b"<bom" in head and b"cyclonedx.org/schema/bom" in head:
            return "cyclonedx"
        return None
    if lower.endswith(".spdx") or head.lstrip().startswith(b"SPDXVersion:"):
        return "spdx"
    if lower.endswith(".json"):
        if b'"bomFormat"' in head:
            return "cyclonedx"
        if b'"spdxVersion"' in head:
            return "spdx"
        if b'"matches"' in head:
            return "grype"
        if b'"SchemaVersion"' in head:
            return "trivy"
        return None
    return None
