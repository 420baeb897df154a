"""Pages of traceability: the trace matrix, items with history and diffs, impact, baseline comparison, import."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from changecontrol.access import product_for
from changecontrol.models import Product
from changecontrol.roles import has_role
from common.api_errors import _flatten
from common.errors import DomainError
from traceability import matrix as trace
from traceability import selectors, services
from traceability.baselines import trace_baseline_compare
from traceability.formats import HAZARD_FIELDS, LINK_DIRECTIONS
from traceability.models import TraceItem

HAZARD_LABELS = {
    "hazardous_situation": "Hazardous situation",
    "harm": "Harm",
    "severity": "Severity",
    "probability": "Probability",
    "initial_risk": "Initial risk",
    "residual_risk": "Residual risk",
    "acceptability": "Acceptability",
}
MATRIX_STATUSES = ("gaps", "verified", "failed", "missing_test", "not_executed", "risk_control_unverified", "suspect")


def _can_edit(request, product: Product) -> bool:
    return has_role(request.user, product, *services.ITEM_EDITOR_ROLES)


@login_required
def trace_matrix_page(request, product):
    product = product_for(request, product)
    release = request.GET.get("release", "").strip()
    if release:
        matrix = selectors.release_matrix(product=product, version=release)
        if matrix is None:
            raise Http404(f"{product.key} has no release {release}")
    else:
        matrix = trace.trace_matrix(product=product)
    filters = {name: request.GET.get(name, "") for name in ("status", "severity", "q")}
    rows = trace.filter_rows(matrix["rows"], **filters)
    csv_url = (
        f"/api/v1/releases/{product.key}/{release}/trace-matrix.csv"
        if release
        else f"/api/v1/products/{product.key}/trace-matrix.csv"
    )
    return render(
        request,
        "traceability/trace_matrix.html",
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
    product = product_for(request, product)
    kind = request.GET.get("kind", "")
    queryset = selectors.items(
        product=product, kind=kind if kind in TraceItem.Kind.values else "", q=request.GET.get("q", "")
    )
    return render(
        request,
        "traceability/item_list.html",
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
def item_detail_page(request, product, identifier, *, link_form=None, status=200):
    product = product_for(request, product)
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
        "traceability/item_detail.html",
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
            "link_form": link_form or LinkForm(),
            "allowed_links": services.allowed_links_sentence(),
        },
        status=status,
    )


@login_required
@require_POST
def link_clear_suspect_page(request, product, link_id):
    product = product_for(request, product)
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
    product = product_for(request, product)
    result = selectors.impact(selectors.item_for(product=product, identifier=identifier))
    return render(request, "traceability/impact.html", {"product": product, **result})


@login_required
def baseline_compare_page(request, product):
    product = product_for(request, product)
    baselines = list(selectors.baselines(product=product))
    older, newer = request.GET.get("from", ""), request.GET.get("to", "")
    comparison = None
    if older and newer:
        comparison = trace_baseline_compare(
            selectors.baseline_for(product=product, release_version=older),
            selectors.baseline_for(product=product, release_version=newer),
        )
    return render(
        request,
        "traceability/baseline_compare.html",
        {"product": product, "baselines": baselines, "comparison": comparison, "older": older, "newer": newer},
    )


@login_required
@require_http_methods(["GET", "POST"])
def items_import_page(request, product):
    product = product_for(request, product)
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
        "traceability/import.html",
        {
            "product": product,
            "report": report,
            "errors": errors,
            "formats": list(services.IMPORT_FORMATS),
            "can_edit": _can_edit(request, product),
        },
        status=400 if errors else 200,
    )


# ---------------------------------------------------------------- create and edit items, add links


class ItemForm(forms.Form):
    """What a person types for a requirement, hazard or risk control; the service decides what makes a version."""

    identifier = forms.CharField(
        label="ID", max_length=120, required=False, help_text="Leave empty for the next REQ-/HAZ-/RC- number."
    )
    title = forms.CharField(max_length=500)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False)
    status = forms.CharField(max_length=60, required=False, help_text="draft, approved, obsolete …")
    reason = forms.CharField(label="Why", max_length=500, required=False)

    def __init__(self, *args, kind: str, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["identifier"]
            # An edit is a controlled change: the version history must say why.
            self.fields["reason"].required = True
        if kind == TraceItem.Kind.HAZARD:
            for name in HAZARD_FIELDS:  # ISO 14971: the risk estimate before and after control
                long_text = name in ("hazardous_situation", "harm")
                self.fields[name] = forms.CharField(
                    label=HAZARD_LABELS[name],
                    max_length=None if long_text else 60,
                    widget=forms.Textarea(attrs={"rows": 2}) if long_text else forms.TextInput,
                    required=False,
                )

    def item_fields(self) -> dict[str, str]:
        return {
            name: value for name, value in self.cleaned_data.items() if name not in ("identifier", "reason", "title")
        }


class LinkForm(forms.Form):
    """A typed link from this item to another item of the product (or to this item, for `incoming`)."""

    kind = forms.ChoiceField(choices=[(kind, kind.replace("_", " ")) for kind in LINK_DIRECTIONS])
    other = forms.CharField(label="Other item", max_length=120)
    direction = forms.ChoiceField(
        choices=[("outgoing", "this item → other item"), ("incoming", "other item → this item")], initial="outgoing"
    )


def _form_errors(form: forms.Form, error: DomainError) -> None:
    """A refusal of the service shown on the form; per-field errors where the service named fields."""
    fields = error.extra.get("errors")
    if isinstance(fields, dict):
        for name, problems in fields.items():
            form.add_error(name if name in form.fields else None, _flatten(problems))
    else:
        form.add_error(None, error.detail)


def _label(kind: str) -> str:
    return TraceItem.Kind(kind).label.lower()


def _require_editor_page(request, product: Product) -> None:
    # A reader who may see the product but not change it gets the page refused, not a form that always fails.
    if not _can_edit(request, product):
        raise PermissionDenied(f"you hold no role on {product.key} that may change its items")


@login_required
@require_http_methods(["GET", "POST"])
def item_create_page(request, product):
    product = product_for(request, product)
    _require_editor_page(request, product)
    kind = request.POST.get("kind") or request.GET.get("kind") or TraceItem.Kind.REQUIREMENT
    if kind not in TraceItem.Kind.values:
        kind = TraceItem.Kind.REQUIREMENT
    form = ItemForm(request.POST or None, kind=kind)
    if request.method == "POST" and form.is_valid():
        try:
            item = services.item_create(
                product=product,
                actor=request.user,
                kind=kind,
                title=form.cleaned_data["title"],
                identifier=form.cleaned_data["identifier"],
                reason=form.cleaned_data["reason"],
                **form.item_fields(),
            )
        except DomainError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"{item.identifier} created at version 1.")
            return redirect("item-detail", product=product.key, identifier=item.identifier)
    return render(
        request,
        "traceability/item_form.html",
        {"product": product, "form": form, "kind": kind, "kind_label": _label(kind), "kinds": TraceItem.Kind.choices},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def item_edit_page(request, product, identifier):
    product = product_for(request, product)
    item = selectors.item_for(product=product, identifier=identifier)
    _require_editor_page(request, product)
    initial = {"title": item.title, "text": item.text, "status": item.status}
    initial.update({name: getattr(item, name) for name in HAZARD_FIELDS})
    form = ItemForm(request.POST or None, kind=item.kind, editing=True, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            item, versioned = services.item_edit(
                item=item,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                title=form.cleaned_data["title"],
                **form.item_fields(),
            )
        except DomainError as error:
            _form_errors(form, error)
        else:
            if versioned:
                messages.success(request, f"{item.identifier} is now version {item.version}; its links are suspect.")
            else:
                messages.success(request, f"{item.identifier} saved; status is not content, so still v{item.version}.")
            return redirect("item-detail", product=product.key, identifier=item.identifier)
    return render(
        request,
        "traceability/item_form.html",
        {"product": product, "form": form, "kind": item.kind, "kind_label": _label(item.kind), "item": item},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def item_link_create_page(request, product, identifier):
    product = product_for(request, product)
    item = selectors.item_for(product=product, identifier=identifier)
    _require_editor_page(request, product)
    form = LinkForm(request.POST)
    if form.is_valid():
        try:
            other = selectors.item_for(product=product, identifier=form.cleaned_data["other"].strip())
        except Http404:
            form.add_error("other", f"{product.key} has no item {form.cleaned_data['other'].strip()}")
        else:
            source, target = (item, other) if form.cleaned_data["direction"] == "outgoing" else (other, item)
            try:
                link = services.trace_link_create(
                    source=source, target=target, kind=form.cleaned_data["kind"], actor=request.user
                )
            except DomainError as error:
                _form_errors(form, error)
            else:
                messages.success(request, f"Linked: {link.source.identifier} {link.kind} {link.target.identifier}.")
                return redirect("item-detail", product=product.key, identifier=item.identifier)
    return item_detail_page(request, product.key, item.identifier, link_form=form, status=400)
