"""Auditor pages (issue 7, item 7): search, a release's downloads, the population report, audit-trail exports.

Read-only by construction: every view here answers GET only, and the one thing an auditor may start — the
rendering of a packet or bundle — is requested by `static/auditor.js` through the export API. Records come in
through `access` (hidden = 404); a person who can see no product at all gets 404 on every page.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from changecontrol.access import get_visible_or_404, visible_product_ids, visible_products
from changecontrol.models import ChangeRequest
from common.errors import ValidationFailed
from common.times import query_moment
from evidence.selectors import artifact_page_url
from reports.population import population_report
from traceability.models import TraceItem

MAX_RESULTS = 50
DIGEST_PREFIX = re.compile(r"^(?:sha256:)?([0-9a-f]{12,64})$")
CR_ID = re.compile(r"^CR-(\d{1,18})$", re.IGNORECASE)
DEP_ID = re.compile(r"^DEP-(\d{1,18})$", re.IGNORECASE)


def _visible_ids_or_404(request) -> set[int]:
    ids = visible_product_ids(request.user)
    if not ids:
        raise Http404
    return ids


def _result(kind: str, label: str, url: str, detail: str = "") -> dict[str, str]:
    return {"kind": kind, "label": label, "url": url, "detail": detail}


def _release_result(release) -> dict[str, str]:
    """A release found by the search; `artifact_count` is annotated by the search's release queryset."""
    url = reverse("auditor-release", kwargs={"product": release.product.key, "version": release.version})
    return _result("release", release.human_id, url, f"{release.artifact_count} artifact(s)")


def _deployment_url(deployment) -> str:
    """Where a deployment outside any release leads: its artifact, or the deployment itself for a digest no build
    registered (there is no artifact page to show)."""
    if deployment.artifact_id:
        return artifact_page_url(deployment.digest, deployment.product.key)
    return reverse("deployment", kwargs={"deployment_id": deployment.human_id})


def search_results(query: str, product_ids: set[int]) -> list[dict[str, str]]:
    """Whatever the query names — a digest, a CR, a requirement, a deployment, a date or a release version."""
    from approvals.models import Release
    from evidence.models import Artifact
    from runtime.models import Deployment

    query = query.strip()
    if not query:
        return []
    # Counted in a subquery, so joins that later filters add cannot multiply the count.
    artifact_count = (
        Release.artifacts.through.objects.filter(release_id=OuterRef("pk"))
        .values("release_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    releases = (
        Release.objects.filter(product_id__in=product_ids)
        .select_related("product")
        .annotate(artifact_count=Coalesce(Subquery(artifact_count), 0))
    )
    results: list[dict[str, str]] = []

    # 1. A digest (or an unambiguous prefix of one): the artifact, and every release that contains it.
    digest = DIGEST_PREFIX.match(query.lower())
    if digest:
        artifacts = list(
            Artifact.objects.filter(
                product_id__in=product_ids, digest__startswith="sha256:" + digest.group(1)
            ).select_related("build__product")[:MAX_RESULTS]
        )
        # One query for every artifact's releases: the annotation reuses the filter's join, so each row is one
        # (release, matching artifact) pair.
        containing = defaultdict(list)
        for release in releases.filter(artifacts__in=artifacts).annotate(found_artifact_id=F("artifacts__id")):
            containing[release.found_artifact_id].append(release)
        for artifact in artifacts:
            url = artifact_page_url(artifact.digest, artifact.build.product.key)
            results.append(_result("artifact", f"{artifact.name} {artifact.digest}", url, artifact.build.human_id))
            results += [_release_result(r) for r in containing[artifact.pk]]
        # Deployed without ever being registered: only the deployment knows the digest.
        for deployment in Deployment.objects.filter(
            product_id__in=product_ids, artifact__isnull=True, digest__startswith="sha256:" + digest.group(1)
        ).select_related("environment", "product")[:MAX_RESULTS]:
            results.append(
                _result(
                    "deployment",
                    f"{deployment.human_id} {deployment.digest}",
                    _deployment_url(deployment),
                    f"{deployment.kind} to {deployment.environment.key}, never registered by a build",
                )
            )
    # 2. A change request: it, and the releases that deliver it.
    cr = CR_ID.match(query)
    if cr:
        for change_request in ChangeRequest.objects.filter(product_id__in=product_ids, pk=int(cr.group(1))):
            url = reverse("change-request", kwargs={"change_request_id": change_request.human_id})
            results.append(_result("change request", str(change_request), url, change_request.get_state_display()))
            results += [_release_result(r) for r in releases.filter(change_requests=change_request)]
    # 3. A deployment.
    dep = DEP_ID.match(query)
    if dep:
        for deployment in Deployment.objects.filter(product_id__in=product_ids, pk=int(dep.group(1))).select_related(
            "release__product", "environment", "artifact", "product"
        ):
            detail = f"{deployment.kind} to {deployment.environment.key}, authorised: {'yes' if deployment.authorised else 'NO'}"
            if deployment.release_id:
                results.append(_release_result(deployment.release) | {"detail": f"{deployment.human_id}: {detail}"})
            else:
                url = _deployment_url(deployment)
                results.append(_result("deployment", deployment.human_id, url, detail))
    # 4. A requirement (or hazard, risk control): the item, and the releases whose CRs name it.
    for item in TraceItem.objects.filter(product_id__in=product_ids, identifier__iexact=query).select_related(
        "product"
    ):
        url = reverse("item-detail", kwargs={"product": item.product.key, "identifier": item.identifier})
        results.append(
            _result(item.get_kind_display().lower(), f"{item.identifier} {item.title}", url, f"v{item.version}")
        )
        naming = ChangeRequest.objects.filter(product=item.product, affected_items__icontains=item.identifier)
        results += [_release_result(r) for r in releases.filter(change_requests__in=naming).distinct()]
    # 5. A date: what was released and deployed that UTC day, and the population report of that day.
    try:
        since = query_moment(query) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", query) else None
    except ValidationFailed:
        since = None  # 2025-02-30 looks like a date and is not one: search it as text
    if since is not None:
        until = since + timedelta(days=1)
        window = Q(created_at__gte=since, created_at__lt=until) | Q(frozen_at__gte=since, frozen_at__lt=until)
        results += [_release_result(r) for r in releases.filter(window)[:MAX_RESULTS]]
        for deployment in Deployment.objects.filter(
            product_id__in=product_ids, deployed_at__gte=since, deployed_at__lt=until
        ).select_related("environment", "artifact", "release__product", "product")[:MAX_RESULTS]:
            url = (
                reverse(
                    "auditor-release",
                    kwargs={"product": deployment.release.product.key, "version": deployment.release.version},
                )
                if deployment.release_id
                else _deployment_url(deployment)
            )
            results.append(
                _result("deployment", deployment.human_id, url, f"{deployment.kind} to {deployment.environment.key}")
            )
        day = since.date()
        url = reverse("auditor-population") + f"?from={day}&to={day}"
        results.append(_result("population report", f"Production deployments on {day}", url))
    # 6. Anything else: a release version ("7.2.4" or "rsd 7.2.4").
    if not results:
        version = query.split(" ", 1)[1] if " " in query else query
        product_key = query.split(" ", 1)[0] if " " in query else ""
        matches = releases.filter(version__iexact=version)
        if product_key:
            matches = matches.filter(product__key=product_key)
        if not matches.exists():
            matches = releases.filter(version__icontains=query)
        results += [_release_result(r) for r in matches[:MAX_RESULTS]]
    # One row per destination: a release found by both its digest and its CR is listed once.
    unique = {}
    for row in results:
        unique.setdefault((row["kind"], row["url"]), row)
    return list(unique.values())[:MAX_RESULTS]


@login_required
@require_GET
def auditor_search(request):
    product_ids = _visible_ids_or_404(request)
    query = request.GET.get("q", "")[:200]
    context = {"query": query, "results": search_results(query, product_ids), "searched": bool(query.strip())}
    return render(request, "reports/search.html", context)


@login_required
@require_GET
def auditor_release(request, product: str, version: str):
    from approvals.models import Release

    release = get_visible_or_404(
        Release.objects.select_related("product", "created_by"),
        user=request.user,
        product__key=product,
        version=version,
    )
    key, version = release.product.key, release.version
    context = {
        "release": release,
        "artifacts": release.artifacts.select_related("build__product").order_by("name"),
        "change_requests": release.change_requests.order_by("pk"),
        "downloads": {
            "packet": reverse("api-release-packet", kwargs={"product": key, "version": version}),
            "bundle": reverse("api-release-bundle", kwargs={"product": key, "version": version}),
            "notes": {
                ext: reverse("api-release-notes", kwargs={"product": key, "version": version, "extension": ext})
                for ext in ("md", "html", "pdf")
            },
            "audit": reverse("api-audit-events-export") + f"?object={release.human_id.replace(' ', '+')}",
        },
    }
    return render(request, "reports/release.html", context)


@login_required
@require_GET
def auditor_population(request):
    _visible_ids_or_404(request)
    products = visible_products(request.user).order_by("key")
    params = request.GET
    context = {"products": products, "params": params, "report": None, "error": ""}
    if params.get("from") or params.get("to"):
        from reports.api import parse_period

        try:
            start, end = parse_period(params.get("from"), params.get("to"))
        except ValidationFailed as error:
            context["error"] = error.detail
        else:
            product = params.get("product", "")
            if product and not products.filter(key=product).exists():
                raise Http404
            context["report"] = population_report(user=request.user, start=start, end=end, product=product)
            query = f"from={start}&to={end}" + (f"&product={product}" if product else "")
            base = reverse("api-population-report")
            context["csv_url"] = f"{base}?{query}&format=csv"
            context["pdf_url"] = f"{base}?{query}&format=pdf"
    return render(request, "reports/population.html", context)


@login_required
@require_GET
def auditor_audit_export(request):
    _visible_ids_or_404(request)
    params = request.GET
    context = {"params": params, "links": None}
    if any(params.get(name) for name in ("object", "since", "until")):
        from urllib.parse import urlencode

        query = {name: params[name] for name in ("object", "since", "until") if params.get(name)}
        base = reverse("api-audit-events-export")
        context["links"] = {fmt: f"{base}?{urlencode({**query, 'format': fmt})}" for fmt in ("csv", "json", "pdf")}
    return render(request, "reports/audit_export.html", context)
