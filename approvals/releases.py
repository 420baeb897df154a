"""Writes of releases (DESIGN §2, §4): assemble one from registered artifacts and change requests, change it until it
freezes, and freeze it at its first promotion request — a signed manifest and the trace baseline, never changed after.

Each write is one transaction that locks, checks state, writes and audits (STYLE.md).
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.models import RELEASE_VERSION_PATTERN, RESERVED_RELEASE_VERSIONS, Release
from changecontrol import audit
from changecontrol.models import ChangeRequest, Product, Role, User
from changecontrol.roles import has_role
from common.canonical import canonical_json, canonical_sha256
from common.errors import Conflict, InvalidState, NotPermitted, ValidationFailed
from common.keys import keyring
from evidence.models import Artifact
from traceability.baselines import trace_baseline_take

RELEASE_WRITER_ROLES = (Role.RELEASE_MANAGER,)
# /2: signed over the canonical encoding (common.canonical); /1 escaped non-ASCII characters (see manifest_bytes).
MANIFEST_FORMAT = "custody-release-manifest/2"
RELEASE_VERSION_RULE = "letters, digits, '.', '-', '_' and '+', starting with a letter or digit"


def may_manage_releases(actor: User, product: Product) -> bool:
    # CI service accounts reach here only through a token scoped to the product with releases:write.
    return actor.is_service_account or has_role(actor, product, *RELEASE_WRITER_ROLES)


def _check_release_version(version: str, product: Product) -> None:
    if version in RESERVED_RELEASE_VERSIONS:  # /products/{product}/releases/new is the form that creates a release
        raise ValidationFailed(
            "'new' cannot be a release version: its page address is the new-release form; choose another",
            errors={"version": ["'new' is reserved"]},
        )
    if re.fullmatch(RELEASE_VERSION_PATTERN, version):
        return
    refused = sorted({c for c in version if not re.fullmatch(r"[A-Za-z0-9._+\-]", c)})
    problem = f"contains {' '.join(repr(c) for c in refused)}" if refused else f"starts with {version[0]!r}"
    raise ValidationFailed(
        f"a release version may use only {RELEASE_VERSION_RULE}, because it is part of the release's URL "
        f"(/api/v1/releases/{product.key}/<version>): {version[:100]!r} {problem}",
        errors={"version": [f"use only {RELEASE_VERSION_RULE}"]},
    )


def _resolve_artifacts(product: Product, digests: list[str]) -> list[Artifact]:
    digests = list(dict.fromkeys(d.strip().lower() for d in digests))
    if not digests:
        raise ValidationFailed(
            "a release needs at least one artifact digest", errors={"artifacts": ["give one or more sha256:… digests"]}
        )
    found = {a.digest: a for a in Artifact.objects.filter(product=product, digest__in=digests)}
    unknown = [d for d in digests if d not in found]
    if unknown:
        raise ValidationFailed(
            f"these artifacts are not registered for {product.key}: {', '.join(unknown)}; "
            f"register them with POST /api/v1/products/{product.key}/artifacts first",
            errors={"artifacts": unknown},
        )
    return [found[d] for d in digests]


def _resolve_change_requests(product: Product, human_ids: list[str]) -> list[ChangeRequest]:
    import re

    pks, malformed = [], []
    for value in human_ids:
        match = re.fullmatch(r"(?:CR-)?(\d{1,18})", str(value).strip(), flags=re.IGNORECASE)
        (pks.append(int(match.group(1))) if match else malformed.append(str(value)))
    found = {cr.pk: cr for cr in ChangeRequest.objects.filter(product=product, pk__in=pks)}
    unknown = malformed + [f"CR-{pk}" for pk in pks if pk not in found]
    if unknown:
        raise ValidationFailed(
            f"these change requests do not exist in {product.key}: {', '.join(unknown)}",
            errors={"change_requests": unknown},
        )
    return [found[pk] for pk in dict.fromkeys(pks)]


@transaction.atomic
def release_create(
    *,
    product: Product,
    actor: User,
    version: str,
    artifact_digests: list[str],
    change_request_ids: list[str] = (),
    notes: str = "",
) -> Release:
    """Assemble a release from registered artifacts and the change requests it delivers."""
    if not may_manage_releases(actor, product):
        raise NotPermitted(f"only a release manager of {product.key} can create releases")
    version = version.strip()
    if not version:
        raise ValidationFailed("a release needs a version", errors={"version": ["This field is required."]})
    _check_release_version(version, product)
    artifacts = _resolve_artifacts(product, artifact_digests)
    change_requests = _resolve_change_requests(product, list(change_request_ids))
    Product.objects.select_for_update().get(pk=product.pk)  # serialise versions per product
    if Release.objects.filter(product=product, version=version).exists():
        raise Conflict(
            f"{product.key} {version} already exists; releases are immutable once promoted, so use a new version"
        )
    release = Release.objects.create(product=product, version=version, created_by=actor, notes=notes)
    release.artifacts.set(artifacts)
    release.change_requests.set(change_requests)
    audit.record(
        actor=actor,
        action="release.created",
        obj=release,
        after={
            "version": version,
            "artifacts": [a.digest for a in artifacts],
            "change_requests": [cr.human_id for cr in change_requests],
        },
    )
    return release


@transaction.atomic
def release_update(
    *,
    release: Release,
    actor: User,
    artifact_digests: list[str] | None = None,
    change_request_ids: list[str] | None = None,
) -> Release:
    """Change a release's content; refused once frozen (a frozen release is its signed manifest)."""
    release = Release.objects.select_for_update().select_related("product").get(pk=release.pk)
    # Who may act comes first: someone who may never change releases is told that, not the release's state.
    if not may_manage_releases(actor, release.product):
        raise NotPermitted(f"only a release manager of {release.product.key} can change releases")
    if release.is_frozen():
        raise InvalidState(
            f"{release} is frozen since {release.frozen_at:%Y-%m-%d %H:%M} UTC "
            "(first promotion request) and cannot change: create a new version"
        )
    before = _release_content(release)
    if artifact_digests is not None:
        release.artifacts.set(_resolve_artifacts(release.product, artifact_digests))
    if change_request_ids is not None:
        release.change_requests.set(_resolve_change_requests(release.product, change_request_ids))
    audit.record(actor=actor, action="release.updated", obj=release, before=before, after=_release_content(release))
    return release


def _release_content(release: Release) -> dict:
    return {
        "artifacts": sorted(release.artifacts.values_list("digest", flat=True)),
        "change_requests": [f"CR-{pk}" for pk in release.change_requests.order_by("pk").values_list("pk", flat=True)],
    }


def release_manifest(release: Release) -> dict[str, Any]:
    """The canonical content of a frozen release: what its baseline, signatures and packets refer to."""
    return {
        "format": MANIFEST_FORMAT,
        "product": release.product.key,
        "version": release.version,
        "artifacts": [
            {"digest": a.digest, "name": a.name, "kind": a.kind, "build": a.build.human_id, "commit": a.build.commit}
            for a in release.artifacts.select_related("build", "build__product").order_by("digest")
        ],
        "change_requests": [
            {"id": cr.human_id, "content_version": cr.content_version, "tier": cr.tier, "state": cr.state}
            for cr in release.change_requests.order_by("pk")
        ],
    }


def release_freeze(release: Release, *, actor: User) -> None:
    """Freeze at the first promotion request: sign the manifest with Custody's key and take the trace baseline."""
    manifest = release_manifest(release)
    manifest["frozen_at"] = timezone.now().isoformat()
    signed = keyring().sign(canonical_json(manifest))
    release.frozen_at = timezone.now()
    release.manifest = manifest
    release.manifest_sha256 = canonical_sha256(manifest)
    release.manifest_key_id = signed.key_id
    release.manifest_signature = signed.signature_b64
    release.save(update_fields=["frozen_at", "manifest", "manifest_sha256", "manifest_key_id", "manifest_signature"])
    audit.record(
        actor=actor,
        action="release.frozen",
        obj=release,
        after={"manifest_sha256": release.manifest_sha256, "key_id": signed.key_id},
        seal=[release],
    )
    trace_baseline_take(
        product=release.product,
        release_version=release.version,
        artifact_ids=list(release.artifacts.values_list("pk", flat=True)),
        actor=actor,
        change_request_ids=list(release.change_requests.values_list("pk", flat=True)),
    )


def manifest_bytes(release: Release) -> bytes:
    """The bytes Custody signed when the release froze (the canonical encoding of its manifest)."""
    # Manifests of format /1 (frozen by Custody 0.1) were signed over ASCII-escaped bytes; they still verify.
    legacy = release.manifest.get("format") == "custody-release-manifest/1"
    return canonical_json(release.manifest, ascii_only=legacy)
