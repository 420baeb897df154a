"""Pages of the runtime record: the deployment log (what runs now, and where it came from), a deployment with its
walk-back and review dialog, the manual deployment form, drift findings per environment, and break-glass reviews.

Thin views: records come in through `access.get_visible_or_404` (hidden = 404); writes go through the services in
`runtime.deployments`; a refusal becomes a message naming the rule.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from changecontrol.access import get_visible_or_404, parse_human_id, product_for, visible_products
from changecontrol.models import Environment, Product, Role, Signature
from changecontrol.roles import roles_of
from changecontrol.views import refusal_message, sign_dialog
from common.errors import DomainError
from evidence.models import Artifact
from runtime import affected, deployments, selectors
from runtime.models import BreakGlassReview, Deployment, DriftFinding


def _refusal(error: DomainError) -> str:
    """The shared refusal sentence, naming the rule also for refusals that are not separation of duties."""
    rule = error.extra.get("rule")
    message = refusal_message(error)
    return message if not rule or rule in message else f"Refused by rule {rule}: {message}"


def _deployment(request, human_id: str) -> Deployment:
    return get_visible_or_404(
        Deployment.objects.select_related(
            "product", "environment", "artifact", "artifact__build", "release", "deployer", "decision"
        ),
        user=request.user,
        pk=parse_human_id(human_id, Deployment.HUMAN_PREFIX),
    )


@login_required
def deployment_log(request):
    """Filters, the log, CSV, and per environment what runs there now with where each piece came from."""
    products = list(visible_products(request.user))
    try:
        filters = selectors.deployment_filters(request.GET)
    except DomainError as error:
        messages.error(request, _refusal(error))
        filters = selectors.deployment_filters({})
    log = selectors.deployments_filter(selectors.deployments_visible_to(request.user), **filters)
    environments = (
        Environment.objects.filter(product__in=products).select_related("product").order_by("product__key", "-order")
    )
    if filters["product"]:
        environments = environments.filter(product__key=filters["product"])
    environments = environments.filter(key=filters["environment"] or "production")
    running = [{"environment": e, "deployments": selectors.running_now(e)} for e in environments[:10]]
    return render(
        request,
        "runtime/deployment_log.html",
        {
            "deployments": log[:500],
            "products": products,
            "kinds": Deployment.Kind.choices,
            "filters": {
                key: request.GET.get(key, "")
                for key in ("product", "environment", "since", "until", "kind", "authorised")
            },
            "query": request.GET.urlencode(),
            "running": running,
            "can_record": bool(_recordable_products(request.user, products)),
        },
    )


def _review_context(request, deployment: Deployment) -> dict:
    review = (
        BreakGlassReview.objects.filter(deployment=deployment)
        .select_related(
            "reviewer",
            "signature",
            "deployment__product",
            "deployment__environment",
            "deployment__release__product",
            "deployment__deployer",
        )
        .first()
    )
    if review is None:
        return {"review": None}
    context = {"review": review, "overdue": review.is_overdue()}
    if review.state == BreakGlassReview.State.DUE and Role.QUALITY in roles_of(request.user, deployment.product):
        context["sign"] = _review_sign_dialog(review)
    return context


def _review_sign_dialog(review: BreakGlassReview) -> dict:
    return sign_dialog(
        subject=f"{review.human_id}: the break-glass deployment {review.deployment.human_id}",
        content=selectors.break_glass_review_signing_content(review),
        meanings=(Signature.Meaning.RETROSPECTIVE_REVIEWED,),
        roles=[Role.QUALITY.label],
    )


@login_required
def deployment_detail(request, deployment_id: str):
    deployment = _deployment(request, deployment_id)
    return render(
        request,
        "runtime/deployment_detail.html",
        {
            "deployment": deployment,
            "walk": selectors.walk_back(deployment),
            **_review_context(request, deployment),
        },
    )


@login_required
@require_POST
def deployment_review(request, deployment_id: str):
    """The review dialog posts here: username, password and the findings (the dialog's comment)."""
    deployment = _deployment(request, deployment_id)
    review = BreakGlassReview.objects.filter(deployment=deployment).first()
    if review is None:
        raise Http404
    try:
        signature = deployments.break_glass_review_sign(
            review=review,
            signer=request.user,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
            seen_sha256=request.POST.get("content_sha256", ""),
            findings=request.POST.get("findings") or request.POST.get("comment", ""),
        )
    except DomainError as error:
        messages.error(request, _refusal(error))
    else:
        messages.success(request, f"Signed: {signature.manifestation}.")
    return redirect("deployment", deployment_id=deployment.human_id)


def _recordable_products(user, products) -> list[Product]:
    """The products where this person may record some deployment (a break-glass claim is the widest: the service
    decides the rest, with a 403 naming what is needed)."""
    return [p for p in products if deployments.may_record_deployment(user, p, kind=Deployment.Kind.BREAK_GLASS)]


@login_required
def deployment_create(request):
    """A page for manual deployments: the same service as the API, so the same rules, decision, flags and alerts."""
    products = _recordable_products(request.user, visible_products(request.user))
    form = {
        "artifact": "",
        "product": "",
        "environment": "production",
        "kind": "normal",
        "pipeline_url": "",
        "justification": "",
    }
    if request.method == "POST":
        form = {key: request.POST.get(key, "").strip() for key in form}
        # Only the products this person records in are searched: another product's digest reads as an unknown one.
        named = [p for p in products if p.key == form["product"]]
        found = list(
            Artifact.objects.filter(digest=form["artifact"].lower(), product__in=named or products)
            .select_related("product")
            .order_by("product__key")[:2]
        )
        artifact = found[0] if len(found) == 1 else None
        if artifact is not None:
            product = artifact.product
        else:
            # A digest no build registered is still a fact to record, in the product the person names.
            product = named[0] if named else (products[0] if len(products) == 1 else None)
        environment = Environment.objects.filter(product=product, key=form["environment"]).first() if product else None
        if product is None:
            messages.error(
                request,
                f"{form['artifact'][:80] or '(empty)'} was never registered by a build: "
                "choose the product it was deployed in.",
            )
        elif environment is None:
            messages.error(request, f"{product.key} has no environment {form['environment']!r}.")
        else:
            try:
                deployment = deployments.deployment_record(
                    artifact=artifact,
                    digest=form["artifact"],
                    environment=environment,
                    deployer=request.user,
                    kind=form["kind"],
                    pipeline_url=form["pipeline_url"],
                    justification=form["justification"],
                )
            except DomainError as error:
                messages.error(request, _refusal(error))
            else:
                verdict = "authorised" if deployment.authorised else "NOT authorised — flagged and alerted"
                messages.success(request, f"Recorded {deployment.human_id}: {verdict}.")
                return redirect("deployment", deployment_id=deployment.human_id)
    environments = sorted({e.key for e in Environment.objects.filter(product__in=products)})
    return render(
        request,
        "runtime/deployment_form.html",
        {"form": form, "kinds": Deployment.Kind.choices, "environments": environments, "products": products},
        # A POST that reaches here was refused (the message says why): the form again, as a 400.
        status=400 if request.method == "POST" else 200,
    )


@login_required
def drift_findings(request, product: str):
    product = product_for(request, product)
    show = request.GET.get("state", "open")
    state = "" if show == "all" else (show if show in DriftFinding.State.values else "open")
    sections = [
        {
            "environment": environment,
            "snapshot": selectors.latest_snapshot(environment),
            "findings": list(selectors.findings_for(environment, state=state)[:500]),
        }
        for environment in product.environments.order_by("order")
    ]
    return render(request, "runtime/drift.html", {"product": product, "sections": sections, "show": show or "open"})


@login_required
def break_glass_list(request):
    """Every break-glass review, due ones first; overdue in red; quality reviewers sign from here."""
    reviews = list(selectors.reviews_visible_to(request.user).order_by("state", "due_at")[:500])
    now = timezone.now()
    rows = []
    for review in reviews:
        row = {"review": review, "overdue": review.is_overdue(now)}
        if review.state == BreakGlassReview.State.DUE and Role.QUALITY in roles_of(request.user, review.product):
            row["sign"] = _review_sign_dialog(review)
        rows.append(row)
    return render(request, "runtime/break_glass.html", {"rows": rows})


@login_required
def affected_releases(request):
    """The search form and its answer: which releases carry a component or vulnerability, and where they run now."""
    params = {key: request.GET.get(key, "") for key in ("purl", "name", "version", "vulnerability")}
    rows, searched = [], any(params.values())
    if searched:
        try:
            rows = affected.affected_search(affected.affected_query(request.GET), user=request.user)
        except DomainError as error:
            messages.error(request, _refusal(error))
            searched = False
    return render(
        request,
        "runtime/affected.html",
        {
            "params": params,
            "rows": rows[:1000],
            "total": len(rows),
            "searched": searched,
            "query": request.GET.urlencode(),
            "range_syntax": affected.RANGE_SYNTAX,
        },
    )
