"""Writes of the core domain. Each is one transaction that locks, checks state, writes and audits."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction
from django.utils import timezone

from changecontrol import audit, esign, selectors
from changecontrol.models import ChangeRequest, Environment, PolicyVersion, Product, Role, Signature, User
from changecontrol.policy import DEFAULT_POLICY_PROPOSER_ROLES, PolicyInvalid, RiskAnswersInvalid, parse_policy
from changecontrol.roles import has_role, roles_of
from common.errors import InvalidState, NotPermitted, ValidationFailed
from common.links import check_url

DEFAULT_ENVIRONMENTS = (("integration", "Integration"), ("staging", "Staging"), ("production", "Production"))

# ---------------------------------------------------------------- products


@transaction.atomic
def product_create(
    *,
    actor: User | None,
    key: str,
    name: str,
    safety_class: str,
    safety_rationale: str,
    repository_url: str = "",
    environments: tuple[tuple[str, str], ...] = DEFAULT_ENVIRONMENTS,
) -> Product:
    if Product.objects.filter(key=key).exists():
        raise ValidationFailed(f"a product with key {key!r} already exists")
    if safety_class not in Product.SafetyClass.values:
        raise ValidationFailed("the IEC 62304 safety class must be A, B or C")
    if not safety_rationale.strip():
        raise ValidationFailed("IEC 62304 §4.3 asks for the rationale of the safety class: give one")
    repository_url = check_url(repository_url, field="repository_url", blank=True)
    product = Product.objects.create(
        key=key, name=name, safety_class=safety_class, safety_rationale=safety_rationale, repository_url=repository_url
    )
    for order, (env_key, env_name) in enumerate(environments, start=1):
        Environment.objects.create(product=product, key=env_key, name=env_name, order=order)
    audit.record(
        actor=actor,
        action="product.created",
        obj=product,
        after={"key": key, "name": name, "safety_class": safety_class, "environments": [e[0] for e in environments]},
    )
    return product


# ---------------------------------------------------------------- policies


# DESIGN §8: auditors read everything and change nothing; every working role may propose, since the version
# takes effect only once a quality reviewer other than its author signs it.
def policy_proposer_roles(product: Product) -> tuple[str, ...]:
    """Who may propose a new version of a product's policy: its policy in force says (`policy_changes.propose_roles`),
    quality reviewers and administrators when it says nothing or there is none yet."""
    policy = active_policy(product)
    return policy.document.policy_changes.propose_roles if policy is not None else DEFAULT_POLICY_PROPOSER_ROLES


def active_policy(product: Product) -> PolicyVersion | None:
    return product.policy_versions.filter(state=PolicyVersion.State.ACTIVE).first()


@transaction.atomic
def policy_version_propose(*, product: Product, author: User, source: str, reason: str) -> PolicyVersion:
    """Store a new immutable policy version; it takes effect only once a quality reviewer signs it."""
    if not reason.strip():
        raise ValidationFailed("say why the policy changes: a policy change is itself a controlled change")
    try:
        document = parse_policy(source)
    except PolicyInvalid as invalid:
        raise ValidationFailed(
            f"the policy is not valid ({len(invalid.errors)} problem(s)):\n{invalid}",
            errors=[{"line": e.line, "path": e.path, "message": e.message} for e in invalid.errors],
        ) from None
    if document.name != product.key:
        raise ValidationFailed(
            f"the policy names product {document.name!r}, but it is being loaded for {product.key!r}"
        )
    # After the document's own checks, so a file loaded for the wrong product says so first.
    proposers = policy_proposer_roles(product)
    if not has_role(author, product, *proposers):
        held = ", ".join(sorted(roles_of(author, product))) or "no role"
        needs = " or ".join(Role.in_sentence(role) for role in proposers)
        article = "an" if needs[:1] in "aeiouAEIOU" else "a"
        raise NotPermitted(
            f"you hold {held} on {product.key}; proposing a policy needs {article} {needs} of it "
            "(the policy's policy_changes.propose_roles)"
        )
    Product.objects.select_for_update().get(pk=product.pk)  # serialise version numbers per product
    sha = hashlib.sha256(source.encode()).hexdigest()
    latest = product.policy_versions.order_by("-version").first()
    if (
        latest is not None
        and latest.sha256 == sha
        and latest.state in (PolicyVersion.State.PROPOSED, PolicyVersion.State.ACTIVE)
    ):
        return latest
    version = PolicyVersion.objects.create(
        product=product,
        version=(latest.version + 1) if latest else 1,
        source=source,
        sha256=sha,
        author=author,
        reason=reason,
    )
    audit.record(
        actor=author,
        action="policy.proposed",
        obj=version,
        after={"sha256": sha, "version": version.version},
        reason=reason,
        seal=[version],
    )
    return version


def policy_version_sign(
    *,
    policy_version: PolicyVersion,
    signer: User,
    username: str,
    password: str,
    seen_sha256: str,
    comment: str = "",
) -> Signature:
    """A quality reviewer's signature activates a proposed policy version (the previous one is superseded).

    `seen_sha256` is the hash of `selectors.policy_version_signing_content` the reviewer was shown."""
    return esign.sign(
        signer=signer,
        username=username,
        password=password,
        seen_sha256=seen_sha256,
        subject_human_id=str(policy_version),
        product=policy_version.product,
        under_lock=lambda seen: _policy_version_activate(
            policy_version=policy_version, signer=signer, comment=comment, seen=seen
        ),
    )


@transaction.atomic
def _policy_version_activate(
    *, policy_version: PolicyVersion, signer: User, comment: str, seen: esign.Seen
) -> Signature:
    policy_version = PolicyVersion.objects.select_for_update().select_related("product").get(pk=policy_version.pk)
    product = policy_version.product
    if policy_version.state != PolicyVersion.State.PROPOSED:
        raise InvalidState(
            f"{policy_version} is {policy_version.get_state_display().lower()}, not awaiting a signature"
        )
    if not has_role(signer, product, Role.QUALITY):
        held = ", ".join(sorted(roles_of(signer, product))) or "no role"
        raise NotPermitted(f"only a quality reviewer of {product.key} can approve a policy change; you hold {held}")
    if signer.pk == policy_version.author_id:
        raise esign.Refusal("sod.policy_author_cannot_approve", "the author of a policy version cannot approve it")
    previous = active_policy(product)
    if previous is not None and previous.version > policy_version.version:
        # A signature never brings older rules back: v2 proposed, v3 proposed and signed, v2 signed later.
        raise InvalidState(
            f"{policy_version} was proposed before the active v{previous.version}; propose its document again "
            "if its rules should apply"
        )
    if previous is not None:
        PolicyVersion.objects.filter(pk=previous.pk).update(state=PolicyVersion.State.SUPERSEDED)
    policy_version.state = PolicyVersion.State.ACTIVE
    policy_version.activated_at = timezone.now()
    policy_version.save(update_fields=["state", "activated_at"])
    signature = esign.signature_create(
        subject=policy_version,
        product=product,
        signer=signer,
        meaning=Signature.Meaning.APPROVED,
        role=Role.QUALITY,
        comment=comment,
        content=selectors.policy_version_signing_content(policy_version),
        seen=seen,
        policy_version=policy_version,
    )
    audit.record(
        actor=signer,
        action="policy.activated",
        obj=policy_version,
        before={"active_version": previous.version if previous else None},
        after={"active_version": policy_version.version, "sha256": policy_version.sha256},
        seal=[policy_version, *([previous] if previous else [])],
    )
    return signature


# ---------------------------------------------------------------- change requests

CR_CONTENT_FIELDS = ChangeRequest.CONTENT_FIELDS
CR_OPENER_ROLES = (Role.ENGINEER, Role.RELEASE_MANAGER, Role.PRODUCT, Role.QUALITY, Role.SECURITY, Role.SRE)


def _lock(change_request: ChangeRequest) -> ChangeRequest:
    return (
        ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("product", "policy_version")
        .get(pk=change_request.pk)
    )


def _classify(change_request: ChangeRequest, answers: dict[str, Any]) -> None:
    """Compute score and tier from the active policy: the tier is never typed (DESIGN §4.1)."""
    policy = active_policy(change_request.product)
    if policy is None:
        raise InvalidState(f"{change_request.product.key} has no active policy, so the risk cannot be classified yet")
    try:
        result = policy.document.score_risk({str(k): str(v) for k, v in answers.items()})
    except RiskAnswersInvalid as invalid:
        raise ValidationFailed(f"the risk answers are not complete: {invalid}", errors=list(invalid.errors)) from None
    change_request.risk_answers = dict(answers)
    change_request.risk_score = result.score
    change_request.tier = result.tier
    change_request.policy_version = policy


def _snapshot(change_request: ChangeRequest) -> dict[str, Any]:
    return {
        field: getattr(change_request, field)
        for field in (*CR_CONTENT_FIELDS, "risk_answers", "risk_score", "tier", "state")
    }


@transaction.atomic
def change_request_create(
    *, product: Product, requester: User, risk_answers: dict | None = None, **fields: Any
) -> ChangeRequest:
    if not has_role(requester, product, *CR_OPENER_ROLES):
        raise NotPermitted(f"you hold no role on {product.key} that may open change requests")
    unknown = set(fields) - set(CR_CONTENT_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown fields: {', '.join(sorted(unknown))}")
    if not str(fields.get("title", "")).strip():
        raise ValidationFailed("a change request needs a title", errors={"title": ["This field is required."]})
    _validate_choices(fields)
    change_request = ChangeRequest(product=product, requester=requester, **fields)
    if risk_answers:
        _classify(change_request, risk_answers)
    change_request.save()
    change_request.authors.add(requester)
    audit.record(actor=requester, action="change_request.created", obj=change_request, after=_snapshot(change_request))
    return change_request


def _validate_choices(fields: dict[str, Any]) -> None:
    errors = {}
    if "kind" in fields and fields["kind"] not in ChangeRequest.Kind.values:
        errors["kind"] = [f"choose one of: {', '.join(ChangeRequest.Kind.values)}"]
    if "change_type" in fields and fields["change_type"] not in ChangeRequest.Type.values:
        errors["change_type"] = [f"choose one of: {', '.join(ChangeRequest.Type.values)}"]
    if errors:
        raise ValidationFailed("; ".join(f"{k}: {v[0]}" for k, v in errors.items()), errors=errors)


@transaction.atomic
def change_request_update(
    *, change_request: ChangeRequest, actor: User, risk_answers: dict | None = None, reason: str = "", **fields: Any
) -> ChangeRequest:
    """Edit content or risk answers. After a signature, an edit resets the approval (audited), never carries it."""
    change_request = change_request_lock_editable(change_request)
    if not has_role(actor, change_request.product, *CR_OPENER_ROLES):
        raise NotPermitted(f"you hold no role on {change_request.product.key} that may edit change requests")
    unknown = set(fields) - set(CR_CONTENT_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown fields: {', '.join(sorted(unknown))}")
    _validate_choices(fields)
    before = _snapshot(change_request)
    for field, value in fields.items():
        setattr(change_request, field, value)
    if risk_answers is not None:
        _classify(change_request, risk_answers)
    after = _snapshot(change_request)
    changed = {key for key in after if after[key] != before[key]}
    if not changed:
        return change_request
    change_request.authors.add(actor)
    return change_request_content_changed(
        change_request=change_request,
        actor=actor,
        changed=changed,
        action="change_request.updated",
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
        reason=reason,
    )


def change_request_lock_editable(change_request: ChangeRequest) -> ChangeRequest:
    """The change request locked for an edit of its content or scope; 409 once it is past the point of editing."""
    change_request = _lock(change_request)
    if not change_request.is_editable():
        raise InvalidState(
            f"{change_request.human_id} is {change_request.get_state_display().lower()} and can no longer be edited"
        )
    return change_request


def change_request_content_changed(
    *,
    change_request: ChangeRequest,
    actor: User,
    changed: set[str],
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str = "",
) -> ChangeRequest:
    """Record an edit of a change request locked by `change_request_lock_editable`, whatever changed — its text, its
    risk answers or the items it covers (traceability): a new content version, and after a signature the approval is
    reset (audited, with what changed) rather than carried over (Part 11 §11.70)."""
    change_request.content_version += 1
    change_request.updated_at = timezone.now()
    was_approved = change_request.state == ChangeRequest.State.APPROVED
    if was_approved:
        change_request.state = ChangeRequest.State.SUBMITTED
        change_request.decided_at = None
        change_request.approved_automatically = False
    change_request.save()
    audit.record(actor=actor, action=action, obj=change_request, before=before, after=after, reason=reason)
    invalidated = esign.signatures_invalidate(
        subject=change_request,
        actor=actor,
        reason=f"content changed ({', '.join(sorted(changed))}) in version {change_request.content_version}",
    )
    if was_approved:
        audit.record(
            actor=actor,
            action="change_request.approval_reset",
            obj=change_request,
            reason=f"{', '.join(sorted(changed))} changed after approval; {invalidated} signature(s) no longer count",
        )
    if change_request.state == ChangeRequest.State.SUBMITTED:
        _auto_approve_if_policy_allows(change_request)
    return change_request


def submission_problems(change_request: ChangeRequest) -> list[str]:
    problems = []
    if not change_request.tier:
        problems.append("answer the risk questionnaire (the tier is computed from it)")
    if not change_request.verification_plan.strip():
        problems.append("write the verification plan")
    if not change_request.rollback_plan.strip():
        problems.append("write the rollback plan")
    return problems


@transaction.atomic
def change_request_submit(*, change_request: ChangeRequest, actor: User) -> ChangeRequest:
    change_request = _lock(change_request)
    if change_request.state != ChangeRequest.State.DRAFT:
        raise InvalidState(
            f"{change_request.human_id} is {change_request.get_state_display().lower()}, not a draft, so it cannot be submitted"
        )
    if not has_role(actor, change_request.product, *CR_OPENER_ROLES):
        raise NotPermitted(f"you hold no role on {change_request.product.key} that may submit change requests")
    problems = submission_problems(change_request)
    if problems:
        raise ValidationFailed(
            f"{change_request.human_id} cannot be submitted yet: " + "; ".join(problems), errors=problems
        )
    # Re-classify against the policy in force now: a policy may have changed since the draft was written.
    _classify(change_request, change_request.risk_answers)
    change_request.state = ChangeRequest.State.SUBMITTED
    change_request.submitted_at = timezone.now()
    change_request.save()
    audit.record(actor=actor, action="change_request.submitted", obj=change_request, after=_snapshot(change_request))
    _auto_approve_if_policy_allows(change_request)
    return change_request


def _auto_approve_if_policy_allows(change_request: ChangeRequest) -> None:
    rule = change_request.policy_version.document.change_approval_for(change_request.tier)
    if not rule.auto:
        return
    change_request.state = ChangeRequest.State.APPROVED
    change_request.decided_at = timezone.now()
    change_request.approved_automatically = True
    change_request.save(update_fields=["state", "decided_at", "approved_automatically"])
    # A system decision, not a signature: recorded with the policy version that allowed it.
    audit.record(
        actor=None,
        action="change_request.auto_approved",
        obj=change_request,
        after={
            "tier": change_request.tier,
            "policy_version": change_request.policy_version.version,
            "policy_sha256": change_request.policy_version.sha256,
        },
        reason=f"policy v{change_request.policy_version.version} approves {change_request.tier}-tier changes automatically",
    )


def approval_requirement(change_request: ChangeRequest, *, signatures=None) -> dict[str, Any]:
    """What the tier demands: roles, how many distinct signers, who has signed, and what is missing.

    `signatures` are the CR's signatures when the caller already holds them (a list loads every row's at once)."""
    if not change_request.tier or change_request.policy_version is None:
        return {"auto": False, "roles": [], "count": 0, "signed": [], "missing_roles": [], "missing_count": 0}
    rule = change_request.policy_version.document.change_approval_for(change_request.tier)
    if signatures is None:
        signatures = esign.signatures_for(change_request)
    standing = [s for s in signatures if s.meaning == Signature.Meaning.APPROVED and s.is_valid()]
    signers = {s.signer_id for s in standing}
    covered = {s.role for s in standing}
    missing_roles = (
        [role for role in rule.roles if role not in covered]
        if len(rule.roles) <= rule.count
        else ([] if covered & set(rule.roles) else list(rule.roles))
    )
    return {
        "auto": rule.auto,
        "roles": list(rule.roles),
        "count": rule.count,
        "signed": [s.manifestation for s in standing],
        "missing_roles": missing_roles,
        "missing_count": max(rule.count - len(signers), 0),
    }


def change_request_sign(
    *,
    change_request: ChangeRequest,
    signer: User,
    username: str,
    password: str,
    meaning: str,
    seen_sha256: str,
    comment: str = "",
    role: str = "",
) -> Signature:
    """Sign a submitted CR (approve, reject or review) — Part 11 re-authentication and separation of duties.

    `seen_sha256` is the hash of `selectors.change_request_signing_content` the reviewer was shown; an edit since
    is refused (409 `content_changed`)."""
    return esign.sign(
        signer=signer,
        username=username,
        password=password,
        seen_sha256=seen_sha256,
        subject_human_id=change_request.human_id,
        product=change_request.product,
        under_lock=lambda seen: _change_request_sign_locked(
            change_request=change_request, signer=signer, meaning=meaning, comment=comment, role=role, seen=seen
        ),
    )


@transaction.atomic
def _change_request_sign_locked(
    *, change_request: ChangeRequest, signer: User, meaning: str, comment: str, role: str, seen: esign.Seen
) -> Signature:
    # 1. Lock the CR: two reviewers signing at once are serialised here, so both count exactly once.
    change_request = _lock(change_request)
    allowed = (Signature.Meaning.APPROVED, Signature.Meaning.REJECTED, Signature.Meaning.REVIEWED)
    if meaning not in allowed:
        raise ValidationFailed(f"a change request can be signed as: {', '.join(allowed)}")
    if change_request.state != ChangeRequest.State.SUBMITTED:
        raise InvalidState(
            f"{change_request.human_id} is {change_request.get_state_display().lower()}, not submitted, so it cannot be signed"
        )
    # 2. Separation of duties: nobody approves their own change.
    if signer.pk == change_request.requester_id:
        raise esign.Refusal("sod.requester_cannot_sign", "the requester of a change request cannot sign its approval")
    if change_request.authors.filter(pk=signer.pk).exists():
        raise esign.Refusal("sod.author_cannot_sign", "an author of a change request cannot sign its approval")
    # 3. The role the signature is made in must be one the tier asks for and the signer holds.
    rule = change_request.policy_version.document.change_approval_for(change_request.tier)
    held = roles_of(signer, change_request.product)
    eligible = [r for r in rule.roles if r in held]
    if role:
        if role not in eligible:
            raise NotPermitted(
                f"you cannot sign as {role!r}: this {change_request.tier}-tier change needs {', '.join(rule.roles) or 'no signatures'}"
                f" and you hold {', '.join(sorted(held)) or 'no role'} on {change_request.product.key}"
            )
    elif eligible:
        signed_roles = {s.role for s in esign.signatures_for(change_request).filter(invalidated_at__isnull=True)}
        role = next((r for r in eligible if r not in signed_roles), eligible[0])
    else:
        raise NotPermitted(
            f"this {change_request.tier}-tier change needs a signature from: {', '.join(rule.roles) or 'nobody (automatic)'};"
            f" you hold {', '.join(sorted(held)) or 'no role'} on {change_request.product.key}"
        )
    # 4. One person counts once (also enforced by a unique constraint).
    if (
        esign.signatures_for(change_request)
        .filter(signer=signer, invalidated_at__isnull=True, meaning=meaning)
        .exists()
    ):
        raise InvalidState(f"you have already signed {change_request.human_id} as {meaning}; one person counts once")
    if meaning == Signature.Meaning.REJECTED and not comment.strip():
        raise ValidationFailed("a rejection needs a reason in the comment")
    signature = esign.signature_create(
        subject=change_request,
        product=change_request.product,
        signer=signer,
        meaning=meaning,
        role=role,
        comment=comment,
        content=selectors.change_request_signing_content(change_request),
        seen=seen,
        policy_version=change_request.policy_version,
    )
    # 5. Decide.
    before_state = change_request.state
    if meaning == Signature.Meaning.REJECTED:
        change_request.state = ChangeRequest.State.REJECTED
        change_request.rejection_reason = comment
        change_request.decided_at = timezone.now()
    elif meaning == Signature.Meaning.APPROVED:
        requirement = approval_requirement(change_request)
        if not requirement["missing_roles"] and requirement["missing_count"] == 0:
            change_request.state = ChangeRequest.State.APPROVED
            change_request.decided_at = timezone.now()
    if change_request.state != before_state:
        change_request.save(update_fields=["state", "rejection_reason", "decided_at"])
        audit.record(
            actor=signer,
            action=f"change_request.{change_request.state}",
            obj=change_request,
            before={"state": before_state},
            after={"state": change_request.state},
            reason=comment if meaning == Signature.Meaning.REJECTED else "",
        )
    return signature


def _transition(
    change_request: ChangeRequest, *, actor: User, allowed_from: tuple[str, ...], to: str, verb: str, reason: str = ""
) -> ChangeRequest:
    change_request = _lock(change_request)
    if change_request.state not in allowed_from:
        raise InvalidState(
            f"{change_request.human_id} is {change_request.get_state_display().lower()}, so it cannot be {verb}"
            f" (only from: {', '.join(allowed_from)})"
        )
    before = change_request.state
    change_request.state = to
    change_request.save(update_fields=["state"])
    audit.record(
        actor=actor,
        action=f"change_request.{to}",
        obj=change_request,
        before={"state": before},
        after={"state": to},
        reason=reason,
    )
    return change_request


@transaction.atomic
def change_request_withdraw(*, change_request: ChangeRequest, actor: User, reason: str) -> ChangeRequest:
    if actor.pk != change_request.requester_id and not has_role(actor, change_request.product, Role.RELEASE_MANAGER):
        raise NotPermitted("only the requester or a release manager can withdraw a change request")
    if not reason.strip():
        raise ValidationFailed("say why the change request is withdrawn")
    return _transition(
        change_request,
        actor=actor,
        allowed_from=("draft", "submitted", "approved"),
        to="withdrawn",
        verb="withdrawn",
        reason=reason,
    )


@transaction.atomic
def change_request_mark_implemented(*, change_request: ChangeRequest, actor: User) -> ChangeRequest:
    if not has_role(actor, change_request.product, Role.RELEASE_MANAGER, Role.ENGINEER):
        raise NotPermitted("only an engineer or release manager of this product can mark a change implemented")
    return _transition(
        change_request, actor=actor, allowed_from=("approved",), to="implemented", verb="marked implemented"
    )


@transaction.atomic
def change_request_close(*, change_request: ChangeRequest, actor: User, reason: str = "") -> ChangeRequest:
    if not has_role(actor, change_request.product, Role.RELEASE_MANAGER):
        raise NotPermitted("only a release manager of this product can close a change request")
    return _transition(
        change_request, actor=actor, allowed_from=("implemented",), to="closed", verb="closed", reason=reason
    )


def risk_preview(*, product: Product, answers: dict[str, str]) -> dict[str, Any]:
    """The live tier preview: score, tier and what that tier will demand (no write)."""
    policy = active_policy(product)
    if policy is None:
        return {"complete": False, "problems": [f"{product.key} has no active policy yet"]}
    document = policy.document
    try:
        result = document.score_risk(answers)
    except RiskAnswersInvalid as invalid:
        return {"complete": False, "problems": [str(e) for e in invalid.errors]}
    rule = document.change_approval_for(result.tier)
    demands = (
        "approved automatically by policy when submitted"
        if rule.auto
        else f"{rule.count} signature(s) from distinct people holding: {', '.join(rule.roles)}"
    )
    production_roles = []
    try:
        production_roles = list(document.required_roles("production", result.tier))
    except Exception:  # noqa: BLE001 - a policy without a production environment simply has nothing to say here
        production_roles = []
    return {
        "complete": True,
        "score": result.score,
        "tier": result.tier,
        "change_approval": demands,
        "production_approval_roles": production_roles,
        "policy_version": policy.version,
    }
