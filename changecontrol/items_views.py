"""Pages of traceability: the trace matrix, items with history and diffs, impact, baseline comparison, import."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from changecontrol import items as services
from changecontrol import items_selectors as selectors
from changecontrol.access import get_visible_or_404
from changecontrol.api_errors import _flatten
from changecontrol.errors import DomainError
from changecontrol.item_formats import HAZARD_FIELDS
from changecontrol.models import Product, TraceItem
from changecontrol.roles import has_role
from evidence import trace

MATRIX_STATUSES = ("gaps", "verified", "failed", "missing_test", "not_executed", "risk_control_unverified", "suspect")


def _product(request, key: str) -> Product:
    return get_visible_or_404(Product.objects.all(), user=request.user, product_field="", key=key)


def _can_edit(request, product: Product) -> bool:
    return has_role(request.user, product, *services.ITEM_EDITOR_ROLES)


@login_required
def trace_matrix_page(request, product):
    product = _product(request, product)
    release = request.GET.get("release", "").strip()
    artifact_ids = None
    if release:
        artifact_ids = trace.release_artifact_ids(product=product, version=release)
        if artifact_ids is None:
            raise Http404(f"{product.key} has no release {release}")
    matrix = trace.trace_matrix(product=product, artifact_ids=artifact_ids)
    filters = {name: request.GET.get(name, "") for name in ("status", "severity", "q")}
    rows = trace.filter_rows(matrix["rows"], **filters)
    csv_url = (
        f"/api/v1/releases/{product.key}/{release}/trace-matrix.csv"
        if release
        else f"/api/v1/products/{product.key}/trace-matrix.csv"
    )
    return render(
        request,
        "items/trace_matrix.html",
        {
            "product": product,
            "matrix": matrix,
            "rows": rows,
            "filters": filters,
            "release": release,
            "statuses": MATRIX_STATUSES,
            "csv_url": csv_url,
            "query": request.GET.urlencode(),
        },
    )


@login_required
def item_list_page(request, product):
    product = _product(request, product)
    kind = request.GET.get("kind", "")
    queryset = selectors.items(
        product=product, kind=kind if kind in TraceItem.Kind.values else "", q=request.GET.get("q", "")
    )
    return render(
        request,
        "items/item_list.html",
        {
            "product": product,
            "items": queryset,
            "kinds": TraceItem.Kind.choices,
            "kind": kind,
            "q": request.GET.get("q", ""),
            "can_edit": _can_edit(request, product),
        },
    )


@login_required
def item_detail_page(request, product, identifier):
    product = _product(request, product)
    item = selectors.item_for(product=product, identifier=identifier)
    versions = selectors.versions_of(item)
    links = selectors.links_of(item)
    diff, diff_from, diff_to = [], None, None
    if len(versions) > 1:
        try:
            diff_to = int(request.GET.get("to", versions[0].version))
            diff_from = int(request.GET.get("from", diff_to - 1))
        except ValueError:
            raise Http404 from None
        diff = selectors.version_diff(item=item, from_version=diff_from, to_version=diff_to)
    return render(
        request,
        "items/item_detail.html",
        {
            "product": product,
            "item": item,
            "versions": versions,
            "all_links": links["outgoing"] + links["incoming"],
            "change_requests": selectors.change_requests_of(item),
            "diff": diff,
            "diff_from": diff_from,
            "diff_to": diff_to,
            "hazard_fields": [(name.replace("_", " ").capitalize(), getattr(item, name)) for name in HAZARD_FIELDS],
            "can_edit": _can_edit(request, product),
        },
    )


@login_required
@require_POST
def link_clear_suspect_page(request, product, link_id):
    product = _product(request, product)
    link = selectors.link_for(product=product, link_id=link_id)
    try:
        services.trace_link_clear_suspect(link=link, actor=request.user, comment=request.POST.get("comment", ""))
        messages.success(request, f"The link {link.human_id} is no longer suspect.")
    except DomainError as error:
        messages.error(request, error.detail)
    return redirect(
        "item-detail", product=product.key, identifier=request.POST.get("next_item") or link.target.identifier
    )


@login_required
def item_impact_page(request, product, identifier):
    product = _product(request, product)
    result = selectors.impact(selectors.item_for(product=product, identifier=identifier))
    return render(request, "items/impact.html", {"product": product, **result})


@login_required
def baseline_compare_page(request, product):
    product = _product(request, product)
    baselines = list(selectors.baselines(product=product))
    older, newer = request.GET.get("from", ""), request.GET.get("to", "")
    comparison = None
    if older and newer:
        comparison = services.trace_baseline_compare(
            selectors.baseline_for(product=product, release_version=older),
            selectors.baseline_for(product=product, release_version=newer),
        )
    return render(
        request,
        "items/baseline_compare.html",
        {"product": product, "baselines": baselines, "comparison": comparison, "older": older, "newer": newer},
    )


@login_required
@require_http_methods(["GET", "POST"])
def items_import_page(request, product):
    product = _product(request, product)
    report, errors = None, []
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            errors = ["choose a file to import"]
        else:
            try:
                report = services.items_import(
                    product=product,
                    actor=request.user,
                    format=request.POST.get("format", ""),
                    data=upload.read(),
                    filename=upload.name or "",
                ).as_dict()
            except DomainError as error:
                errors = [str(p) for p in error.extra.get("errors", [])] or [_flatten(error.detail)]
    return render(
        request,
        "items/import.html",
        {
            "product": product,
            "report": report,
            "errors": errors,
            "formats": list(services.IMPORT_FORMATS),
            "can_edit": _can_edit(request, product),
        },
        status=400 if errors else 200,
    )
