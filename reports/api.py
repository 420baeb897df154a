"""REST API of what auditors take away (DESIGN §7): release packets and evidence bundles, the population report,
audit-trail exports and release notes.

A packet or bundle GET answers 200 with the file when a rendering of the release's current state is kept, else 202
with progress while a Celery worker renders it. The other downloads only read, so nothing here but a rendering
request is audited. What a caller may not see is 404, as for any record.
"""

from __future__ import annotations

import json
from datetime import date

from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.models import Release
from changecontrol.access import get_visible_or_404, parse_human_id, token_of, visible_product_ids, visible_products
from changecontrol.api import audit_csv_response
from common.errors import ValidationFailed
from common.times import query_day, query_moment
from reports import audit_export, population, release_notes
from reports.exports import current_export, release_export_request
from reports.models import ReleaseExport

CONTENT_TYPES = {ReleaseExport.Kind.PACKET: "application/pdf", ReleaseExport.Kind.BUNDLE: "application/zip"}


class ExportStatusOutput(serializers.Serializer):
    id = serializers.CharField(source="human_id")
    kind = serializers.CharField()
    state = serializers.CharField()
    progress = serializers.IntegerField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    requested_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    def get_status_url(self, export) -> str:
        return reverse("api-release-export", kwargs={"export_id": export.human_id})

    def get_download_url(self, export) -> str:
        name = "api-release-packet" if export.kind == ReleaseExport.Kind.PACKET else "api-release-bundle"
        return reverse(name, kwargs={"product": export.release.product.key, "version": export.release.version})


def _release_for(request, product: str, version: str) -> Release:
    return get_visible_or_404(
        Release.objects.select_related("product", "created_by"),
        user=request.user,
        token=token_of(request),
        product__key=product,
        version=version,
    )


def _file_response(release, export: ReleaseExport) -> FileResponse:
    extension = "pdf" if export.kind == ReleaseExport.Kind.PACKET else "zip"
    filename = f"{release.product.key}-{release.version}-{export.kind}.{extension}".replace('"', "").replace("/", "_")
    response = FileResponse(
        default_storage.open(export.storage_name, "rb"),
        as_attachment=True,
        filename=filename,
        content_type=CONTENT_TYPES[export.kind],
    )
    response["X-Content-SHA256"] = export.sha256
    response["X-Content-Type-Options"] = "nosniff"
    return response


class _ReleaseExportApi(APIView):
    kind: str = ""

    @extend_schema(responses={(200, "application/octet-stream"): bytes, 202: ExportStatusOutput})
    def get(self, request, product, version):
        release = _release_for(request, product, version)
        done = current_export(release=release, kind=self.kind)
        if done is not None:
            return _file_response(release, done)
        export, created = release_export_request(release=release, kind=self.kind, actor=request.user)
        if created:
            from reports.tasks import render_release_export

            transaction.on_commit(lambda: render_release_export.delay(export.pk))
        return Response(ExportStatusOutput(export).data, status=status.HTTP_202_ACCEPTED)


class ReleasePacketApi(_ReleaseExportApi):
    """The PDF release packet of a release (auditors may download; nothing changes)."""

    kind = ReleaseExport.Kind.PACKET


class ReleaseBundleApi(_ReleaseExportApi):
    """The signed evidence bundle of a release, verifiable offline with `custody verify-bundle`."""

    kind = ReleaseExport.Kind.BUNDLE


class ReleaseExportDetailApi(APIView):
    """The state and progress of one rendering (EXP-<n>)."""

    @extend_schema(responses=ExportStatusOutput)
    def get(self, request, export_id):
        export = get_visible_or_404(
            ReleaseExport.objects.select_related("release", "release__product"),
            user=request.user,
            token=token_of(request),
            product_field="release__product",
            pk=parse_human_id(export_id, "EXP-"),
        )
        return Response(ExportStatusOutput(export).data)


# ---------------------------------------------------------------- auditor downloads

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
    days = {name: query_day(text, name=name) for name, text in (("from", start_text), ("to", end_text))}
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
        since = query_moment(params.get("since"), name="since")
        until = query_moment(params.get("until"), end_of_day=True, name="until")
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
