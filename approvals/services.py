"""Writes of the approvals app: releases, promotions, their signatures, and the status answer.

Each write is one transaction that locks, checks state, writes and audits (STYLE.md). The status answer is
computed by `promotion_status` from the release's facts and the pure `gates.decide`, and stored as a
Decision whenever it changes.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import gates, selectors
from approvals.models import Decision, Promotion, Release
from changecontrol import audit, esign
from changecontrol.models import ChangeRequest, Environment, PolicyVersion, Product, Role, Signature, User
from changecontrol.roles import has_role, roles_of
from changecontrol.services import active_policy
from common.errors import Conflict, InvalidState, NotFound, NotPermitted, ValidationFailed
from evidence.models import Artifact, Build, BuildCommit
from traceability.services import trace_baseline_take

RELEASE_WRITER_ROLES = (Role.RELEASE_MANAGER,)
REVIEWER_ROLES = (Role.QUALITY, Role.SECURITY, Role.PRODUCT)
# A version is one path segment of /api/v1/releases/{product}/{version} and of the release page's URL, so it
# holds only characters that need no escaping there: semver (7.2.4, 1.0.0-rc.1, 1.0.0+build.5) and calendar
# versions (2025.03.1) fit; '/' would split the segment, and a leading '.' could make it '.' or '..'.
RELEASE_VERSION_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+\-]*"
RELEASE_VERSION_RULE = "letters, digits, '.', '-', '_' and '+', starting with a letter or digit"


def _may_manage_releases(actor: User, product: Product) -> bool:
    # CI service accounts reach here only through a token scoped to the product with releases:write.
    return actor.is_service_account or has_role(actor, product, *RELEASE_WRITER_ROLES)


# ---------------------------------------------------------------- releases


def _check_release_version(version: str, product: Product) -> None:
    if version == "new":  # /products/{product}/releases/new is the form that creates a release
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
    if not _may_manage_releases(actor, product):
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
    if not _may_manage_releases(actor, release.product):
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
        "format": "custody-release-manifest/1",
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


def _release_freeze(release: Release, *, actor: User) -> None:
    """Freeze at the first promotion request: sign the manifest with Custody's key and take the trace baseline."""
    from common.keys import keyring

    manifest = release_manifest(release)
    manifest["frozen_at"] = timezone.now().isoformat()
    encoded = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    signed = keyring().sign(encoded)
    release.frozen_at = timezone.now()
    release.manifest = manifest
    release.manifest_sha256 = selectors.canonical_sha256(manifest)
    release.manifest_key_id = signed.key_id
    release.manifest_signature = signed.signature_b64
    release.save(update_fields=["frozen_at", "manifest", "manifest_sha256", "manifest_key_id", "manifest_signature"])
    audit.record(
        actor=actor,
        action="release.frozen",
        obj=release,
        after={"manifest_sha256": release.manifest_sha256, "key_id": signed.key_id},
    )
    trace_baseline_take(
        product=release.product,
        release_version=release.version,
        artifact_ids=list(release.artifacts.values_list("pk", flat=True)),
        actor=actor,
    )


def manifest_bytes(release: Release) -> bytes:
    return json.dumps(release.manifest, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------- promotions


def _tier_of(release: Release, policy: PolicyVersion) -> str:
    """The highest tier among the release's CRs; with none, the least risky tier (the CR gate reports it)."""
    document = policy.document
    tiers = [t for t in release.change_requests.values_list("tier", flat=True) if t]
    if tiers:
        return document.highest_tier(tiers)
    return document.risk.tiers[-1].tier


def promotion_request(*, release: Release, environment_key: str, actor: User) -> Promotion:
    try:
        return _promotion_request(release=release, environment_key=environment_key, actor=actor)
    except IntegrityError:
        # The partial unique constraint caught a racing request that passed the check at the same moment.
        raise Conflict(f"a promotion of {release} to {environment_key} is already open") from None


@transaction.atomic
def _promotion_request(*, release: Release, environment_key: str, actor: User) -> Promotion:
    # 1. Lock the release: two requests for it queue here, and freezing happens once.
    release = Release.objects.select_for_update().select_related("product").get(pk=release.pk)
    product = release.product
    if not _may_manage_releases(actor, product):
        raise NotPermitted(f"only a release manager of {product.key} can request promotions")
    environment = Environment.objects.filter(product=product, key=environment_key).first()
    if environment is None:
        known = ", ".join(product.environments.values_list("key", flat=True))
        raise ValidationFailed(f"{product.key} has no environment {environment_key!r} (environments: {known})")
    policy = active_policy(product)
    if policy is None:
        raise InvalidState(f"{product.key} has no active policy, so no promotion can be evaluated")
    try:
        policy.document.environment(environment_key)
    except LookupError as error:
        raise ValidationFailed(str(error)) from None
    # 2. One open promotion per release and environment.
    open_one = Promotion.objects.filter(
        release=release, environment=environment, state__in=Promotion.OPEN_STATES
    ).first()
    if open_one is not None:
        raise Conflict(
            f"{open_one.human_id} already promotes {release} to "
            f"{environment_key} and is {open_one.get_state_display().lower()}"
        )
    # 3. Freeze at the first request.
    if not release.is_frozen():
        _release_freeze(release, actor=actor)
    promotion = Promotion.objects.create(
        release=release, environment=environment, requester=actor, policy_version=policy, tier=_tier_of(release, policy)
    )
    audit.record(
        actor=actor,
        action="promotion.requested",
        obj=promotion,
        after={
            "release": release.version,
            "environment": environment_key,
            "tier": promotion.tier,
            "policy_version": policy.version,
        },
    )
    # 4. Gates are evaluated now; the promotion waits for approvals (or passes at once when none are needed).
    promotion.state = Promotion.State.AWAITING_APPROVAL
    promotion.save(update_fields=["state"])
    audit.record(
        actor=None,
        action="promotion.awaiting_approval",
        obj=promotion,
        before={"state": "requested"},
        after={"state": promotion.state},
    )
    _approve_if_allowed(promotion, actor=None)
    if promotion.state == Promotion.State.AWAITING_APPROVAL:
        _alert_approval_requested(promotion)
    return promotion


def _alert_approval_requested(promotion: Promotion) -> None:
    """Tell the product's subscribers a promotion waits for signatures (raised in this transaction)."""
    from alerts.services import alert_raise

    alert_raise(
        product=promotion.release.product,
        event_kind="approval_requested",
        subject=f"{promotion.human_id} awaits approval: {promotion.release} into {promotion.environment.key}",
        body={
            "promotion": promotion.human_id,
            "release": str(promotion.release),
            "environment": promotion.environment.key,
            "tier": promotion.tier,
            "url": f"/promotions/{promotion.human_id}",
        },
        dedupe_key=f"promotion:{promotion.pk}",
    )


def _approve_if_allowed(promotion: Promotion, *, actor: User | None) -> dict:
    """Move an awaiting promotion to approved when gates pass and approvals are complete (caller holds the lock)."""
    answer = promotion_status(promotion)
    if promotion.state == Promotion.State.AWAITING_APPROVAL and answer["decision"] == "allowed":
        promotion.state = Promotion.State.APPROVED
        promotion.decided_at = timezone.now()
        promotion.save(update_fields=["state", "decided_at"])
        audit.record(
            actor=actor,
            action="promotion.approved",
            obj=promotion,
            before={"state": "awaiting_approval"},
            after={
                "state": "approved",
                "approvals": answer["approvals"]["signed"],
                "policy_version": answer["policy"]["version"],
            },
        )
        answer = promotion_status(promotion)
    return answer


@transaction.atomic
def promotion_refresh(*, promotion: Promotion) -> Promotion:
    """Re-evaluate an open promotion. An awaiting one is approved once its gates pass and its approvals are
    complete. An approved one not yet deployed goes back to awaiting approval when its approvals no longer stand
    (evidence that arrived after the signatures, DESIGN §4.5), so the reviewers can sign what they now see."""
    promotion = _lock(promotion)
    if promotion.state == Promotion.State.AWAITING_APPROVAL:
        _approve_if_allowed(promotion, actor=None)
    elif promotion.state == Promotion.State.APPROVED:
        # Only new evidence reopens it: lapsed approvals expire the promotion instead (promotions_expire).
        answer = promotion_status(promotion)
        inputs = answer["_inputs"]
        standing = [s for s in inputs["signatures"] if s["meaning"] == "approved" and not s["invalidated"]]
        seen = {s["evidence_sha256"] for s in standing} - {None}
        if answer["approvals"]["missing"] and seen - {inputs["evidence_sha256"]}:
            promotion.state = Promotion.State.AWAITING_APPROVAL
            promotion.save(update_fields=["state"])
            audit.record(
                actor=None,
                action="promotion.reopened",
                obj=promotion,
                before={"state": "approved"},
                after={"state": "awaiting_approval", "missing": answer["approvals"]["missing"]},
                reason="; ".join(answer["approvals"].get("notes") or answer["reasons"])[:1000],
            )
    return promotion


def _lock(promotion: Promotion) -> Promotion:
    return (
        Promotion.objects.select_for_update(of=("self",))
        .select_related("release", "release__product", "environment", "requester", "policy_version")
        .get(pk=promotion.pk)
    )


# ---------------------------------------------------------------- separation of duties


def sod_refusal(*, promotion: Promotion, signer: User) -> esign.Refusal | None:
    """The first separation-of-duties rule that excludes this signer from approving, or None."""
    release = promotion.release
    if signer.pk == promotion.requester_id:
        return esign.Refusal(
            "sod.requester_cannot_sign", f"you requested {promotion.human_id}, so you cannot approve it"
        )
    builds = Build.objects.filter(artifacts__releases=release).distinct()
    email = (signer.email or "").strip().lower()
    if email and BuildCommit.objects.filter(build__in=builds, author_email__iexact=email).exists():
        return esign.Refusal(
            "sod.commit_author_cannot_sign",
            f"you ({email}) authored a commit in {release}, so you cannot approve its promotion",
        )
    identities = {signer.username.lower(), *([email] if email else [])}
    for build in builds:
        if build.registered_by_id == signer.pk or build.builder_identity.strip().lower() in identities:
            return esign.Refusal(
                "sod.builder_cannot_sign",
                f"you are the builder of {build.human_id} in {release}, so you cannot approve its promotion",
            )
    for change_request in release.change_requests.all():
        if change_request.requester_id == signer.pk or change_request.authors.filter(pk=signer.pk).exists():
            return esign.Refusal(
                "sod.change_author_cannot_sign",
                f"you requested or wrote {change_request.human_id}, which "
                f"{release} delivers, so you cannot approve its promotion",
            )
    # DESIGN §4.5: whoever shipped the release's digests anywhere does not also approve where they go next.
    # Deployments are the runtime app's records, above this one: they are reached through the relation it
    # declares on each artifact (`artifact.deployments`), never by importing it.
    deployment = min(
        (
            found
            for artifact in release.artifacts.all()
            for found in artifact.deployments.filter(deployer=signer).select_related("environment")
        ),
        key=lambda found: (found.deployed_at, found.pk),
        default=None,
    )
    if deployment is not None:
        return esign.Refusal(
            "sod.deployer_cannot_sign",
            f"you deployed {release} to {deployment.environment.key} ({deployment.human_id}), "
            "so you cannot approve its promotion",
        )
    return None


# ---------------------------------------------------------------- signatures


def promotion_sign(
    *, promotion: Promotion, signer: User, username: str, password: str, meaning: str, comment: str = "", role: str = ""
) -> Signature:
    """Part 11 signature on a promotion: re-authenticate, then approve or reject (SoD refusals are 403 and audited)."""
    # Part 11 §11.200(a): both components again, before anything is looked at.
    esign.reauthenticate(
        signer=signer,
        username=username,
        password=password,
        subject_human_id=promotion.human_id,
        product=promotion.release.product,
    )
    try:
        signature = _promotion_sign(promotion=promotion, signer=signer, meaning=meaning, comment=comment, role=role)
    except esign.Refusal as refusal:
        esign.refuse(
            signer=signer, subject_human_id=promotion.human_id, product=promotion.release.product, refusal=refusal
        )
    return signature


@transaction.atomic
def _promotion_sign(*, promotion: Promotion, signer: User, meaning: str, comment: str, role: str) -> Signature:
    # 1. Lock and check the state: racing signers queue here.
    promotion = _lock(promotion)
    product = promotion.release.product
    if promotion.state != Promotion.State.AWAITING_APPROVAL:
        raise InvalidState(
            f"{promotion.human_id} is {promotion.get_state_display().lower()}, "
            "not awaiting approval, so it cannot be signed"
        )
    if meaning not in (Signature.Meaning.APPROVED, Signature.Meaning.REJECTED):
        raise ValidationFailed("a promotion is signed as approved or rejected")
    policy = active_policy(product)
    document = policy.document
    required = list(document.required_roles(promotion.environment.key, promotion.tier))
    held = roles_of(signer, product)
    # 2. Separation of duties first, so the person excluded hears the rule (a rejection only ever stops a release).
    if meaning == Signature.Meaning.APPROVED:
        refusal = sod_refusal(promotion=promotion, signer=signer)
        if refusal is not None:
            raise refusal
    # 3. Who may sign at all: someone holding a role the policy asks for here.
    if meaning == Signature.Meaning.REJECTED:
        if not comment.strip():
            raise ValidationFailed("a rejection needs a reason in the comment")
        eligible = [r for r in required if r in held] or [
            r for r in (*REVIEWER_ROLES, Role.RELEASE_MANAGER) if r in held
        ]
    else:
        eligible = [r for r in required if r in held]
    if not eligible:
        needs = ", ".join(gates.ROLE_NAMES.get(r, r) for r in required) or "no signatures"
        raise NotPermitted(
            f"{promotion.human_id} ({promotion.tier} tier, into {promotion.environment.key}) needs: {needs}; "
            f"you hold {', '.join(sorted(held)) or 'no role'} on {product.key}"
        )
    if role and role not in eligible:
        raise NotPermitted(f"you cannot sign as {role!r} here; you may sign as {', '.join(eligible)}")
    # 4. One person counts once; a lapsed signature of theirs (expired, older policy, or over evidence that has
    # changed since) is retired so they can sign what they now see.
    environment_rule = document.environment(promotion.environment.key)
    facts = selectors.release_facts(
        release=promotion.release, environment_key=promotion.environment.key, after=environment_rule.after
    )
    evidence_sha256 = selectors.evidence_snapshot_sha256(facts)
    standing = selectors.promotion_signatures(promotion).filter(
        signer=signer, meaning=meaning, invalidated_at__isnull=True
    )
    for previous in standing:
        seen = (previous.content or {}).get("evidence_sha256")
        if previous.is_valid() and previous.policy_version_id == policy.pk and seen in (None, evidence_sha256):
            raise InvalidState(f"you have already signed {promotion.human_id} as {meaning}; one person counts once")
        Signature.objects.filter(pk=previous.pk).update(
            invalidated_at=timezone.now(),
            invalidated_reason="expired, made under an older policy, or over evidence that has changed; signed again",
        )
    if not role:
        signed_roles = {s.role for s in selectors.promotion_signatures(promotion).filter(invalidated_at__isnull=True)}
        role = next((r for r in eligible if r not in signed_roles), eligible[0])
    # 5. The content is what the signer saw: digests, the manifest, the policy version, the evidence snapshot.
    hours = environment_rule.approval.valid_for_hours if environment_rule.approval else None
    content = promotion_signed_content(promotion, policy=policy, evidence_sha256=evidence_sha256)
    signature = esign.signature_create(
        subject=promotion,
        product=product,
        signer=signer,
        meaning=meaning,
        role=role,
        comment=comment,
        content=content,
        policy_version=policy,
        expires_at=timezone.now() + timedelta(hours=hours)
        if (hours and meaning == Signature.Meaning.APPROVED)
        else None,
    )
    # 6. Decide.
    if meaning == Signature.Meaning.REJECTED:
        promotion.state = Promotion.State.REJECTED
        promotion.rejection_reason = comment
        promotion.decided_at = timezone.now()
        promotion.save(update_fields=["state", "rejection_reason", "decided_at"])
        audit.record(
            actor=signer,
            action="promotion.rejected",
            obj=promotion,
            before={"state": "awaiting_approval"},
            after={"state": "rejected"},
            reason=comment,
        )
    else:
        _approve_if_allowed(promotion, actor=signer)
    return signature


def promotion_signed_content(promotion: Promotion, *, policy: PolicyVersion, evidence_sha256: str) -> dict[str, Any]:
    release = promotion.release
    return {
        "promotion": promotion.human_id,
        "product": release.product.key,
        "release": release.version,
        "environment": promotion.environment.key,
        "tier": promotion.tier,
        "digests": sorted(a["digest"] for a in (release.manifest or {}).get("artifacts", [])),
        "manifest_sha256": release.manifest_sha256,
        "policy_version": policy.version,
        "policy_sha256": policy.sha256,
        "evidence_sha256": evidence_sha256,
    }


@transaction.atomic
def promotion_mark_deployed(*, promotion: Promotion, actor: User | None) -> Promotion:
    """Record that an approved promotion reached its environment; older open promotions there are superseded."""
    promotion = _lock(promotion)
    if promotion.state != Promotion.State.APPROVED:
        raise InvalidState(
            f"{promotion.human_id} is {promotion.get_state_display().lower()}, "
            "not approved, so it cannot be marked deployed"
        )
    promotion.state = Promotion.State.DEPLOYED
    promotion.deployed_at = timezone.now()
    promotion.save(update_fields=["state", "deployed_at"])
    audit.record(
        actor=actor,
        action="promotion.deployed",
        obj=promotion,
        before={"state": "approved"},
        after={"state": "deployed"},
    )
    older = (
        Promotion.objects.select_for_update()
        .filter(
            environment=promotion.environment,
            state__in=Promotion.OPEN_STATES,
            release__created_at__lt=promotion.release.created_at,
        )
        .exclude(pk=promotion.pk)
    )
    for other in older:
        other.state = Promotion.State.SUPERSEDED
        other.save(update_fields=["state"])
        audit.record(
            actor=actor,
            action="promotion.superseded",
            obj=other,
            after={"state": "superseded", "by": promotion.human_id},
        )
    return promotion


@transaction.atomic
def promotions_expire(*, at=None) -> list[str]:
    """Approved promotions whose approvals lapsed before deployment expire (Celery beat runs this)."""
    at = at or timezone.now()
    expired = []
    candidates = (
        Promotion.objects.select_for_update(of=("self",))
        .filter(state=Promotion.State.APPROVED)
        .select_related("release", "release__product", "environment", "policy_version")
    )
    for promotion in candidates:
        answer = promotion_status(promotion, at=at)
        if answer["approvals"]["missing"]:
            promotion.state = Promotion.State.EXPIRED
            promotion.save(update_fields=["state"])
            audit.record(
                actor=None,
                action="promotion.expired",
                obj=promotion,
                before={"state": "approved"},
                after={"state": "expired", "missing": answer["approvals"]["missing"]},
                reason="approvals lapsed before deployment (policy valid_for_hours)",
            )
            expired.append(promotion.human_id)
    return expired


# ---------------------------------------------------------------- the status answer


def _signature_inputs(promotion: Promotion) -> list[dict]:
    return [
        {
            "signer": s.signer.username,
            "printed_name": s.printed_name,
            "role": s.role,
            "meaning": s.meaning,
            "signed_at": s.signed_at.isoformat(),
            "expires_at": s.expires_at.isoformat() if s.expires_at else None,
            "invalidated": s.invalidated_at is not None,
            "policy_version": s.policy_version.version if s.policy_version_id else None,
            "evidence_sha256": (s.content or {}).get("evidence_sha256"),
        }
        for s in selectors.promotion_signatures(promotion).select_related("policy_version")
    ]


def status_inputs(*, promotion: Promotion | None, environment: Environment, policy: PolicyVersion) -> dict[str, Any]:
    """Everything `gates.decide` reads, as JSON (stored with each Decision for replay)."""
    if promotion is None:
        return {"promotion": None, "policy_version": policy.version}
    rule = policy.document.environment(environment.key)
    facts = selectors.release_facts(release=promotion.release, environment_key=environment.key, after=rule.after)
    return {
        "promotion": {
            "id": promotion.human_id,
            "state": promotion.state,
            "tier": promotion.tier,
            "rejection_reason": promotion.rejection_reason,
            "requested_by": promotion.requester.username,
        },
        "facts": facts,
        "signatures": _signature_inputs(promotion),
        "policy_version": policy.version,
        "evidence_sha256": selectors.evidence_snapshot_sha256(facts),
    }


def _policy_block(policy: PolicyVersion) -> dict:
    return {"name": policy.document.name, "version": policy.version, "digest": f"sha256:{policy.sha256}"}


def answer_from(*, policy: PolicyVersion, environment_key: str, inputs: dict, at) -> dict:
    return gates.decide(document=policy.document, environment_key=environment_key, inputs=inputs, at=at)


def promotion_status(promotion: Promotion, *, at=None) -> dict[str, Any]:
    """The status object of DESIGN §7 for a promotion (no write)."""
    at = at or timezone.now()
    policy = active_policy(promotion.release.product)
    inputs = status_inputs(promotion=promotion, environment=promotion.environment, policy=policy)
    answer = answer_from(policy=policy, environment_key=promotion.environment.key, inputs=audit.jsonable(inputs), at=at)
    return {
        "decision": answer["decision"],
        "product": promotion.release.product.key,
        "release": promotion.release.version,
        "promotion": promotion.human_id,
        "environment": promotion.environment.key,
        "policy": _policy_block(policy),
        "gates": answer["gates"],
        "approvals": answer["approvals"],
        "reasons": answer["reasons"],
        "evaluated_at": at.isoformat(),
        "_inputs": inputs,
    }


def promotion_for_artifact(*, artifact: Artifact, environment: Environment) -> Promotion | None:
    """The promotion that answers for a digest: the newest one of a release containing it into the environment."""
    return (
        Promotion.objects.filter(environment=environment, release__artifacts=artifact)
        .select_related("release", "release__product", "environment", "requester", "policy_version")
        .order_by("-id")
        .first()
    )


# The stamp covers every input and expiry bounds the lifetime, so the timeout only limits memory use.
CACHE_SECONDS = 600


class _LocalAnswers:
    """A small per-process LRU in front of the shared cache: keys name their inputs, so no entry can go stale
    (a changed input is a different key), and `valid_until` is checked on every read all the same."""

    def __init__(self, size: int = 4096):
        import threading
        from collections import OrderedDict

        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: str):
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: str, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_local_answers = _LocalAnswers()


def status_answer(*, artifact: Artifact, environment_key: str) -> dict[str, Any]:
    """The CI gate for an artifact already in hand (see status_answer_for)."""
    found = selectors.status_key(artifact_id=artifact.pk, environment_key=environment_key)
    if found is None:
        raise NotFound(f"artifact {artifact.digest} no longer exists")
    return status_answer_for(found=found, environment_key=environment_key, artifact=artifact)


def status_answer_for(
    *, found: selectors.StatusKey, environment_key: str, artifact: Artifact | None = None
) -> dict[str, Any]:
    """The CI gate: cached by inputs stamp, never beyond the earliest approval expiry; stored when it changes.

    `found` (selectors.status_key) names the artifact, environment and stamp, so a cached answer costs no other
    query; the artifact is loaded only to compute a fresh answer."""
    if found.environment_id is None:
        known = ", ".join(Environment.objects.filter(product_id=found.product_id).values_list("key", flat=True))
        raise NotFound(f"{found.product_key} has no environment {environment_key!r} (environments: {known})")
    key = f"custody:status:{found.artifact_id}:{found.environment_id}:{found.stamp}"
    now = timezone.now()
    cached = _local_answers.get(key) or cache.get(key)
    if cached is not None and cached["valid_until"] > now.timestamp():
        _local_answers.put(key, cached)
        return cached["body"]
    if artifact is None:
        artifact = Artifact.objects.select_related("product").get(pk=found.artifact_id)
    environment = Environment.objects.get(pk=found.environment_id)
    promotion = promotion_for_artifact(artifact=artifact, environment=environment)
    policy = active_policy(artifact.product)
    if policy is None:
        raise InvalidState(f"{artifact.product.key} has no active policy, so no decision can be made")
    if promotion is not None and promotion.state in (Promotion.State.AWAITING_APPROVAL, Promotion.State.APPROVED):
        promotion = promotion_refresh(promotion=promotion)
    inputs = audit.jsonable(status_inputs(promotion=promotion, environment=environment, policy=policy))
    answer = answer_from(policy=policy, environment_key=environment.key, inputs=inputs, at=now)
    body = {
        "decision": answer["decision"],
        "product": artifact.product.key,
        "release": promotion.release.version if promotion else None,
        "promotion": promotion.human_id if promotion else None,
        "environment": environment.key,
        "policy": _policy_block(policy),
        "gates": answer["gates"],
        "approvals": answer["approvals"],
        "reasons": answer["reasons"],
        "evaluated_at": now.isoformat(),
    }
    _decision_store(
        artifact=artifact,
        environment=environment,
        promotion=promotion,
        policy=policy,
        inputs=inputs,
        answer=answer,
        at=now,
    )
    # Never serve an "allowed" past the moment a signature lapses.
    expiries = [
        gates._parse_time(s["expires_at"]) for s in answer["approvals"].get("signers", []) if s.get("expires_at")
    ]
    valid_until = min([now + timedelta(seconds=CACHE_SECONDS), *expiries]).timestamp()
    cache.set(key, {"body": body, "valid_until": valid_until}, timeout=CACHE_SECONDS)
    _local_answers.put(key, {"body": body, "valid_until": valid_until})
    return body


def _answer_sha256(answer: dict) -> str:
    return selectors.canonical_sha256({k: answer[k] for k in ("decision", "gates", "approvals", "reasons")})


def _decision_store(*, artifact, environment, promotion, policy, inputs, answer, at) -> Decision | None:
    """Store the answer when it differs from the last one stored for this digest and environment."""
    answer_sha = _answer_sha256(answer)
    last = selectors.latest_decision(artifact_id=artifact.pk, environment_id=environment.pk)
    if last is not None and last.answer_sha256 == answer_sha and last.policy_version_id == policy.pk:
        return None
    return Decision.objects.create(
        artifact=artifact,
        environment=environment,
        promotion=promotion,
        decision=answer["decision"],
        gates=answer["gates"],
        approvals=answer["approvals"],
        reasons=answer["reasons"],
        policy_version=policy,
        inputs=inputs,
        inputs_sha256=selectors.canonical_sha256(inputs),
        answer_sha256=answer_sha,
        evaluated_at=at,
    )


def decision_replay(decision: Decision) -> dict[str, Any]:
    """Recompute a stored decision from its recorded inputs and policy version (for audits and tests)."""
    answer = answer_from(
        policy=decision.policy_version,
        environment_key=decision.environment.key,
        inputs=decision.inputs,
        at=decision.evaluated_at,
    )
    return {**answer, "matches": _answer_sha256(answer) == decision.answer_sha256}
