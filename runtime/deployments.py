"""Writes of the runtime record: deployments (normal, rollback, break-glass) and break-glass retrospective reviews.

A deployment is a fact: recorded whenever someone who deploys reports it — even of a digest no build registered —
and flagged unauthorised when the status decision at that moment was not "allowed" (DESIGN §4.6). Who may report
one is a question of role (DESIGN §8: auditors change nothing): a CI service account with `deployments:write`, or a
person who deploys (SRE, release manager). A *claim* of break-glass is checked too: only the roles the policy names
may make it, with a justification, and never for a change they wrote — a refused claim is 403 naming the rule and
audited, and the fact is still recorded, unauthorised.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from alerts.services import alert_raise
from approvals import services
from approvals import status as approval_status
from approvals.models import Promotion, Release
from changecontrol import audit, esign
from changecontrol.models import Environment, Product, Role, Signature, User
from changecontrol.roles import roles_of
from changecontrol.services import active_policy
from common.canonical import jsonable
from common.digests import digest_or_400
from common.errors import DomainError, InvalidState, NotPermitted, SeparationOfDutiesViolation, ValidationFailed
from common.links import check_url
from evidence.models import Artifact, BuildCommit
from runtime import selectors
from runtime.models import BreakGlassReview, Deployment

DEFAULT_BREAK_GLASS_ROLES = (Role.SRE,)
DEFAULT_REVIEW_HOURS = 24
# The people who put software into environments, and so may say it happened (deployments) or what runs (snapshots).
DEPLOYER_ROLES = (Role.SRE, Role.RELEASE_MANAGER)
READ_ONLY_ROLES = frozenset({Role.AUDITOR})


# ---------------------------------------------------------------- questions the rules ask


def deploys_to(person: User, product: Product) -> bool:
    """Whether this person puts software into the product's environments, and so may say what happened there."""
    # A service account reaches here only through a token scoped to the product; the API checks the token's scope.
    return person.is_service_account or bool(roles_of(person, product) & set(DEPLOYER_ROLES))


def may_record_deployment(person: User, product: Product, *, kind: str = Deployment.Kind.NORMAL) -> bool:
    """Whether this person may tell Custody that something of this kind reached an environment of the product."""
    if deploys_to(person, product):
        return True
    # Whoever went around the pipeline in an emergency must be able to say so: a break-glass claim from anyone who
    # works on the product is heard (recorded, alerted, reviewed) even when the break-glass rules then refuse it.
    return kind == Deployment.Kind.BREAK_GLASS and bool(roles_of(person, product) - READ_ONLY_ROLES)


def not_a_deployer(person: User, product: Product, *, action: str, scope: str) -> NotPermitted:
    """The 403 for someone who may see the product but does not deploy to it (auditors among them), naming the need."""
    held = ", ".join(sorted(roles_of(person, product))) or "no role"
    return NotPermitted(
        f"{action} in {product.key} needs the role {' or '.join(DEPLOYER_ROLES)} there, or a CI service account's "
        f"token with the scope {scope}; you hold {held}",
        required_roles=list(DEPLOYER_ROLES),
        required_scope=scope,
    )


def deployed_digest(value: str) -> str:
    """The digest as reported, normalised; 400 unless it is sha256:<64 hex> (a fact needs a name for what ran)."""
    return digest_or_400(value)


def unregistered_reason(*, digest: str, product: Product) -> str:
    """Why a deployment of a digest no build of the product registered is unauthorised, and what to do about it."""
    return (
        f"{digest} was never registered by a build of {product.key}: unknown provenance, so nothing shows what it "
        f"contains or that it was tested and approved; register its build and artifact "
        f"(POST /api/v1/products/{product.key}/artifacts) and promote it, or roll back to an approved digest"
    )


def break_glass_rule(product) -> tuple[tuple[str, ...], int]:
    """(roles that may break glass, hours allowed for the retrospective review) from the active policy."""
    policy = active_policy(product)
    rule = getattr(policy.document, "break_glass", None) if policy is not None else None
    if rule is None:
        return DEFAULT_BREAK_GLASS_ROLES, DEFAULT_REVIEW_HOURS
    return tuple(rule.roles) or DEFAULT_BREAK_GLASS_ROLES, int(rule.retrospective_review_hours)


def release_for_deployment(*, artifact: Artifact, environment: Environment, answer: dict | None) -> Release | None:
    """The release the deployment ships: the one the status answer judged, else the newest release holding it."""
    version = (answer or {}).get("release")
    if version:
        release = Release.objects.filter(product_id=artifact.product_id, version=version).first()
        if release is not None:
            return release
    return Release.objects.filter(artifacts=artifact).order_by("-created_at", "-id").first()


def previously_approved_release(*, artifact: Artifact, environment: Environment) -> tuple[Release, str] | None:
    """A release holding this digest that was approved for this environment before (for rollbacks), and how."""
    promotion = (
        Promotion.objects.filter(environment=environment, release__artifacts=artifact, decided_at__isnull=False)
        .exclude(state=Promotion.State.REJECTED)
        .select_related("release")
        .order_by("-decided_at", "-id")
        .first()
    )
    if promotion is not None:
        return (
            promotion.release,
            f"{promotion.human_id} approved it for {environment.key} on {promotion.decided_at:%Y-%m-%d %H:%M} UTC",
        )
    earlier = (
        Deployment.objects.filter(environment=environment, artifact=artifact, authorised=True)
        .select_related("release")
        .order_by("-deployed_at")
        .first()
    )
    if earlier is not None and earlier.release is not None:
        return earlier.release, f"{earlier.human_id} deployed it to {environment.key} authorised"
    return None


def break_glass_refusal(
    *, deployer: User, product: Product, artifact: Artifact | None, release: Release | None
) -> tuple[str, str] | None:
    """The first rule that forbids this person to break glass for this artifact, as (rule, sentence), or None."""
    allowed, _ = break_glass_rule(product)
    held = roles_of(deployer, product)
    if not set(allowed) & set(held):
        return (
            "break_glass.role_required",
            f"break-glass on {product.key} needs the role {' or '.join(allowed)} (policy break_glass.roles); "
            f"you hold {', '.join(sorted(held)) or 'no role'}",
        )
    # No single person both writes the code and bypasses the pipeline with it.
    build_ids = {artifact.build_id} if artifact is not None else set()
    if release is not None:
        build_ids |= set(release.artifacts.values_list("build_id", flat=True))
    email = (deployer.email or "").strip().lower()
    if email and BuildCommit.objects.filter(build_id__in=build_ids, author_email__iexact=email).exists():
        return (
            "break_glass.commit_author_cannot_deploy",
            f"you ({email}) authored a commit in what this break-glass would ship, so someone else must break glass",
        )
    if release is not None:
        for change_request in release.change_requests.all():
            if change_request.requester_id == deployer.pk or change_request.authors.filter(pk=deployer.pk).exists():
                return (
                    "break_glass.change_author_cannot_deploy",
                    f"you requested or wrote {change_request.human_id}, which {release} delivers, "
                    "so someone else must break glass",
                )
    return None


def _refuse_break_glass(*, deployer: User, deployment: Deployment, rule: str, detail: str):
    """Audit the refused claim in its own transaction (it survives the refusal), then raise 403 naming the rule.

    The deployment itself is already recorded (a fact is never refused), flagged unauthorised and alerted;
    what is refused is the claim that it was an authorised emergency bypass (DESIGN §8: SoD refusals are 403).
    """
    with transaction.atomic():
        audit.record(
            actor=deployer,
            action="deployment.break_glass_refused",
            obj=deployment,
            reason=f"{rule}: {detail}",
            after={"artifact": deployment.digest, "environment": deployment.environment.key, "rule": rule},
        )
    detail = f"{detail}. The deployment was recorded as {deployment.human_id} and flagged unauthorised."
    error = NotPermitted if rule == "break_glass.role_required" else SeparationOfDutiesViolation
    raise error(detail, rule=rule, deployment=deployment.human_id)


def _status_at_this_moment(*, artifact: Artifact | None, digest: str, environment: Environment) -> dict[str, Any]:
    """The status API's answer now; a failure to decide is "blocked"."""
    if artifact is None:
        # No build registered the digest: there is nothing to evaluate, and the answer says why.
        return {
            "decision": "blocked",
            "product": environment.product.key,
            "release": None,
            "promotion": None,
            "environment": environment.key,
            "policy": None,
            "gates": [],
            "approvals": {},
            "reasons": [unregistered_reason(digest=digest, product=environment.product)],
            "evaluated_at": timezone.now().isoformat(),
        }
    try:
        return approval_status.status_answer(artifact=artifact, environment_key=environment.key)
    except DomainError as error:
        return {
            "decision": "blocked",
            "product": artifact.product.key,
            "release": None,
            "promotion": None,
            "environment": environment.key,
            "policy": None,
            "gates": [],
            "approvals": {},
            "reasons": [f"no decision could be made: {error.detail}"],
            "evaluated_at": timezone.now().isoformat(),
        }


# ---------------------------------------------------------------- deployments


def deployment_record(
    *,
    environment: Environment,
    deployer: User,
    artifact: Artifact | None = None,
    digest: str = "",
    kind: str = Deployment.Kind.NORMAL,
    pipeline_url: str = "",
    justification: str = "",
) -> Deployment:
    """Record that a digest reached an environment, judged by the status decision at this moment; alert if not allowed.

    Give the registered `artifact`, or the `digest` as reported: a digest no build of the product registered is
    recorded too, unauthorised for its unknown provenance.
    """
    if kind not in Deployment.Kind.values:
        raise ValidationFailed(
            f"kind must be one of {', '.join(Deployment.Kind.values)}, not {kind!r}", errors={"kind": [str(kind)]}
        )
    # The deployment page links it: a bad URL is bad input (400), not a fact to record.
    pipeline_url = check_url(pipeline_url, field="pipeline_url", blank=True)
    product = environment.product
    # 1. Who: someone who deploys here (auditors and other readers change nothing, DESIGN §8).
    if not may_record_deployment(deployer, product, kind=kind):
        raise not_a_deployer(deployer, product, action="recording a deployment", scope="deployments:write")
    # 2. What: the artifact of that digest this product registered, if any (another product's is none of its
    # business: its digest is recorded as one no build of this product registered).
    if artifact is None:
        digest = deployed_digest(digest)
        artifact = Artifact.objects.select_related("product").filter(digest=digest, product=product).first()
    elif digest and deployed_digest(digest) != artifact.digest:
        raise ValidationFailed(f"digest {digest} is not the digest of the artifact {artifact.digest}")
    if artifact is not None and artifact.product_id != product.pk:
        raise ValidationFailed(
            f"{artifact.digest} belongs to {artifact.product.key}, which has no environment {environment}"
        )
    digest = artifact.digest if artifact is not None else digest
    justification = (justification or "").strip()
    # 3. The decision at this moment: the status API's own answer (never a second implementation of the gates).
    answer = _status_at_this_moment(artifact=artifact, digest=digest, environment=environment)
    release = (
        release_for_deployment(artifact=artifact, environment=environment, answer=answer)
        if artifact is not None
        else None
    )
    # 4. A break-glass claim is checked before anything is written; a refused one is still recorded as a fact.
    if kind == Deployment.Kind.BREAK_GLASS:
        if not justification:
            raise ValidationFailed(
                "a break-glass deployment needs a justification: say what was broken and why the pipeline could not wait",
                errors={"justification": ["This field is required for break-glass."]},
            )
        refusal = break_glass_refusal(deployer=deployer, product=product, artifact=artifact, release=release)
    else:
        refusal = None
    deployment = _deployment_write(
        artifact=artifact,
        digest=digest,
        environment=environment,
        deployer=deployer,
        kind=kind,
        pipeline_url=pipeline_url,
        justification=justification,
        answer=answer,
        release=release,
        refusal=refusal,
    )
    if refusal is not None:
        _refuse_break_glass(deployer=deployer, deployment=deployment, rule=refusal[0], detail=refusal[1])
    if deployment.artifact_id is not None:
        advisories_match_on_commit([deployment.artifact_id])
    return deployment


def advisories_match_on_commit(artifact_ids: list[int]) -> None:
    """Once the fact is committed, match stored OSV advisories against what now runs (runtime.osv, a task)."""
    from runtime.tasks import match_advisories  # noqa: PLC0415  # the tasks module imports this one

    transaction.on_commit(lambda: match_advisories.delay(sorted(artifact_ids)))


@transaction.atomic
def _deployment_write(
    *, artifact, digest, environment, deployer, kind, pipeline_url, justification, answer, release, refusal=None
) -> Deployment:
    # 1. Serialise deployments into one environment (the log's order is the order facts arrived).
    environment = Environment.objects.select_for_update().select_related("product").get(pk=environment.pk)
    product = environment.product
    # The decision this deployment acted on, stored with it (a status read stores nothing).
    decision = services.decision_for_deployment(artifact=artifact, environment=environment) if artifact else None
    # 2. Authorised or not, by kind.
    reasons: list[str] = []
    if artifact is None:
        # No release, promotion or rollback approval can name a digest no build registered, whatever the kind.
        authorised = False
        reasons.extend(answer["reasons"])
    elif kind == Deployment.Kind.ROLLBACK:
        approved = previously_approved_release(artifact=artifact, environment=environment)
        authorised = approved is not None
        if approved is not None:
            release = approved[0]
            reasons.append(f"rollback to {release}, approved before: {approved[1]}")
        else:
            reasons.append(
                f"rollback to a digest no release approved for {environment.key} before: "
                "a rollback is authorised only to a release previously approved for that environment"
            )
    else:
        authorised = answer["decision"] == "allowed"
        if not authorised:
            reasons.append(f"the status decision at deployment was {answer['decision']}, not allowed")
            reasons.extend(answer.get("reasons") or [])
    if kind == Deployment.Kind.BREAK_GLASS:
        reasons.insert(0, f"break-glass by {deployer.printed_name}: {justification}")
    if refusal is not None:
        reasons.insert(0, f"break-glass refused by rule {refusal[0]}: {refusal[1]}")
    deployment = Deployment.objects.create(
        product=product,
        environment=environment,
        artifact=artifact,
        digest=digest,
        release=release,
        pipeline_url=(pipeline_url or "")[:500],
        deployer=deployer,
        deployed_at=timezone.now(),
        kind=kind,
        justification=justification,
        decision=decision,
        decision_snapshot=jsonable(answer),
        authorised=authorised,
        reasons=reasons,
    )
    audit.record(
        actor=deployer,
        action="deployment.recorded",
        obj=deployment,
        after={
            "artifact": digest,
            "registered": artifact is not None,
            "environment": environment.key,
            "kind": kind,
            "authorised": authorised,
            "decision": answer["decision"],
            "release": release.version if release else None,
            "pipeline_url": deployment.pipeline_url,
        },
        reason=justification,
        seal=[deployment],
    )
    # 3. An authorised normal deployment of an approved promotion moves it to deployed.
    promotion_id = answer.get("promotion")
    if authorised and kind == Deployment.Kind.NORMAL and promotion_id:
        promotion = Promotion.objects.filter(pk=int(promotion_id.removeprefix("PRM-"))).first()
        if promotion is not None and promotion.state == Promotion.State.APPROVED:
            services.promotion_mark_deployed(promotion=promotion, actor=deployer)
    # 4. Tell people at once (the outbox delivers after commit).
    body = {
        "deployment": deployment.human_id,
        "environment": environment.key,
        "artifact": f"{artifact.name} {digest}" if artifact is not None else f"{digest} (never registered)",
        "release": str(release) if release else "none",
        "deployer": deployer.printed_name,
        "reasons": "; ".join(reasons)[:1000],
    }
    if kind == Deployment.Kind.BREAK_GLASS:
        _, hours = break_glass_rule(product)
        review = BreakGlassReview.objects.create(
            deployment=deployment, product=product, due_at=deployment.deployed_at + timedelta(hours=hours)
        )
        audit.record(
            actor=deployer,
            action="break_glass_review.due",
            obj=review,
            after={"deployment": deployment.human_id, "due_at": review.due_at},
            seal=[review],
        )
        alert_raise(
            product=product,
            event_kind="break_glass",
            subject=f"{deployment.human_id}: break-glass into {environment.key} by {deployer.printed_name}",
            body={**body, "justification": justification, "review_due": review.due_at.isoformat()},
            dedupe_key=f"deployment:{deployment.pk}",
        )
    if refusal is not None or (kind != Deployment.Kind.BREAK_GLASS and not authorised):
        alert_raise(
            product=product,
            event_kind="unauthorised_deployment",
            subject=f"{deployment.human_id}: unauthorised {deployment.get_kind_display().lower()} deployment "
            f"into {environment.key}",
            body=body,
            dedupe_key=f"deployment:{deployment.pk}",
        )
    return deployment


# ---------------------------------------------------------------- break-glass retrospective review


def break_glass_review_sign(
    *, review: BreakGlassReview, signer: User, username: str, password: str, seen_sha256: str, findings: str
) -> Signature:
    """A quality reviewer's Part 11 signature closing a break-glass review (the deployer never reviews their own).

    `seen_sha256` is the hash of `selectors.break_glass_review_signing_content` the reviewer was shown; the findings
    are the reviewer's own words, kept as the signature's comment and the review's findings."""
    return esign.sign(
        signer=signer,
        username=username,
        password=password,
        seen_sha256=seen_sha256,
        subject_human_id=review.human_id,
        product=review.product,
        under_lock=lambda seen: _break_glass_review_sign(
            review=review, signer=signer, findings=(findings or "").strip(), seen=seen
        ),
    )


@transaction.atomic
def _break_glass_review_sign(*, review: BreakGlassReview, signer: User, findings: str, seen: esign.Seen) -> Signature:
    # 1. Lock and check the state.
    review = (
        BreakGlassReview.objects.select_for_update(of=("self",))
        .select_related(
            "deployment", "deployment__environment", "deployment__artifact", "deployment__deployer", "product"
        )
        .get(pk=review.pk)
    )
    if review.state != BreakGlassReview.State.DUE:
        raise InvalidState(
            f"{review.human_id} is {review.get_state_display().lower()}, not due, so it cannot be signed"
        )
    if not findings:
        raise ValidationFailed(
            "a retrospective review needs findings: what happened, whether the change was right, what follows",
            errors={"findings": ["This field is required."]},
        )
    # 2. Separation of duties, then the role.
    if review.deployment.deployer_id == signer.pk:
        raise esign.Refusal(
            "sod.deployer_cannot_review",
            f"you broke glass in {review.deployment.human_id}, so someone else must review it",
        )
    if Role.QUALITY not in roles_of(signer, review.product):
        raise NotPermitted(
            f"a break-glass review is signed by a quality reviewer of {review.product.key}; "
            f"you hold {', '.join(sorted(roles_of(signer, review.product))) or 'no role'}"
        )
    # 3. Sign, then close the review.
    signature = esign.signature_create(
        subject=review,
        product=review.product,
        signer=signer,
        meaning=Signature.Meaning.RETROSPECTIVE_REVIEWED,
        role=Role.QUALITY,
        comment=findings,
        content=selectors.break_glass_review_signing_content(review),
        seen=seen,
        policy_version=active_policy(review.product),
    )
    now = timezone.now()
    overdue = now > review.due_at
    review.state = BreakGlassReview.State.REVIEWED
    review.findings = findings
    review.reviewer = signer
    review.reviewed_at = now
    review.signature = signature
    review.save(update_fields=["state", "findings", "reviewer", "reviewed_at", "signature"])
    audit.record(
        actor=signer,
        action="break_glass_review.reviewed",
        obj=review,
        before={"state": "due", "due_at": review.due_at},
        after={"state": "reviewed", "signature_id": signature.pk, "late": overdue},
        reason=findings,
        seal=[review],
    )
    return signature


@transaction.atomic
def break_glass_reviews_alert_overdue(*, at=None) -> list[str]:
    """Alert every review past its window, once per review per day (Celery beat runs this daily)."""
    at = at or timezone.now()
    alerted = []
    overdue = (
        BreakGlassReview.objects.filter(state=BreakGlassReview.State.DUE, due_at__lt=at)
        .select_related("deployment", "deployment__environment", "product")
        .order_by("due_at")
    )
    for review in overdue:
        hours = int((at - review.due_at).total_seconds() // 3600)
        alert_raise(
            product=review.product,
            event_kind="review_overdue",
            subject=f"{review.human_id}: the retrospective review of {review.deployment.human_id} is overdue",
            body={
                "review": review.human_id,
                "deployment": review.deployment.human_id,
                "environment": review.deployment.environment.key,
                "due_at": review.due_at.isoformat(),
                "overdue_hours": hours,
            },
            dedupe_key=f"review-overdue:{review.pk}:{at:%Y-%m-%d}",
        )
        alerted.append(review.human_id)
    return alerted
