"""Pages of the core domain: sign-in, products, change requests, signatures, policies, the audit trail.

Thin views: records come in through `access.get_visible_or_404` (hidden = 404), writes go through services,
and a refused action (wrong state, separation of duties, wrong password) becomes a message on the page.
"""

from __future__ import annotations

import difflib
import json
from datetime import UTC, datetime, time
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from changecontrol import esign, selectors, services
from changecontrol.access import get_visible_or_404, parse_human_id, product_for, signature_for, visible_products
from changecontrol.forms import (
    AuditFilterForm,
    ChangeRequestFilterForm,
    ChangeRequestForm,
    ReasonForm,
    SignForm,
    SignInForm,
    humanize,
)
from changecontrol.models import ChangeRequest, PolicyVersion, Product, Role, Signature
from changecontrol.roles import has_role, roles_of
from common.errors import DomainError, SeparationOfDutiesViolation, ValidationFailed

PAGE_SIZE = 50
DEFAULT_TIERS = ("low", "medium", "high", "critical")
PART_11_STATEMENT = "This is the legally binding equivalent of my handwritten signature (21 CFR Part 11)."
MEANING_VERBS = {
    Signature.Meaning.APPROVED: "approve",
    Signature.Meaning.REJECTED: "reject",
    Signature.Meaning.REVIEWED: "confirm that I have reviewed",
    Signature.Meaning.RELEASED: "release",
    Signature.Meaning.BREAK_GLASS_AUTHORISED: "authorise the break-glass deployment of",
    Signature.Meaning.RETROSPECTIVE_REVIEWED: "record my retrospective review of",
    Signature.Meaning.FAILURE_ACCEPTED: "accept, with the justification in my comment, the failure of",
}


# ---------------------------------------------------------------- shared by every page that signs


def sign_dialog(*, subject: str, content: dict, meanings, roles=()) -> dict:
    """What a signing dialog (`_sign_dialog.html`) shows and posts (Part 11 §11.50, §11.70).

    `content` comes from the record type's signing-content selector, the same function its signing service signs
    under the record's lock. The dialog shows each meaning statement (naming the record, its content version and
    the hash of the exact content shown) and the roles, and posts the hash back as `content_sha256`: if the record
    changed in between, the service refuses and nothing is signed.
    """
    digest = esign.content_sha256(content)
    version = content.get("content_version")
    bound = f"content version {version}, sha256 {digest[:12]}…" if version else f"content sha256 {digest[:12]}…"
    return {
        "content_sha256": digest,
        "roles": list(roles),
        "statements": [
            {
                "meaning": meaning,
                "label": Signature.Meaning(meaning).label,
                "statement": (
                    f"By signing I {MEANING_VERBS[meaning]} {subject} ({bound}) exactly as shown on this page. "
                    + PART_11_STATEMENT
                ),
            }
            for meaning in meanings
        ],
    }


def refusal_message(error: DomainError) -> str:
    if isinstance(error, SeparationOfDutiesViolation):
        return f"Refused by rule {error.rule}: {error.detail}"
    return _sentence(error.detail)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


# ---------------------------------------------------------------- the one way in


def _change_request(request, human_id: str) -> ChangeRequest:
    return get_visible_or_404(
        ChangeRequest.objects.select_related("product", "requester", "policy_version"),
        user=request.user,
        pk=parse_human_id(human_id, ChangeRequest.HUMAN_PREFIX),
    )


# ---------------------------------------------------------------- sign-in, home, products


class SignInView(auth_views.LoginView):
    """Sign-in with the Part 11 notice; every failure reads the same (no username enumeration)."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    authentication_form = SignInForm


@login_required
def product_list(request):
    rows = [
        {
            "product": product,
            "roles": sorted(Role(r).label for r in roles_of(request.user, product)),
            "policy": product.active_policies[0] if product.active_policies else None,
            "open_count": product.open_count,
        }
        for product in selectors.products_overview(request.user)
    ]
    return render(request, "changecontrol/product_list.html", {"rows": rows})


# ---------------------------------------------------------------- change requests


@login_required
def change_request_list(request, product: str | None = None):
    scope = product_for(request, product) if product else None
    products = [scope] if scope else list(visible_products(request.user))
    tiers = _tiers_of(scope) if scope else DEFAULT_TIERS
    form = ChangeRequestFilterForm(request.GET or None, tiers=tiers)
    queryset = selectors.change_requests(products=products, filters=form.filters() if request.GET else {})
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    can_open = [p for p in products if has_role(request.user, p, *services.CR_OPENER_ROLES)]
    return render(
        request,
        "changecontrol/change_request_list.html",
        {"product": scope, "form": form, "page": page, "can_open": can_open, "query": _query_without_page(request)},
    )


def _tiers_of(product: Product) -> tuple[str, ...]:
    policy = services.active_policy(product)
    if policy is None:
        return DEFAULT_TIERS
    return tuple(rule.tier for rule in reversed(policy.document.risk.tiers))


def _query_without_page(request) -> str:
    return urlencode([(k, v) for k, v in request.GET.items() if k != "page" and v])


def _require_opener(request, product: Product) -> None:
    # Visible but not allowed to act: 403, not 404 (an auditor can read but never open a change).
    if not has_role(request.user, product, *services.CR_OPENER_ROLES):
        raise PermissionDenied(f"you hold no role on {product.key} that may open or edit change requests")


def _questions(product: Product) -> dict:
    policy = services.active_policy(product)
    return dict(policy.document.risk.questions) if policy else {}


@login_required
def change_request_create(request, product: str):
    product = product_for(request, product)
    _require_opener(request, product)
    questions = _questions(product)
    form = ChangeRequestForm(request.POST or None, questions=questions)
    if request.method == "POST" and form.is_valid():
        try:
            change_request = services.change_request_create(
                product=product, requester=request.user, risk_answers=form.risk_answers() or None, **form.content()
            )
        except DomainError as error:
            form.add_error(None, _sentence(error.detail))
        else:
            messages.success(request, f"{change_request.human_id} was opened as a draft.")
            return redirect("change-request", change_request_id=change_request.human_id)
    return render(
        request,
        "changecontrol/change_request_form.html",
        {"form": form, "product": product, "change_request": None, "has_policy": bool(questions)},
    )


@login_required
def change_request_edit(request, change_request_id: str):
    change_request = _change_request(request, change_request_id)
    _require_opener(request, change_request.product)
    if not change_request.is_editable():
        messages.error(
            request,
            f"{change_request.human_id} is {change_request.get_state_display().lower()} and can no longer be edited.",
        )
        return redirect("change-request", change_request_id=change_request.human_id)
    questions = _questions(change_request.product)
    initial = {field: getattr(change_request, field) for field in services.CR_CONTENT_FIELDS}
    initial.update({f"risk_{q}": a for q, a in (change_request.risk_answers or {}).items()})
    form = ChangeRequestForm(request.POST or None, initial=initial, questions=questions, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            services.change_request_update(
                change_request=change_request,
                actor=request.user,
                risk_answers=form.risk_answers() or None,
                reason=form.cleaned_data.get("reason", ""),
                **form.content(),
            )
        except DomainError as error:
            form.add_error(None, _sentence(error.detail))
        else:
            messages.success(request, f"{change_request.human_id} was saved.")
            return redirect("change-request", change_request_id=change_request.human_id)
    return render(
        request,
        "changecontrol/change_request_form.html",
        {
            "form": form,
            "product": change_request.product,
            "change_request": change_request,
            "has_policy": bool(questions),
        },
    )


@login_required
def change_request_detail(request, change_request_id: str):
    change_request = _change_request(request, change_request_id)
    user, product = request.user, change_request.product
    held = roles_of(user, product)
    state = change_request.state
    approval = services.approval_requirement(change_request)
    signable_roles = ()
    if change_request.tier and change_request.policy_version_id:
        rule = change_request.policy_version.document.change_approval_for(change_request.tier)
        signable_roles = tuple(r for r in rule.roles if r in held)
    actions = {
        "edit": change_request.is_editable() and bool(held & set(services.CR_OPENER_ROLES)),
        "submit": state == "draft" and bool(held & set(services.CR_OPENER_ROLES)),
        "withdraw": state in ("draft", "submitted", "approved")
        and (user.pk == change_request.requester_id or Role.RELEASE_MANAGER in held),
        "implement": state == "approved" and bool(held & {Role.RELEASE_MANAGER, Role.ENGINEER}),
        "close": state == "implemented" and Role.RELEASE_MANAGER in held,
        "sign": state == "submitted" and bool(signable_roles),
    }
    context = {
        "cr": change_request,
        "approval": approval,
        "approval_roles": [Role(r).label for r in approval["roles"]],
        "missing_roles": [Role(r).label for r in approval["missing_roles"]],
        "production_roles": _production_roles(change_request),
        "risk_rows": _risk_rows(change_request),
        "submission_problems": services.submission_problems(change_request) if state == "draft" else [],
        "signatures": selectors.signatures_of(change_request),
        "events": with_changes(
            selectors.audit_events(user=user, product=product.key, object_human_id=change_request.human_id)[:200]
        ),
        "actions": actions,
        "my_roles": sorted(Role(r).label for r in held),
    }
    if actions["sign"]:
        context["sign"] = sign_dialog(
            subject=f"{change_request.human_id} “{change_request.title}”",
            content=selectors.change_request_signing_content(change_request),
            meanings=(Signature.Meaning.APPROVED, Signature.Meaning.REJECTED, Signature.Meaning.REVIEWED),
            roles=[Role(r).label for r in signable_roles],
        )
    return render(request, "changecontrol/change_request_detail.html", context)


def _risk_rows(change_request: ChangeRequest) -> list[tuple[str, str, int | None]]:
    """(question, answer, weight) in the policy's own question order (stored JSON does not keep it)."""
    answers = change_request.risk_answers or {}
    questions = change_request.policy_version.document.risk.questions if change_request.policy_version_id else {}
    ordered = [q for q in questions if q in answers] + [q for q in answers if q not in questions]
    return [(humanize(q), humanize(answers[q]), questions.get(q, {}).get(answers[q])) for q in ordered]


def _production_roles(change_request: ChangeRequest) -> list[str]:
    if not change_request.tier or change_request.policy_version is None:
        return []
    try:
        return [
            Role(r).label
            for r in change_request.policy_version.document.required_roles("production", change_request.tier)
        ]
    except Exception:  # noqa: BLE001 - a policy without a production environment demands nothing there
        return []


def _act(request, change_request_id: str, action, success: str, **kwargs):
    change_request = _change_request(request, change_request_id)
    try:
        action(change_request=change_request, actor=request.user, **kwargs)
    except DomainError as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, success.format(id=change_request.human_id))
    return redirect("change-request", change_request_id=change_request.human_id)


@login_required
@require_POST
def change_request_submit(request, change_request_id: str):
    return _act(request, change_request_id, services.change_request_submit, "{id} was submitted for approval.")


@login_required
@require_POST
def change_request_withdraw(request, change_request_id: str):
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return _act(request, change_request_id, services.change_request_withdraw, "{id} was withdrawn.", reason=reason)


@login_required
@require_POST
def change_request_mark_implemented(request, change_request_id: str):
    return _act(request, change_request_id, services.change_request_mark_implemented, "{id} was marked implemented.")


@login_required
@require_POST
def change_request_close(request, change_request_id: str):
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return _act(request, change_request_id, services.change_request_close, "{id} was closed.", reason=reason)


@login_required
@require_POST
def change_request_sign(request, change_request_id: str):
    """The signing dialog posts here; the service re-authenticates and applies separation of duties."""
    change_request = _change_request(request, change_request_id)
    form = SignForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        messages.error(request, f"Nothing was signed: {problems}")
        return redirect("change-request", change_request_id=change_request.human_id)
    try:
        signature = services.change_request_sign(change_request=change_request, signer=request.user, **form.signing())
    except DomainError as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, f"Signed: {signature.manifestation}.")
    return redirect("change-request", change_request_id=change_request.human_id)


# ---------------------------------------------------------------- the audit trail

AUDIT_CHANGE_ROWS = 8


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 90 else text[:89] + "…"


def with_changes(events) -> list:
    """Give each event a readable `changes` list — (field, before, after) — instead of raw JSON blobs."""
    rows = list(events)
    for event in rows:
        before = event.before if isinstance(event.before, dict) else {}
        after = event.after if isinstance(event.after, dict) else {}
        if before:
            keys = [k for k in after if before.get(k) != after[k]] + [k for k in before if k not in after]
        else:
            keys = list(after)
        changes = [
            {
                "field": key,
                "before": _short(before[key]) if key in before else None,
                "after": _short(after[key]) if key in after else None,
            }
            for key in keys
        ]
        event.changes, event.more_changes = changes[:AUDIT_CHANGE_ROWS], max(len(changes) - AUDIT_CHANGE_ROWS, 0)
        for extra in (event.before, event.after):
            if extra is not None and not isinstance(extra, dict):
                event.changes.append({"field": "value", "before": None, "after": _short(extra)})
    return rows


@login_required
def audit_trail(request):
    product_keys = list(visible_products(request.user).values_list("key", flat=True))
    form = AuditFilterForm(request.GET or None, product_keys=product_keys)
    filters = form.cleaned_data if request.GET and form.is_valid() else {}
    try:
        events = selectors.audit_events(
            user=request.user,
            product=filters.get("product", ""),
            object_human_id=filters.get("object", "").strip(),
            actor=filters.get("actor", "").strip(),
            action=filters.get("action", "").strip(),
            since=datetime.combine(filters["since"], time.min, tzinfo=UTC) if filters.get("since") else None,
            until=datetime.combine(filters["until"], time.max, tzinfo=UTC) if filters.get("until") else None,
        )
    except ValidationFailed as error:  # pragma: no cover - the form already refuses bad dates
        messages.error(request, _sentence(error.detail))
        events = selectors.audit_events(user=request.user).none()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = with_changes(page.object_list)
    query = urlencode([(k, v) for k, v in (filters or {}).items() if v])
    export = reverse("api-audit-events")
    return render(
        request,
        "changecontrol/audit_trail.html",
        {
            "form": form,
            "page": page,
            "query": _query_without_page(request),
            "csv_url": f"{export}?{urlencode({'format': 'csv'})}{'&' + query if query else ''}",
            "json_url": f"{export}?{urlencode({'format': 'json'})}{'&' + query if query else ''}",
        },
    )


# ---------------------------------------------------------------- policy versions (DESIGN §5)


def _policy_sign_dialog(policy_version: PolicyVersion) -> dict:
    product = policy_version.product
    return sign_dialog(
        subject=(
            f"policy v{policy_version.version} of {product.name} ({product.key}) "
            "as the rules its changes and releases are judged by from now on"
        ),
        content=selectors.policy_version_signing_content(policy_version),
        meanings=(Signature.Meaning.APPROVED,),
        roles=[Role.QUALITY.label],
    )


def _policy_history_page(request, product: Product, *, draft: dict | None = None, problems=(), status: int = 200):
    held = roles_of(request.user, product)
    # Only a quality reviewer's signature activates a version; the server still refuses the author (SoD).
    can_sign = Role.QUALITY in held
    versions = selectors.policy_versions_with_signatures(product)
    active = next((v for v, _ in versions if v.state == PolicyVersion.State.ACTIVE), None)
    rows = []
    for version, signature in versions:
        row = {"version": version, "signature": signature}
        if version.state == PolicyVersion.State.PROPOSED:
            row["compare_with"] = active
            if can_sign:
                row["sign"] = _policy_sign_dialog(version)
                row["dialog_id"] = f"sign-v{version.version}"
        rows.append(row)
    context = {
        "product": product,
        "rows": rows,
        "can_propose": bool(held & set(services.policy_proposer_roles(product))),
        # A new version usually starts from the rules in force.
        "draft": draft or {"source": active.source if active else "", "reason": ""},
        "draft_open": draft is not None,
        "problems": problems,
    }
    return render(request, "changecontrol/policy_history.html", context, status=status)


@login_required
def policy_history(request, product: str):
    return _policy_history_page(request, product_for(request, product))


def _policy_version(request, product: str, version: int) -> PolicyVersion:
    product = product_for(request, product)
    try:
        return product.policy_versions.select_related("product", "author").get(version=version)
    except PolicyVersion.DoesNotExist:
        raise Http404(f"{product.key} has no policy v{version}") from None


@login_required
@require_POST
def policy_sign(request, product: str, version: int):
    """The "Sign to activate" dialog posts here; the service re-authenticates (Part 11) and applies SoD."""
    policy_version = _policy_version(request, product, version)
    try:
        signature = services.policy_version_sign(
            policy_version=policy_version,
            signer=request.user,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
            seen_sha256=request.POST.get("content_sha256", ""),
            comment=request.POST.get("comment", "")[:4000],
        )
    except DomainError as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, f"Signed: {signature.manifestation}. {policy_version} is now the active policy.")
    return redirect("policy-history", product=policy_version.product.key)


@login_required
@require_POST
def policy_propose(request, product: str):
    """A new version from the page: the same service as `load_policy` and the API, so the same checks."""
    product = product_for(request, product)
    source, reason = request.POST.get("source", ""), request.POST.get("reason", "")
    latest = product.policy_versions.order_by("-version").first()
    try:
        version = services.policy_version_propose(product=product, author=request.user, source=source, reason=reason)
    except ValidationFailed as error:
        problems = error.extra.get("errors")
        if not problems:
            messages.error(request, refusal_message(error))
        else:
            messages.error(request, f"Nothing was stored: the policy has {len(problems)} problem(s), listed below.")
        return _policy_history_page(
            request, product, draft={"source": source, "reason": reason}, problems=problems or [], status=400
        )
    except DomainError as error:
        messages.error(request, refusal_message(error))
        return redirect("policy-history", product=product.key)
    if latest is not None and version.pk == latest.pk:
        messages.info(request, f"{version} already holds this exact document; nothing new was stored.")
    else:
        messages.success(request, f"Proposed {version}: it takes effect once a quality reviewer signs it.")
    return redirect("policy-history", product=product.key)


@login_required
def policy_diff(request, product: str):
    product = product_for(request, product)
    versions = {v.version: v for v in selectors.policy_versions(product)}
    try:
        a, b = int(request.GET.get("a", "")), int(request.GET.get("b", ""))
        old, new = versions[a], versions[b]
    except (ValueError, KeyError):
        raise Http404("choose two existing policy versions") from None
    diff = list(
        difflib.unified_diff(
            old.source.splitlines(),
            new.source.splitlines(),
            fromfile=f"v{a} ({old.sha256[:12]})",
            tofile=f"v{b} ({new.sha256[:12]})",
            lineterm="",
        )
    )
    lines = [
        {
            "text": line,
            "kind": "add"
            if line.startswith("+") and not line.startswith("+++")
            else "del"
            if line.startswith("-") and not line.startswith("---")
            else "ctx",
        }
        for line in diff
    ]
    return render(
        request, "changecontrol/policy_diff.html", {"product": product, "old": old, "new": new, "lines": lines}
    )


# ---------------------------------------------------------------- one signature (Part 11 §11.50, §11.70)


@login_required
def signature_detail(request, signature_id: str):
    """A signature's manifestation and the exact content it is bound to, for whoever may see the signed record."""
    signature = signature_for(request, signature_id)
    return render(
        request,
        "changecontrol/signature_detail.html",
        {
            "signature": signature,
            "record_path": selectors.signed_record_path(signature),
            "content_text": json.dumps(signature.content, indent=2, sort_keys=True, ensure_ascii=False),
            "hash_matches": esign.content_sha256(signature.content) == signature.content_sha256,
        },
    )
