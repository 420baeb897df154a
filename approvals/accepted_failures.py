"""Accepted test failures: a reviewer's signed record that one failing test may ship in one release.

A failing test is accepted for a specific release by a Part 11 signature (meaning "failure accepted") over what the
reviewer was shown — the release, the test and each failing result with its report — with a justification and, where
the policy asks, a problem report. The policy's `tests.accept_failures` says for which tiers failures may be
accepted at all and who signs. The tests gate then counts an accepted failure as accepted, not passed and not
failed; packets list each acceptance with its signature (docs/approvals.md, "Accepted test failures").
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from approvals import services
from approvals.models import AcceptedFailure, Promotion, Release, test_key
from changecontrol import audit, esign
from changecontrol.models import PolicyVersion, Role, Signature, User, record_type
from changecontrol.roles import roles_of
from changecontrol.services import active_policy
from common.errors import Conflict, InvalidState, NotPermitted, ValidationFailed
from evidence.models import Evidence, TestResult

FAILING = (TestResult.Status.FAILED, TestResult.Status.ERROR)
# A failure message is shown and signed, shortened: the report itself is the record of the whole text.
MESSAGE_CHARS = 500


def failing_results(release: Release) -> QuerySet[TestResult]:
    """The failed or errored results among the reports that count for the release's artifacts."""
    counting = Evidence.objects.counting().filter(artifact__releases=release)
    return (
        TestResult.objects.filter(evidence__in=counting, status__in=FAILING)
        .select_related("artifact")
        .order_by("classname", "name", "evidence_id", "id")
    )


def failing_tests(release: Release) -> list[dict[str, Any]]:
    """Each failing test of the release, once, with its failing results and the acceptance it has (if any)."""
    accepted = {(a.classname, a.name): a for a in accepted_failures_of(release)}
    tests: dict[tuple[str, str], dict[str, Any]] = {}
    for result in failing_results(release):
        key = (result.classname, result.name)
        entry = tests.setdefault(
            key,
            {
                "classname": result.classname,
                "name": result.name,
                "test": test_key(*key),
                "failures": [],
                "accepted": accepted.get(key),
            },
        )
        entry["failures"].append(
            {
                "evidence": f"EV-{result.evidence_id}",
                "artifact": result.artifact.digest,
                "artifact_name": result.artifact.name,
                "status": result.status,
                "message": result.message[:MESSAGE_CHARS],
            }
        )
    return list(tests.values())


def accepted_failures_of(release: Release) -> QuerySet[AcceptedFailure]:
    return AcceptedFailure.objects.filter(release=release).select_related("accepted_by", "policy_version")


def acceptance_signatures(acceptances) -> dict[int, Signature]:
    """The standing "failure accepted" signature of each acceptance, by acceptance id (one query)."""
    ids = [a.pk for a in acceptances]
    return {
        s.subject_id: s
        for s in Signature.objects.filter(
            subject_type=record_type(AcceptedFailure), subject_id__in=ids, meaning=Signature.Meaning.FAILURE_ACCEPTED
        ).select_related("signer")
    }


def release_tier(release: Release, policy: PolicyVersion) -> str:
    """The release's tier: its riskiest change request's (the tier its promotions carry)."""
    return services.tier_of(release, policy)


def accept_failure_signing_content(
    release: Release, *, classname: str, name: str, policy: PolicyVersion | None = None
) -> dict[str, Any]:
    """What a "failure accepted" signature is bound to and what its signer is shown (Part 11 §11.70): the release as
    frozen, the test, and each failing result with the report it came from. A new report with another failure of
    the test changes it, and a signature over the older view is refused."""
    policy = policy or active_policy(release.product)
    failures = next(
        (t["failures"] for t in failing_tests(release) if (t["classname"], t["name"]) == (classname, name)), []
    )
    return {
        "product": release.product.key,
        "version": release.version,
        "manifest_sha256": release.manifest_sha256,
        "test": test_key(classname, name),
        "classname": classname,
        "name": name,
        "failures": failures,
        "tier": release_tier(release, policy) if policy is not None else "",
        "policy_version": policy.version if policy is not None else None,
    }


def may_accept(user: User, release: Release, policy: PolicyVersion | None) -> bool:
    """Whether the page offers this person the signing dialog (the service decides, and says why not)."""
    if policy is None or not release.is_frozen():
        return False
    rule = policy.document.tests
    return release_tier(release, policy) in rule.accept_failure_tiers and bool(
        set(rule.accept_failure_roles) & roles_of(user, release.product)
    )


def failure_accept(
    *,
    release: Release,
    signer: User,
    username: str,
    password: str,
    seen_sha256: str,
    classname: str,
    name: str,
    justification: str,
    problem_report: str = "",
) -> AcceptedFailure:
    """Accept one failing test for one release with a Part 11 signature; the release's open promotions are judged
    again at once (an accepted failure no longer fails the tests gate)."""
    justification, problem_report = (justification or "").strip(), (problem_report or "").strip()
    if not justification:
        raise ValidationFailed(
            "an accepted failure needs a justification: why this failing test may ship in this release",
            errors={"justification": ["This field is required."]},
        )
    try:
        return esign.sign(
            signer=signer,
            username=username,
            password=password,
            seen_sha256=seen_sha256,
            subject_human_id=f"{release} {test_key(classname, name)}"[:60],
            product=release.product,
            under_lock=lambda seen: _failure_accept(
                release=release,
                signer=signer,
                classname=classname,
                name=name,
                justification=justification,
                problem_report=problem_report,
                seen=seen,
            ),
        )
    except IntegrityError:
        # The unique constraint caught another reviewer accepting the same test at the same moment.
        raise Conflict(f"{test_key(classname, name)} is already accepted for {release}") from None


@transaction.atomic
def _failure_accept(
    *,
    release: Release,
    signer: User,
    classname: str,
    name: str,
    justification: str,
    problem_report: str,
    seen: esign.Seen,
) -> AcceptedFailure:
    # 1. Lock the release: acceptances of it queue here.
    release = Release.objects.select_for_update().select_related("product").get(pk=release.pk)
    product, test = release.product, test_key(classname, name)
    if not release.is_frozen():
        raise InvalidState(
            f"{release} is not frozen yet: request its first promotion, then accept its failures "
            "(what a release holds may still change until then)"
        )
    policy = active_policy(product)
    if policy is None:
        raise InvalidState(f"{product.key} has no active policy, so no failure can be accepted")
    # 2. The policy says whether failures may be accepted at this tier at all, and who signs.
    rule, tier = policy.document.tests, release_tier(release, policy)
    if tier not in rule.accept_failure_tiers:
        allowed = ", ".join(rule.accept_failure_tiers) or "none"
        raise InvalidState(
            f"policy {policy.document.name} v{policy.version} lets no failing test be accepted for a {tier}-tier "
            f"release like {release} (tests.accept_failures.tiers: {allowed})"
        )
    held = roles_of(signer, product)
    eligible = [r for r in rule.accept_failure_roles if r in held]
    if not eligible:
        needs = " or ".join(Role.in_sentence(r) for r in rule.accept_failure_roles)
        raise NotPermitted(f"accepting a failing test of {product.key} needs a {needs} (tests.accept_failures.roles)")
    if rule.problem_report_required and not problem_report:
        raise ValidationFailed(
            f"policy {policy.document.name} v{policy.version} asks every accepted failure to name the problem "
            "report that tracks it (tests.accept_failures.problem_report: required)",
            errors={"problem_report": ["This field is required."]},
        )
    # 3. Only a test that fails in the release's counted reports can be accepted, once.
    content = accept_failure_signing_content(release, classname=classname, name=name, policy=policy)
    if not content["failures"]:
        raise ValidationFailed(
            f"{test} has no failed or errored result in the reports that count for {release}: nothing to accept",
            errors={"name": ["No failing result of this test."]},
        )
    if AcceptedFailure.objects.filter(release=release, classname=classname, name=name).exists():
        raise Conflict(f"{test} is already accepted for {release}")
    # 4. The record, its signature over what the reviewer saw, and the seal of the record in its audit event.
    acceptance = AcceptedFailure.objects.create(
        release=release,
        classname=classname,
        name=name,
        failures=content["failures"],
        justification=justification,
        problem_report=problem_report,
        tier=tier,
        policy_version=policy,
        accepted_by=signer,
    )
    signature = esign.signature_create(
        subject=acceptance,
        product=product,
        signer=signer,
        meaning=Signature.Meaning.FAILURE_ACCEPTED,
        role=eligible[0],
        comment=justification,
        content=content,
        seen=seen,
        policy_version=policy,
    )
    audit.record(
        actor=signer,
        action="accepted_failure.recorded",
        obj=acceptance,
        product_key=product.key,
        after={
            "release": release.version,
            "test": test,
            "failures": [f["evidence"] for f in content["failures"]],
            "tier": tier,
            "problem_report": problem_report,
            "signature": signature.human_id,
        },
        reason=justification[:1000],
        seal=[acceptance],
    )
    # 5. The release's open promotions are judged again with the failure accepted.
    for promotion in Promotion.objects.filter(release=release, state__in=Promotion.OPEN_STATES).order_by("pk"):
        services.promotion_refresh(promotion=promotion, actor=signer)
    return acceptance
