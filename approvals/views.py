"""Pages for reviewers and release managers: pending approvals, promotions, releases, policy history and diff.

Thin views: records come in through `access.get_visible_or_404` (hidden = 404); writes go through services;
a refused action (wrong state, separation of duties, wrong password) becomes a message naming the rule.
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from approvals import accepted_failures, releases, selectors, services
from approvals import status as approval_status
from approvals.models import Promotion, Release
from changecontrol import selectors as cc_selectors
from changecontrol.access import get_visible_or_404, parse_human_id, product_for
from changecontrol.forms import SignForm
from changecontrol.models import Role, Signature
from changecontrol.roles import roles_of
from changecontrol.services import active_policy
from changecontrol.views import refusal_message, sign_dialog, with_changes
from common.errors import DomainError, ValidationFailed
from evidence.models import BuildCommit
from traceability.scope import release_scope

REQUIREMENT_ID = re.compile(r"\bREQ-\d+\b")


def _promotion(request, human_id: str) -> Promotion:
    return get_visible_or_404(
        Promotion.objects.select_related("release", "release__product", "environment", "requester", "policy_version"),
        user=request.user,
        product_field="release__product",
        pk=parse_human_id(human_id, Promotion.HUMAN_PREFIX),
    )


def _release(request, product: str, version: str) -> Release:
    return get_visible_or_404(
        Release.objects.select_related("product", "created_by"),
        user=request.user,
        product__key=product,
        version=version,
    )


@login_required
def pending_approvals(request):
    return render(request, "approvals/pending.html", {"promotions": selectors.pending_approvals_for(request.user)})


def _signature_rows(promotion: Promotion) -> list[dict]:
    rows = []
    for signature in selectors.promotion_signatures(promotion).select_related("policy_version"):
        if signature.invalidated_at:
            status = "invalidated"
        elif signature.expires_at and not signature.is_valid():
            status = "expired"
        else:
            status = "valid"
        rows.append({"signature": signature, "status": status})
    return rows


def _what_changes(promotion: Promotion) -> dict:
    """CRs, commits and requirements this release brings compared with what runs in the target environment now."""
    running = selectors.environment_running(environment=promotion.environment)
    if running is not None and running.pk == promotion.release_id:
        running = None
    release = promotion.release
    mine_builds = {a.build_id for a in release.artifacts.all()}
    their_builds = {a.build_id for a in running.artifacts.all()} if running else set()
    their_commits = set(BuildCommit.objects.filter(build_id__in=their_builds).values_list("sha", flat=True))
    commits = [
        c
        for c in BuildCommit.objects.filter(build_id__in=mine_builds - their_builds).order_by("build_id", "position")
        if c.sha not in their_commits
    ]
    their_crs = set(running.change_requests.values_list("pk", flat=True)) if running else set()
    change_requests = [cr for cr in release.change_requests.order_by("pk") if cr.pk not in their_crs]
    requirements = sorted(
        {m for c in commits for m in REQUIREMENT_ID.findall(c.message)}
        | {m for cr in change_requests for m in REQUIREMENT_ID.findall(cr.affected_items)}
    )
    return {
        "running": running,
        "commits": commits[:200],
        "change_requests": change_requests,
        "requirements": requirements,
    }


@login_required
def promotion_detail(request, promotion_id: str):
    promotion = _promotion(request, promotion_id)
    release, product = promotion.release, promotion.release.product
    status = approval_status.promotion_status(promotion)
    inputs = status.pop("_inputs")
    held = roles_of(request.user, product)
    required = status["approvals"]["required"]
    # Anyone with a working role may try: the server decides, and a refusal names the rule that refused.
    can_sign = promotion.awaits_signatures() and bool(held - {Role.AUDITOR, Role.ADMIN})
    policy = active_policy(product)
    context = {
        "promotion": promotion,
        "release": release,
        "status": status,
        "blocking_gates": [g for g in status["gates"] if g["blocking"]],
        "informational_gates": [g for g in status["gates"] if not g["blocking"]],
        "facts": inputs.get("facts") or {},
        "trace": (inputs.get("facts") or {}).get("trace") or {},
        "change_requests": release.change_requests.order_by("pk"),
        "signatures": _signature_rows(promotion),
        "changes": _what_changes(promotion),
        "events": with_changes(
            cc_selectors.audit_events(user=request.user, product=product.key, object_human_id=promotion.human_id)[:200]
        ),
        "can_sign": can_sign,
        "required_labels": [Role(r).label for r in required],
        "missing_labels": [Role(r).label for r in status["approvals"]["missing"]],
    }
    if can_sign and policy is not None:
        context["sign"] = sign_dialog(
            subject=f"{promotion.human_id}: {release} into {promotion.environment.key}",
            content=selectors.promotion_signing_content(promotion, policy=policy),
            meanings=(Signature.Meaning.APPROVED, Signature.Meaning.REJECTED),
            roles=[Role(r).label for r in required if r in held],
        )
        context["evidence_sha256"] = inputs.get("evidence_sha256", "")
    return render(request, "approvals/promotion.html", context)


@login_required
@require_POST
def promotion_sign(request, promotion_id: str):
    """The signing dialog posts here; the service re-authenticates and applies separation of duties."""
    promotion = _promotion(request, promotion_id)
    form = SignForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        messages.error(request, f"Nothing was signed: {problems}")
        return redirect("promotion", promotion_id=promotion.human_id)
    try:
        signature = services.promotion_sign(promotion=promotion, signer=request.user, **form.signing())
    except DomainError as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, f"Signed: {signature.manifestation}.")
    return redirect("promotion", promotion_id=promotion.human_id)


@login_required
def release_list(request, product: str):
    product = product_for(request, product)
    releases = product.releases.select_related("created_by").prefetch_related("promotions__environment")[:200]
    can_create = Role.RELEASE_MANAGER in roles_of(request.user, product)
    return render(
        request, "approvals/release_list.html", {"product": product, "releases": releases, "can_create": can_create}
    )


@login_required
def release_create(request, product: str):
    product = product_for(request, product)
    if Role.RELEASE_MANAGER not in roles_of(request.user, product):
        messages.error(request, f"Only a release manager of {product.key} can create releases.")
        return redirect("releases", product=product.key)
    form = {"version": "", "artifacts": "", "change_requests": ""}
    if request.method == "POST":
        form = {key: request.POST.get(key, "") for key in form}
        try:
            release = releases.release_create(
                product=product,
                actor=request.user,
                version=form["version"],
                artifact_digests=form["artifacts"].split(),
                change_request_ids=form["change_requests"].replace(",", " ").split(),
            )
        except DomainError as error:
            messages.error(request, refusal_message(error))
        else:
            messages.success(request, f"Release {release} created.")
            return redirect("release", product=product.key, version=release.version)
    recent = product.artifacts.order_by("-id")[:20]
    open_crs = product.change_requests.filter(state__in=("approved", "implemented", "submitted")).order_by("-id")[:50]
    return render(
        request,
        "approvals/release_form.html",
        {
            "product": product,
            "form": form,
            "recent_artifacts": recent,
            "open_crs": open_crs,
            # The browser checks the same rule the service enforces, before the form is sent.
            "version_pattern": releases.RELEASE_VERSION_PATTERN,
            "version_rule": releases.RELEASE_VERSION_RULE,
        },
    )


@login_required
def release_detail(request, product: str, version: str):
    return _release_page(request, _release(request, product, version))


def _release_page(request, release: Release, *, edit: dict | None = None, status: int = 200):
    """The release page; `edit` holds what was typed into the edit card when the service refused it, shown again."""
    held = roles_of(request.user, release.product)
    promotions = release.promotions.select_related("environment", "requester").order_by("id")
    open_envs = {p.environment.key for p in promotions if p.is_open() or p.state == Promotion.State.DEPLOYED}
    environments = [e for e in release.product.environments.all() if e.key not in open_envs]
    context = {
        "release": release,
        "artifacts": selectors.release_artifacts(release),
        "change_requests": release.change_requests.order_by("pk"),
        "promotions": promotions,
        "environments": environments if Role.RELEASE_MANAGER in held else [],
        # Until the first promotion request freezes it, a release manager may still change what it holds.
        "can_edit": not release.is_frozen() and Role.RELEASE_MANAGER in held,
        "scope": release_scope(product=release.product, release_version=release.version),
        "failing_tests": _failing_test_rows(request, release),
        "edit": edit,
        "events": with_changes(
            cc_selectors.audit_events(user=request.user, product=release.product.key, object_human_id=release.human_id)[
                :100
            ]
        ),
    }
    return render(request, "approvals/release_detail.html", context, status=status)


# The failing tests a release page lists (every one is in the packet and the API).
FAILING_TESTS_SHOWN = 100


def _failing_test_rows(request, release: Release) -> list[dict]:
    """The release's failing tests, each with its acceptance and signature, or the signing dialog to accept it."""
    policy = active_policy(release.product)
    tests = accepted_failures.failing_tests(release)[:FAILING_TESTS_SHOWN]
    signatures = accepted_failures.acceptance_signatures([t["accepted"] for t in tests if t["accepted"]])
    may_accept = accepted_failures.may_accept(request.user, release, policy)
    rows = []
    for number, test in enumerate(tests, start=1):
        row = {**test, "signature": signatures.get(test["accepted"].pk) if test["accepted"] else None}
        if may_accept and not test["accepted"]:
            row["dialog_id"] = f"accept-failure-{number}"
            row["problem_report_required"] = policy.document.tests.problem_report_required
            row["sign"] = sign_dialog(
                subject=f"test {test['test']} of {release}",
                content=accepted_failures.accept_failure_signing_content(
                    release, classname=test["classname"], name=test["name"], policy=policy
                ),
                meanings=(Signature.Meaning.FAILURE_ACCEPTED,),
                roles=[Role(r).label for r in policy.document.tests.accept_failure_roles],
            )
        rows.append(row)
    return rows


@login_required
@require_POST
def release_accept_failure(request, product: str, version: str):
    """The "Accept failure…" signing dialog posts here: the justification is the signature's comment."""
    release = _release(request, product, version)
    form = SignForm(request.POST)
    try:
        if not form.is_valid() or form.cleaned_data["meaning"] != Signature.Meaning.FAILURE_ACCEPTED:
            problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
            raise ValidationFailed(problems or "the signature's meaning must be 'failure accepted'")
        signing = form.signing()
        acceptance = accepted_failures.failure_accept(
            release=release,
            signer=request.user,
            username=signing["username"],
            password=signing["password"],
            seen_sha256=signing["seen_sha256"],
            classname=request.POST.get("classname", ""),
            name=request.POST.get("name", ""),
            justification=signing["comment"],
            problem_report=request.POST.get("problem_report", "")[:200],
        )
    except DomainError as error:
        messages.error(request, f"Nothing was signed: {refusal_message(error)}")
    else:
        messages.success(request, f"{acceptance.human_id}: {acceptance.test} accepted for {release}.")
    return redirect(reverse("release", args=[release.product.key, release.version]) + "#accepted-failures")


@login_required
@require_POST
def release_edit(request, product: str, version: str):
    release = _release(request, product, version)
    typed = {key: request.POST.get(key, "") for key in ("artifacts", "change_requests")}
    try:
        releases.release_update(
            release=release,
            actor=request.user,
            artifact_digests=typed["artifacts"].split(),
            change_request_ids=typed["change_requests"].replace(",", " ").split(),
        )
    except DomainError as error:
        # Refused: the page again, with what was typed, so nothing has to be typed twice.
        messages.error(request, f"Nothing was changed: {refusal_message(error)}")
        return _release_page(request, release, edit=typed, status=error.status)
    messages.success(request, f"Release {release} changed.")
    return redirect("release", product=release.product.key, version=release.version)


@login_required
@require_POST
def release_promote(request, product: str, version: str):
    release = _release(request, product, version)
    try:
        promotion = services.promotion_request(
            release=release, environment_key=request.POST.get("environment", ""), actor=request.user
        )
    except DomainError as error:
        messages.error(request, refusal_message(error))
        return redirect("release", product=release.product.key, version=release.version)
    messages.success(request, f"{promotion.human_id} requested.")
    return redirect("promotion", promotion_id=promotion.human_id)
