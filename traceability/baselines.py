"""Trace baselines (IEC 62304 §8, configuration management): what a release was meant to satisfy, frozen once when it
froze — items and their versions, links, and the trace matrix on its artifacts — and compared between releases.

The database refuses rewrites of a baseline (a trigger); `trace_baseline_take` runs once per release.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from changecontrol import audit
from changecontrol.models import Product, User
from common.canonical import canonical_sha256, jsonable
from common.errors import Conflict
from traceability.matrix import trace_matrix
from traceability.models import ChangeRequestItem, TraceBaseline, TraceItem, TraceLink
from traceability.scope import in_force


@transaction.atomic
def trace_baseline_take(
    *, product: Product, release_version: str, artifact_ids, actor: User, change_request_ids=()
) -> TraceBaseline:
    """Freeze the trace of a release: items and versions, links, its scope, and the matrix on its artifacts. Once."""
    Product.objects.select_for_update().get(pk=product.pk)
    if TraceBaseline.objects.filter(product=product, release_version=release_version).exists():
        raise Conflict(f"{product.key} {release_version} already has its baseline; a baseline never changes")
    current = list(TraceItem.objects.filter(product=product).order_by("identifier"))
    items = [
        {
            "id": item.identifier,
            "kind": item.kind,
            "title": item.title,
            "version": item.version,
            "fingerprint": item.fingerprint,
            "status": item.status,
        }
        for item in current
    ]
    linked = dict(
        ChangeRequestItem.objects.filter(change_request_id__in=list(change_request_ids))
        .order_by("change_request_id")
        .values_list("item_id", "change_request_id")
    )
    scope = [
        {
            "id": item.identifier,
            "kind": item.kind,
            "version": item.version,
            "title": item.title,
            "status": item.status,
            "why": "in force" if in_force(item.status) else f"linked by CR-{linked[item.pk]}",
        }
        for item in current
        if in_force(item.status) or item.pk in linked
    ]
    links = [
        {"source": s, "kind": k, "target": t, "suspect": suspect}
        for s, k, t, suspect in TraceLink.objects.filter(product=product)
        .order_by("source__identifier", "kind", "target__identifier")
        .values_list("source__identifier", "kind", "target__identifier", "suspect")
    ]
    matrix = trace_matrix(product=product, artifact_ids=list(artifact_ids))
    content = jsonable(
        {
            "product": product.key,
            "release": release_version,
            "artifact_ids": sorted(artifact_ids),
            "items": items,
            "scope": scope,
            "links": links,
            "coverage": matrix["coverage"],
            "counts": matrix["counts"],
            "rows": [
                {
                    "id": row["id"],
                    "version": row["version"],
                    "status": row["status"],
                    "tests": [{"name": t["name"], "result": t["result"]} for t in row["tests"]],
                }
                for row in matrix["rows"]
            ],
        }
    )
    sha256 = canonical_sha256(content)
    baseline = TraceBaseline.objects.create(
        product=product, release_version=release_version, taken_by=actor, content=content, sha256=sha256
    )
    audit.record(
        actor=actor,
        action="trace_baseline.taken",
        obj=baseline,
        after={
            "sha256": sha256,
            "items": len(items),
            "scope": len(scope),
            "links": len(links),
            "coverage": matrix["coverage"],
        },
        seal=[baseline],
    )
    return baseline


def trace_baseline_compare(a: TraceBaseline, b: TraceBaseline) -> dict[str, Any]:
    """What changed from baseline `a` to `b`: items added, removed, changed (versions), links, statuses."""
    items_a = {item["id"]: item for item in a.content.get("items", [])}
    items_b = {item["id"]: item for item in b.content.get("items", [])}
    changed = [
        {
            "id": key,
            "kind": items_b[key]["kind"],
            "title": items_b[key]["title"],
            "from_version": items_a[key]["version"],
            "to_version": items_b[key]["version"],
            "from_status": items_a[key]["status"],
            "to_status": items_b[key]["status"],
        }
        for key in sorted(items_a.keys() & items_b.keys())
        if (items_a[key]["version"], items_a[key]["status"]) != (items_b[key]["version"], items_b[key]["status"])
    ]
    links_a = {(x["source"], x["kind"], x["target"]) for x in a.content.get("links", [])}
    links_b = {(x["source"], x["kind"], x["target"]) for x in b.content.get("links", [])}
    rows_a = {row["id"]: row["status"] for row in a.content.get("rows", [])}
    rows_b = {row["id"]: row["status"] for row in b.content.get("rows", [])}
    return {
        "from": {
            "release": a.release_version,
            "sha256": a.sha256,
            "taken_at": a.taken_at,
            "coverage": a.content.get("coverage"),
        },
        "to": {
            "release": b.release_version,
            "sha256": b.sha256,
            "taken_at": b.taken_at,
            "coverage": b.content.get("coverage"),
        },
        "added": [items_b[key] for key in sorted(items_b.keys() - items_a.keys())],
        "removed": [items_a[key] for key in sorted(items_a.keys() - items_b.keys())],
        "changed": changed,
        "links_added": [{"source": s, "kind": k, "target": t} for s, k, t in sorted(links_b - links_a)],
        "links_removed": [{"source": s, "kind": k, "target": t} for s, k, t in sorted(links_a - links_b)],
        "status_changes": [
            {"id": key, "from": rows_a[key], "to": rows_b[key]}
            for key in sorted(rows_a.keys() & rows_b.keys())
            if rows_a[key] != rows_b[key]
        ],
    }
