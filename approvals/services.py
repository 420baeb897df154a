"""Writes of the approvals app: releases, promotions, their signatures, and the decisions stored for each digest.

Each write is one transaction that locks, checks state, writes and audits (STYLE.md). Every input a promotion
depends on ends in `_settle`, which approves it when its gates pass and its approvals are complete and stores the
status answer whenever it changed; the answer itself is computed read-only by `approvals.status`.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import gates, releases, selectors, sod, status
from approvals.models import Decision, Promotion, Release
from changecontrol import audit, esign
from changecontrol.models import Environment, PolicyVersion, Role, Signature, User
from changecontrol.roles import roles_of
from changecontrol.services import active_policy
from common.canonical import canonical_sha256
from common.errors import Conflict, InvalidState, NotPermitted, ValidationFailed
from evidence.models import Artifact

REVIEWER_ROLES = (Role.QUALITY, Role.SECURITY, Role.PRODUCT)


# ---------------------------------------------------------------- promotions


def tier_of(release: Release, policy: PolicyVersion) -> str:
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
    if not releases.may_manage_releases(actor, product):
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
        releases.release_freeze(release, actor=actor)
    promotion = Promotion.objects.create(
        release=release, environment=environment, requester=actor, policy_version=policy, tier=tier_of(release, policy)
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
    _settle(promotion, actor=actor)
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


def _settle(promotion: Promotion, *, actor: User | None) -> status.Evaluation:
    """Judge a locked, open promotion now; approve an awaiting one whose gates pass and approvals are complete, and
    store the answer for each digest it answers for (when the answer changed). The caller holds the lock.

    Every service that takes an input a promotion depends on (its request, a signature, a report that finished
    processing, a change request decided, a policy activated) ends here, so the promotion's state and its stored
    decisions follow the inputs, audited with the person whose input moved them; a status read never writes.
    """
    evaluation = status.evaluate(promotion)
    if promotion.awaits_signatures() and evaluation.answer["decision"] == "allowed":
        before = promotion.state
        promotion.state = Promotion.State.APPROVED
        promotion.decided_at = timezone.now()
        promotion.save(update_fields=["state", "decided_at"])
        audit.record(
            actor=actor,
            action="promotion.approved",
            obj=promotion,
            before={"state": before},
            after={
                "state": "approved",
                "approvals": evaluation.answer["approvals"]["signed"],
                "policy_version": evaluation.policy.version,
            },
        )
        evaluation = status.evaluate(promotion)
    for artifact in promotion.release.artifacts.all():
        if status.promotion_for_artifact(artifact=artifact, environment=promotion.environment) == promotion:
            decision_record(
                artifact=artifact, environment=promotion.environment, promotion=promotion, evaluation=evaluation
            )
    return evaluation


@transaction.atomic
def promotion_refresh(*, promotion: Promotion, actor: User | None) -> Promotion:
    """Re-judge an open promotion after one of its inputs changed, on behalf of `actor`, whose input it was.

    An awaiting (or reopened) one is approved once its gates pass and its approvals are complete. An approved one not
    yet deployed is reopened when the answer no longer allows it because of what changed after approval (DESIGN
    §4.5): new or withdrawn evidence, a blocking gate that fails, a policy activated. Its standing approvals are
    invalidated, so the reviewers sign what they now see. Approvals that merely lapsed expire it instead
    (`promotions_expire`)."""
    promotion = _lock(promotion)
    if promotion.state == Promotion.State.APPROVED:
        evaluation = status.evaluate(promotion)
        cause = _reopen_cause(promotion, evaluation)
        if cause is not None:
            _reopen(promotion, actor=actor, cause=cause)
    if promotion.awaits_signatures() or promotion.state == Promotion.State.APPROVED:
        _settle(promotion, actor=actor)
    return promotion


def _evidence_label(entry: dict, artifact: dict) -> str:
    named = f" {entry['name']!r}" if entry.get("name") else ""
    return f"EV-{entry['id']} ({entry['type']}{named} for {artifact['name']})"


def _evidence_changes(promotion: Promotion, facts: dict) -> dict[str, list[str]]:
    """The evidence that counts now but did not when the promotion was last allowed, and the reverse (read from the
    decision stored then: records are what was decided)."""
    allowed = Decision.objects.filter(promotion=promotion, decision=Decision.Outcome.ALLOWED).order_by("-id").first()
    then_facts = (allowed.inputs.get("facts") if allowed else None) or {}

    def counted(of: dict) -> dict[int, str]:
        return {e["id"]: _evidence_label(e, a) for a in of.get("artifacts") or [] for e in a.get("evidence") or []}

    now, then = counted(facts), counted(then_facts)
    if not then:
        return {"new": [], "withdrawn": []}
    return {
        "new": [label for pk, label in sorted(now.items()) if pk not in then],
        "withdrawn": [label for pk, label in sorted(then.items()) if pk not in now],
    }


def _reopen_cause(promotion: Promotion, evaluation: status.Evaluation) -> dict | None:
    """Why an approved promotion no longer stands — the evidence that changed, the blocking gates that fail, the
    approvals that no longer count — or None while it stands or its approvals only lapsed."""
    answer, inputs = evaluation.answer, evaluation.inputs
    if answer["decision"] == "allowed":
        return None
    failing = [g for g in answer["gates"] if g["blocking"] and g["status"] != gates.PASS]
    standing = [s for s in inputs["signatures"] if s["meaning"] == "approved" and not s["invalidated"]]
    retired = [
        s
        for s in standing
        if s["policy_version"] != inputs["policy_version"]
        or (s["evidence_sha256"] and s["evidence_sha256"] != inputs["evidence_sha256"])
    ]
    if not failing and not retired:
        return None
    changes = _evidence_changes(promotion, inputs["facts"])
    parts = []
    changed = [f"new {', '.join(changes['new'])}"] if changes["new"] else []
    changed += [f"no longer counting {', '.join(changes['withdrawn'])}"] if changes["withdrawn"] else []
    if changed:
        parts.append("the evidence changed since approval: " + "; ".join(changed))
    parts.extend(f"gate {g['id']} {g['status']}: {g['detail']}" for g in failing)
    if any(s["policy_version"] != inputs["policy_version"] for s in standing):
        parts.append(f"policy v{inputs['policy_version']} was activated after approval")
    return {
        "reason": "; ".join(parts) or "; ".join(answer["reasons"]),
        "evidence": changes,
        "failing_gates": [g["id"] for g in failing],
        "missing": answer["approvals"]["missing"],
    }


def _reopen(promotion: Promotion, *, actor: User | None, cause: dict) -> None:
    """An approved promotion whose inputs changed goes back to being judged: its approvals were given over what no
    longer holds, so they are invalidated (signed again over what the reviewers now see) and it is reopened."""
    reason = cause["reason"][:2000]
    standing = list(
        selectors.promotion_signatures(promotion).filter(
            meaning=Signature.Meaning.APPROVED, invalidated_at__isnull=True
        )
    )
    esign.signatures_invalidate_these(
        standing, subject=promotion, actor=actor, reason=f"{promotion.human_id} reopened after approval: {reason}"
    )
    promotion.state = Promotion.State.REOPENED
    promotion.reopened_at = timezone.now()
    promotion.reopen_reason = reason
    promotion.save(update_fields=["state", "reopened_at", "reopen_reason"])
    audit.record(
        actor=actor,
        action="promotion.reopened",
        obj=promotion,
        before={"state": "approved"},
        after={
            "state": "reopened",
            "evidence": cause["evidence"],
            "failing_gates": cause["failing_gates"],
            "missing": cause["missing"],
            "invalidated_signatures": [s.human_id for s in standing],
        },
        reason=reason[:1000],
    )


def promotions_refresh(*, promotion_ids: list[int], actor: User | None) -> list[str]:
    """Re-judge these promotions, each in its own transaction (a task queued on commit calls this)."""
    refreshed = []
    for promotion in Promotion.objects.filter(pk__in=promotion_ids, state__in=Promotion.OPEN_STATES).order_by("pk"):
        refreshed.append(f"{promotion.human_id} {promotion_refresh(promotion=promotion, actor=actor).state}")
    return refreshed


# ---------------------------------------------------------------- stored decisions


def decision_record(
    *, artifact: Artifact, environment: Environment, promotion: Promotion | None, evaluation: status.Evaluation
) -> Decision:
    """Store the status answer for a digest and environment when it differs from the last one stored (DESIGN §6:
    records are what was decided); return the decision that now stands."""
    answer = evaluation.answer
    answer_sha = status.answer_sha256(answer)
    last = selectors.latest_decision(artifact_id=artifact.pk, environment_id=environment.pk)
    if (
        last is not None
        and last.policy_version_id == evaluation.policy.pk
        and status.answer_sha256(
            {"decision": last.decision, "gates": last.gates, "approvals": last.approvals, "reasons": last.reasons}
        )
        == answer_sha
    ):
        return last
    decision = Decision.objects.create(
        artifact=artifact,
        environment=environment,
        promotion=promotion,
        decision=answer["decision"],
        gates=answer["gates"],
        approvals=answer["approvals"],
        reasons=answer["reasons"],
        policy_version=evaluation.policy,
        inputs=evaluation.inputs,
        inputs_sha256=canonical_sha256(evaluation.inputs),
        answer_sha256=answer_sha,
        evaluated_at=evaluation.at,
    )
    # A decision is a record (DESIGN §6): the trail holds its seal, so a rewritten outcome is named.
    audit.record(
        actor=None,
        action="decision.recorded",
        obj=decision,
        product_key=artifact.product.key,
        after={
            "decision": decision.decision,
            "artifact": artifact.digest,
            "environment": environment.key,
            "promotion": promotion.human_id if promotion else None,
            "policy_version": evaluation.policy.version,
            "answer_sha256": answer_sha,
        },
        seal=[decision],
    )
    return decision


def decision_for_deployment(*, artifact: Artifact, environment: Environment) -> Decision | None:
    """The decision a deployment acted on: the status answer at this moment, stored if it is new."""
    policy = active_policy(artifact.product)
    if policy is None:
        return None
    promotion = status.promotion_for_artifact(artifact=artifact, environment=environment)
    if promotion is not None:
        return decision_record(
            artifact=artifact, environment=environment, promotion=promotion, evaluation=status.evaluate(promotion)
        )
    now = timezone.now()
    inputs = status.status_inputs(promotion=None, environment=environment, policy=policy)
    answer = status.answer_from(policy=policy, environment_key=environment.key, inputs=inputs, at=now)
    evaluation = status.Evaluation(policy=policy, inputs=inputs, answer=answer, at=now)
    return decision_record(artifact=artifact, environment=environment, promotion=None, evaluation=evaluation)


def _lock(promotion: Promotion) -> Promotion:
    return (
        Promotion.objects.select_for_update(of=("self",))
        .select_related("release", "release__product", "environment", "requester", "policy_version")
        .get(pk=promotion.pk)
    )


# ---------------------------------------------------------------- signatures


def promotion_sign(
    *,
    promotion: Promotion,
    signer: User,
    username: str,
    password: str,
    meaning: str,
    seen_sha256: str,
    comment: str = "",
    role: str = "",
) -> Signature:
    """Part 11 signature on a promotion: re-authenticate, then approve or reject (SoD refusals are 403 and audited).

    `seen_sha256` is the hash of `selectors.promotion_signing_content` the reviewer was shown: evidence that arrived
    or a policy activated since changes it, and the signature is refused (409 `content_changed`)."""
    return esign.sign(
        signer=signer,
        username=username,
        password=password,
        seen_sha256=seen_sha256,
        subject_human_id=promotion.human_id,
        product=promotion.release.product,
        under_lock=lambda seen: _promotion_sign(
            promotion=promotion, signer=signer, meaning=meaning, comment=comment, role=role, seen=seen
        ),
    )


@transaction.atomic
def _promotion_sign(
    *, promotion: Promotion, signer: User, meaning: str, comment: str, role: str, seen: esign.Seen
) -> Signature:
    # 1. Lock and check the state: racing signers queue here.
    promotion = _lock(promotion)
    product = promotion.release.product
    if not promotion.awaits_signatures():
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
        refusal = sod.refusal(promotion=promotion, signer=signer)
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
        needs = ", ".join(Role.in_sentence(r) for r in required) or "no signatures"
        raise NotPermitted(
            f"{promotion.human_id} ({promotion.tier} tier, into {promotion.environment.key}) needs: {needs}; "
            f"you hold {', '.join(sorted(held)) or 'no role'} on {product.key}"
        )
    if role and role not in eligible:
        raise NotPermitted(f"you cannot sign as {role!r} here; you may sign as {', '.join(eligible)}")
    # 4. The content is what the signer saw: digests, the manifest, the policy version, the evidence snapshot
    # (the same function computed the hash the page and the API showed them).
    content = selectors.promotion_signing_content(promotion, policy=policy)
    # 5. One person counts once; a lapsed signature of theirs (expired, older policy, or over evidence that has
    # changed since) is retired so they can sign what they now see.
    standing = selectors.promotion_signatures(promotion).filter(
        signer=signer, meaning=meaning, invalidated_at__isnull=True
    )
    for previous in standing:
        seen_before = (previous.content or {}).get("evidence_sha256")
        if (
            previous.is_valid()
            and previous.policy_version_id == policy.pk
            and seen_before in (None, content["evidence_sha256"])
        ):
            raise InvalidState(f"you have already signed {promotion.human_id} as {meaning}; one person counts once")
        esign.signatures_invalidate_these(
            [previous],
            subject=promotion,
            actor=signer,
            reason="expired, made under an older policy, or over evidence that has changed; signed again",
        )
    if not role:
        signed_roles = {s.role for s in selectors.promotion_signatures(promotion).filter(invalidated_at__isnull=True)}
        role = next((r for r in eligible if r not in signed_roles), eligible[0])
    approval_rule = document.environment(promotion.environment.key).approval
    hours = approval_rule.valid_for_hours if approval_rule else None
    signature = esign.signature_create(
        subject=promotion,
        product=product,
        signer=signer,
        meaning=meaning,
        role=role,
        comment=comment,
        content=content,
        seen=seen,
        policy_version=policy,
        expires_at=timezone.now() + timedelta(hours=hours)
        if (hours and meaning == Signature.Meaning.APPROVED)
        else None,
    )
    # 6. Decide.
    if meaning == Signature.Meaning.REJECTED:
        before = promotion.state
        promotion.state = Promotion.State.REJECTED
        promotion.rejection_reason = comment
        promotion.decided_at = timezone.now()
        promotion.save(update_fields=["state", "rejection_reason", "decided_at"])
        audit.record(
            actor=signer,
            action="promotion.rejected",
            obj=promotion,
            before={"state": before},
            after={"state": "rejected"},
            reason=comment,
        )
    _settle(promotion, actor=signer)
    return signature


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
        answer = status.evaluate(promotion, at=at).answer
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
            _settle(promotion, actor=None)
            expired.append(promotion.human_id)
    return expired
