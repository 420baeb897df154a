"""Auditor downloads over the API (issue 7, items 4-6): the population report, audit-trail exports, release notes.

Reads only: nothing here writes, so nothing here is audited. A caller who can see no product gets 404, as for
any record they may not see.
"""

from __future__ import annotations

import json
from datetime import date

from django.http import Http404, HttpResponse
from django.utils.dateparse import parse_date
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from changecontrol.access import visible_product_ids, visible_products
from changecontrol.api import audit_csv_response
from changecontrol.api_base import query_moment, token_of
from changecontrol.errors import ValidationFailed
from evidence import audit_export, population, release_notes
from evidence.export_api import _release_for

MAX_PERIOD_DAYS = 3660
FORMATS = ("json", "csv", "pdf")


def _download(body: bytes | str, *, content_type: str, filename: str, inline: bool = False) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _format(params, allowed=FORMATS) -> str:
    value = params.get("format") or "json"
    if value not in allowed:
        raise ValidationFailed(f"format must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _require_some_product(request) -> None:
    if not visible_product_ids(request.user, token_of(request)):
        raise Http404


def parse_period(start_text: str | None, end_text: str | None) -> tuple[date, date]:
    """`from` and `to` as YYYY-MM-DD; a 400 that says which is wrong and how to write it."""
    days = {}
    for name, text in (("from", start_text), ("to", end_text)):
        parsed = parse_date(text or "") if text else None
        if parsed is None:
            raise ValidationFailed(f"{name}={text or ''!r} is not a date: give from= and to= as YYYY-MM-DD", field=name)
        days[name] = parsed
    if days["from"] > days["to"]:
        raise ValidationFailed(f"from ({days['from']}) is after to ({days['to']})", field="from")
    if (days["to"] - days["from"]).days > MAX_PERIOD_DAYS:
        raise ValidationFailed(f"a period of at most {MAX_PERIOD_DAYS} days, please", field="to")
    return days["from"], days["to"]


class PopulationReportApi(APIView):
    """Every production deployment in a period with its evidence; exceptions first; completeness stated."""

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, required=True, description="first UTC day, YYYY-MM-DD"),
            OpenApiParameter("to", str, required=True, description="last UTC day, YYYY-MM-DD (included)"),
            OpenApiParameter("format", str, enum=list(FORMATS), required=False),
            OpenApiParameter("product", str, required=False),
            OpenApiParameter("environment", str, required=False, description="default production"),
        ],
        responses={(200, "application/json"): dict, (200, "text/csv"): str, (200, "application/pdf"): bytes},
    )
    def get(self, request):
        params = request.query_params
        _require_some_product(request)
        output = _format(params)
        start, end = parse_period(params.get("from"), params.get("to"))
        product = params.get("product", "")
        if product and not visible_products(request.user, token_of(request)).filter(key=product).exists():
            raise Http404
        report = population.population_report(
            user=request.user,
            token=token_of(request),
            start=start,
            end=end,
            product=product,
            environment=params.get("environment") or population.PRODUCTION,
        )
        name = f"custody-population-{start}-to-{end}"
        if output == "csv":
            return _download(
                population.population_csv(report), content_type="text/csv; charset=utf-8", filename=f"{name}.csv"
            )
        if output == "pdf":
            return _download(population.population_pdf(report), content_type="application/pdf", filename=f"{name}.pdf")
        return _download(
            json.dumps(report, indent=2, default=str),
            content_type="application/json",
            filename=f"{name}.json",
            inline=True,
        )


class AuditEventExportApi(APIView):
    """The audit trail of one object or a date range as CSV, JSON or PDF (the PDF shows hashes and checkpoint)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("object", str, required=False, description="a human ID: CR-42, PRM-3, rsd 7.2.4 …"),
            OpenApiParameter("since", str, required=False),
            OpenApiParameter("until", str, required=False),
            OpenApiParameter("format", str, enum=list(FORMATS), required=False),
        ],
        responses={(200, "application/json"): dict, (200, "text/csv"): str, (200, "application/pdf"): bytes},
    )
    def get(self, request):
        params = request.query_params
        _require_some_product(request)
        output = _format(params)
        object_human_id = (params.get("object") or "").strip()
        since = query_moment(params.get("since"))
        until = query_moment(params.get("until"), end_of_day=True)
        if not (object_human_id or since or until):
            raise ValidationFailed("name an object= or a since=/until= date range to export")
        limit = audit_export.MAX_PDF_EVENTS if output == "pdf" else audit_export.MAX_EXPORT_EVENTS
        rows = audit_export.audit_export_rows(
            user=request.user,
            token=token_of(request),
            object_human_id=object_human_id,
            since=since,
            until=until,
            limit=limit,
        )
        if object_human_id and not rows:
            raise Http404  # an object the caller may not see looks exactly like one that does not exist
        scope = {"object": object_human_id, "since": params.get("since", ""), "until": params.get("until", "")}
        stem = "custody-audit-trail" + (f"-{object_human_id}".replace(" ", "_") if object_human_id else "")
        if output == "csv":
            response = audit_csv_response(rows)
            response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
            return response
        if output == "pdf":
            pdf = audit_export.audit_export_pdf(rows, scope=scope, generated_by=request.user)
            return _download(pdf, content_type="application/pdf", filename=f"{stem}.pdf")
        return _download(
            audit_export.audit_export_json(rows, scope=scope), content_type="application/json", filename=f"{stem}.json"
        )


class ReleaseNotesApi(APIView):
    """A release's notes as structured evidence, in Markdown, HTML or PDF — one context, three layouts."""

    @extend_schema(responses={(200, "text/markdown"): str, (200, "text/html"): str, (200, "application/pdf"): bytes})
    def get(self, request, product, version, extension):
        release = _release_for(request, product, version)
        context = release_notes.release_notes_context(release, generated_by=request.user)
        stem = f"{release.product.key}-{release.version}-release-notes".replace("/", "_").replace('"', "")
        if extension == "md":
            body = release_notes.render_release_notes_markdown(context)
            return _download(body, content_type="text/markdown; charset=utf-8", filename=f"{stem}.md", inline=True)
        if extension == "html":
            body = release_notes.render_release_notes_html(context)
            return _download(body, content_type="text/html; charset=utf-8", filename=f"{stem}.html", inline=True)
        pdf = release_notes.render_release_notes_pdf(context)
        return _download(pdf, content_type="application/pdf", filename=f"{stem}.pdf")
