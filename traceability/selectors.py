"""Reads of traceability shared by pages and the API: items, links, version diffs, impact, baselines."""

from __future__ import annotations

import difflib
from collections import defaultdict
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from changecontrol.models import ChangeRequest, Product
from evidence.models import Artifact
from traceability.formats import HAZARD_FIELDS
from traceability.matrix import trace_matrix
from traceability.models import ChangeRequestItem, TraceBaseline, TraceItem, TraceItemVersion, TraceLink
from traceability.scope import release_scope

OPEN_CR_STATES = (
    ChangeRequest.State.DRAFT,
    ChangeRequest.State.SUBMITTED,
    ChangeRequest.State.APPROVED,
    ChangeRequest.State.IMPLEMENTED,
)


def items(*, product: Product, kind: str = "", q: str = "", status: str = "") -> QuerySet[TraceItem]:
    queryset = TraceItem.objects.filter(product=product)
    if kind:
        queryset = queryset.filter(kind=kind)
    if status:
        queryset = queryset.filter(status=status.lower())
    if q:
        queryset = queryset.filter(Q(identifier__icontains=q) | Q(title__icontains=q) | Q(text__icontains=q))
    return queryset.order_by("kind", "identifier")


def item_for(*, product: Product, identifier: str) -> TraceItem:
    """One item of a product the caller already may see (IDs compare case-insensitively); 404 otherwise."""
    item = TraceItem.objects.select_related("product").filter(product=product, identifier__iexact=identifier).first()
    if item is None:
        raise Http404(f"{product.key} has no item {identifier}")
    return item


def links_of(item: TraceItem) -> dict[str, list[TraceLink]]:
    related = ("source", "target", "cleared_by")
    return {
        "outgoing": list(
            TraceLink.objects.filter(source=item).select_related(*related).order_by("kind", "target__identifier")
        ),
        "incoming": list(
            TraceLink.objects.filter(target=item).select_related(*related).order_by("kind", "source__identifier")
        ),
    }


def link_for(*, product: Product, link_id: int) -> TraceLink:
    link = TraceLink.objects.select_related("product", "source", "target").filter(product=product, pk=link_id).first()
    if link is None:
        raise Http404
    return link


def versions_of(item: TraceItem) -> list[TraceItemVersion]:
    return list(item.versions.select_related("created_by").order_by("-version"))


def change_requests_of(item: TraceItem) -> list[ChangeRequest]:
    return [
        link.change_request for link in ChangeRequestItem.objects.filter(item=item).select_related("change_request")
    ]


def _version_lines(version: TraceItemVersion) -> dict[str, list[str]]:
    fields = {"title": version.title, "text": version.text, "status": version.status}
    fields.update({name: version.hazard.get(name, "") for name in HAZARD_FIELDS if version.hazard})
    fields["attributes"] = "\n".join(f"{k}: {v}" for k, v in sorted((version.attributes or {}).items()))
    return {name: (value or "").splitlines() for name, value in fields.items()}


def version_diff(*, item: TraceItem, from_version: int, to_version: int) -> list[dict[str, Any]]:
    """Per field, the unified diff between two versions (only the fields that differ)."""
    found = {v.version: v for v in item.versions.filter(version__in=(from_version, to_version))}
    if from_version not in found or to_version not in found:
        raise Http404(f"{item.identifier} has no version {from_version if from_version not in found else to_version}")
    a, b = _version_lines(found[from_version]), _version_lines(found[to_version])
    diffs = []
    for name in sorted(
        set(a) | set(b), key=lambda n: ("title", "text", "status").index(n) if n in ("title", "text", "status") else 9
    ):
        old, new = a.get(name, []), b.get(name, [])
        if old != new:
            lines = list(difflib.unified_diff(old, new, f"v{from_version}", f"v{to_version}", lineterm="", n=2))
            diffs.append({"field": name, "lines": lines[2:]})
    return diffs


def impact(item: TraceItem) -> dict[str, Any]:
    """Everything downstream of an item (risk controls, requirements, derived ones) and open CRs touching them."""
    downstream_of: dict[int, list[tuple[int, TraceLink]]] = defaultdict(list)
    links = list(TraceLink.objects.filter(product_id=item.product_id).select_related("source", "target"))
    for link in links:
        if link.kind == TraceLink.Kind.IMPLEMENTS:
            downstream_of[link.source_id].append((link.target_id, link))
        else:  # mitigates (hazard → risk control) and derives_from (parent → child) point upstream
            downstream_of[link.target_id].append((link.source_id, link))
    seen, order, via = {item.pk}, [], []
    frontier = [item.pk]
    while frontier:
        next_frontier = []
        for pk in frontier:
            for child, link in downstream_of.get(pk, []):
                via.append(link)
                if child not in seen:
                    seen.add(child)
                    order.append(child)
                    next_frontier.append(child)
        frontier = next_frontier
    downstream = {i.pk: i for i in TraceItem.objects.filter(pk__in=order)}
    open_crs = (
        ChangeRequestItem.objects.filter(item_id__in=seen, change_request__state__in=OPEN_CR_STATES)
        .select_related("change_request", "item")
        .order_by("change_request_id")
    )
    by_cr: dict[int, dict[str, Any]] = {}
    for link in open_crs:
        entry = by_cr.setdefault(link.change_request_id, {"change_request": link.change_request, "items": []})
        entry["items"].append(link.item.identifier)
    return {
        "item": item,
        "downstream": [downstream[pk] for pk in order if pk in downstream],
        "links": via,
        "open_change_requests": list(by_cr.values()),
    }


def baselines(*, product: Product) -> QuerySet[TraceBaseline]:
    return TraceBaseline.objects.filter(product=product).select_related("taken_by").order_by("-taken_at")


def baseline_for(*, product: Product, release_version: str) -> TraceBaseline:
    baseline = TraceBaseline.objects.filter(product=product, release_version=release_version).first()
    if baseline is None:
        raise Http404(f"{product.key} {release_version} has no baseline")
    return baseline


def release_artifact_ids(*, product: Product, version: str) -> list[int] | None:
    """The artifact ids of a product's release, or None when it has no such release.

    Releases are the approvals app's records, above this one: they are reached through the relation that app
    declares on each artifact (`artifact.releases`), never by importing it. A release always holds an artifact.
    """
    ids = list(Artifact.objects.filter(product=product, releases__version=version).values_list("id", flat=True))
    return ids or None


def release_matrix(*, product: Product, version: str) -> dict[str, Any] | None:
    """A release's matrix: its scope (recorded when it froze) against its own artifacts' evidence; every current
    requirement instead when the product's policy asks for that (`traceability.scope: current`) or the release has
    not frozen yet. None when the product has no such release."""
    from changecontrol.services import active_policy  # the policy layer sits above; read here at call time

    artifact_ids = release_artifact_ids(product=product, version=version)
    if artifact_ids is None:
        return None
    policy = active_policy(product)
    judged_by_policy = policy.document.traceability.scope if policy else "release"
    scope = release_scope(product=product, release_version=version) if judged_by_policy == "release" else None
    matrix = trace_matrix(product=product, artifact_ids=artifact_ids, scope=scope)
    matrix["release"] = version
    if scope is None:
        matrix["basis"] = {
            "scope": "current",
            "release": version,
            "description": (
                "every requirement current now against the release's own evidence"
                + (" (policy traceability.scope: current)" if judged_by_policy == "current" else " (not frozen yet)")
            ),
        }
    return matrix
